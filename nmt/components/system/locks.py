"""A folder owned by one process at a time: an exclusive ``flock`` on ``<folder>.lock``.

The kernel drops the lock when its holder dies (even by ``kill -9``), so a crashed run never
leaves a stale lock; the file sits beside the folder, and goes with it when its holder
removes the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from nmt.components.system.private import private_dir
from nmt.components.system.procs import owner

log = logging.getLogger("nmt")


@contextlib.contextmanager
def folder_lock(folder: Path, what: str, poll_s: float = 1.0) -> Iterator[Path]:
    """Hold ``folder`` for this process; another holder is waited for, named in one log line.
    Yields the lock file; its text names the holder (``host|boot|pid|start``, then ``note``).
    A holder that removed the folder removes the lock file too (nothing left per finished
    folder); a waiter then finds its file gone and locks the path anew."""
    lock = private_dir(folder.parent) / f"{folder.name}.lock"
    said = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    holder = lock.read_text().strip() if lock.exists() else ""
                    log.warning("%s: %s is in use by %s; waiting for it to finish (Ctrl-C to stop)",
                                what, folder, holder or "another process")
                    said = True
                time.sleep(poll_s)
        if _same_file(fd, lock):
            break
        os.close(fd)  # its holder removed it while we waited: lock the path's new file
    try:
        note(lock, "")
        yield lock
    finally:
        if not folder.exists():
            lock.unlink(missing_ok=True)  # still held: no one else can have locked this file
        os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def note(lock: Path, text: str) -> None:
    """Name the holder in the lock file: this process, and ``text`` (e.g. its run id)."""
    lock.write_text(f"pid {os.getpid()} ({owner()}){' ' + text if text else ''}\n")
