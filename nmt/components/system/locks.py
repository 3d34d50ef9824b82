"""A folder owned by one process at a time: an exclusive ``flock`` on ``<folder>.lock``.

The kernel drops the lock when its holder dies (even by ``kill -9``), so a crashed run never
leaves a stale lock; the file sits beside the folder, so removing the folder keeps it.
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
    Yields the lock file; its text names the holder (``host|boot|pid|start``, then ``note``)."""
    lock = private_dir(folder.parent) / f"{folder.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    holder = lock.read_text().strip() or "another process"
                    log.warning("%s: %s is in use by %s; waiting for it to finish (Ctrl-C to stop)",
                                what, folder, holder)
                    said = True
                time.sleep(poll_s)
        note(lock, "")
        yield lock
    finally:
        os.close(fd)  # releases the lock


def note(lock: Path, text: str) -> None:
    """Name the holder in the lock file: this process, and ``text`` (e.g. its run id)."""
    lock.write_text(f"pid {os.getpid()} ({owner()}){' ' + text if text else ''}\n")
