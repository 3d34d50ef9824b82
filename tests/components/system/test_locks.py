"""A folder's lock: one holder at a time, the next waits; the lock file goes with its folder."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from nmt.components.system.procs import folder_lock


def _can_lock(path: Path) -> bool:
    """Whether another holder could take ``path`` now (flock: one per open file)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_the_lock_file_goes_with_its_folder_and_a_waiter_locks_anew(tmp_path):
    folder = tmp_path / "ckpt"
    lock = tmp_path / "ckpt.lock"
    order: list[str] = []
    held = threading.Event()

    def waiter():
        held.wait()
        with folder_lock(folder, "train", poll_s=0.01):
            order.append("waiter in")
            assert not _can_lock(lock), "the waiter holds an unlinked file, not the path's: a third would get in"
            folder.mkdir()  # kept: so is its lock file

    t = threading.Thread(target=waiter)
    t.start()
    with folder_lock(folder, "train", poll_s=0.01):
        folder.mkdir()
        held.set()
        time.sleep(0.3)  # the waiter is blocked on this very file now
        order.append("holder out")
        folder.rmdir()  # finished: the folder goes, and with it the lock file
    t.join(10)
    assert order == ["holder out", "waiter in"]
    assert folder.is_dir() and lock.exists()  # the waiter kept its folder
    folder.rmdir()
    with folder_lock(folder, "train"):
        assert lock.exists() and not _can_lock(lock)
    assert not lock.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
