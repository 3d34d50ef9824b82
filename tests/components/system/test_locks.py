"""A folder's lock: one holder at a time, the next waits; the lock file goes with its folder."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from nmt.components.system.procs import folder_lock

ROOT = Path(__file__).resolve().parents[3]


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


CHILD = """
import sys
from pathlib import Path
from nmt.components.system.errors import NmtError
from nmt.components.system.procs import folder_lock
try:
    with folder_lock(Path(sys.argv[1]), "train", poll_s=0.01):
        print("got it")
except NmtError as err:
    print(err)
"""


def test_a_child_that_needs_its_parents_folder_fails_instead_of_waiting_forever(tmp_path):
    """A process re-running the command it is part of (Lightning's launcher re-runs the CLI in
    each extra process) would wait for its own parent, which waits for it: it fails in one line."""
    folder = tmp_path / "ckpt"
    with folder_lock(folder, "train"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.startswith(f"train: {folder} is held by pid {os.getpid()} (") and "a parent of this process" in out
    assert len(out.strip().splitlines()) == 1
    # not a parent: another process's holder is waited for (the test above), and once free the child gets it
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "got it"
