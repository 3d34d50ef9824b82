"""Files only their owner reads (state, logs, credentials: mode 0600 in a 0700 folder) and
URIs printed without their ``user:password@``."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import IO

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``scheme://user:pass@host`` -> ``scheme://***@host`` wherever it appears in ``text``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700: what is inside is nobody else's business."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _open(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # an older file may have been made with the umask's 0644
    return fd


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (also when the file existed with another mode)."""
    with os.fdopen(_open(path, os.O_WRONLY | os.O_TRUNC), "w") as f:
        f.write(text)
    return path


def private_log(path: Path) -> IO[bytes]:
    """``path`` opened for appending, mode 0600: a daemon's log."""
    return os.fdopen(_open(path, os.O_WRONLY | os.O_APPEND), "ab")


class RedactingFilter(logging.Filter):
    """Log records leave with every URI's ``user:password@`` replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
