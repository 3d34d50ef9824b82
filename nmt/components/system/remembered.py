"""Answers worth keeping between processes (a command's composed config, what a model alias
resolved to), each a JSON file stamped with the state of the files it was worked out from,
and given back only while those files stand as they did.

A stamp hashes each file's inode, size and mtime; a file changed within the last second
gives no stamp (an edit within the clock's tick would not show), so nothing is kept then.
Values are plain JSON: nothing read back runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FRESH_NS = 1_000_000_000
ORPHAN_NS = 60 * 1_000_000_000  # a temporary file this old lost its writer: a write takes microseconds


def stamp(paths: Iterable[Path]) -> str | None:
    """The files' state as they stand (a missing file counts as such), or None when one was
    written in the last second."""
    h, now = hashlib.sha256(), time.time_ns()
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:
            h.update(f"{path}\0absent\n".encode())
            continue
        if now - st.st_mtime_ns < FRESH_NS:
            return None
        h.update(f"{path}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class Remembered:
    """JSON values in ``folder``, a file per key, the ``keep`` newest written or refreshed."""

    def __init__(self, folder: Path, keep: int):
        self.folder, self.keep = folder, keep

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def get(self, key: str, stamp: str | None) -> Any:
        """What :meth:`put` kept for ``key`` under the same ``stamp``; else None."""
        if stamp is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: work it out again
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or entry.get("stamp") != stamp:
            return None
        return entry.get("value")

    def put(self, key: str, stamp: str | None, value: Any) -> None:
        """Keep ``value`` for ``key``, unless ``stamp`` is None; the oldest beyond ``keep`` go."""
        if stamp is None:
            return
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"key": key, "stamp": stamp, "value": value}), encoding="utf-8")
            now = time.time_ns()
            os.utime(tmp, ns=(now, now))  # the fine clock: entries written in one tick keep their order
            os.replace(tmp, path)  # whole: a reader never sees half a file
            kept = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
            for old in kept[:-self.keep]:
                old.unlink(missing_ok=True)
            for left in self.folder.glob("*.tmp"):  # a writer killed between its write and replace
                if now - left.stat().st_mtime_ns > ORPHAN_NS:
                    left.unlink(missing_ok=True)
        except OSError:  # a memo: the command goes on without it
            tmp.unlink(missing_ok=True)
