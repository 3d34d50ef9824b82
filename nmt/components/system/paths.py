"""The one reading of a filesystem path given in the config (``data.dir``,
``sweep.storage_path``, ``server.state_dir``, ``server.artifacts_destination``,
``cluster.state_dir``): ``~`` expanded and made absolute, so a relative path means the same
folder whichever process (a Ray trial in its own directory, the server) reads it; files
only their owner reads (:func:`write_private`, :func:`private_dir`); URIs printed without
their ``user:password@`` (:func:`redact`); a command's input and output paths checked before
any work (:func:`check_input`, :func:`check_output`)."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import IO

from nmt.components.system.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"  # the composed config's YAML (Hydra's config dir)


def is_uri(raw: str) -> bool:
    """``s3://bucket/prefix`` and the like: storage that is not a local path."""
    return "://" in raw


def local_path(raw: str | Path) -> Path:
    """``~`` expanded, absolute, symlinks resolved."""
    return Path(raw).expanduser().resolve()


def path_or_uri(raw: str) -> str:
    """A URI unchanged (without a trailing ``/``), a local path as :func:`local_path`."""
    return raw.rstrip("/") if is_uri(raw) else str(local_path(raw))


# files only their owner reads: mode 0600 in a 0700 folder (state, logs, credentials)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def other_checkout(cwd: Path | None = None) -> Path | None:
    """The checkout of this project that ``cwd`` is in, when it is not the one whose ``nmt``
    runs: a venv installed editable from one tree runs that tree's code from any folder, so a
    second clone sharing the venv would run the first one's code without a word."""
    here = (cwd or Path.cwd()).absolute()
    for d in (here, *here.parents):
        if (d / "nmt" / "pipeline" / "cli.py").is_file() and (d / "conf").is_dir():
            return None if d.resolve() == CONF_DIR.parent else d
    return None


def check_input(given: str, raw: str, what: str) -> None:
    """An input file a command was given (``--file``, ``--src``): one line when it is not one."""
    if not Path(raw).is_file():
        raise ConfigError(f"{given} {raw}: {'is a directory' if Path(raw).is_dir() else 'no such file'}; give {what}")


def check_output(given: str, raw: str, folder: bool) -> None:
    """An output a command was given (``--out``) can be written, before any work: a report or
    alignment is not computed only to be lost at the end. ``folder``: made if missing."""
    path, named = Path(raw), f"{given}{raw}" if given.endswith("=") else f"{given} {raw}"  # --out X, key=X
    if path.exists() and path.is_dir() != folder:
        raise ConfigError(f"{named} is a {'file' if folder else 'folder'}; give "
                          f"{'a folder (made if missing)' if folder else 'the path of a file to write'}")
    base = (path if folder else path.parent).absolute()
    existing = next(p for p in (base, *base.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{named}: {existing} is a file, not a folder; give a path in a folder")
    if existing != base and not folder:
        raise ConfigError(f"{named}: the folder {base} does not exist; make it first, or give a path in one "
                          "that does")
    try:  # can we make something there? (a read-only mount, another user's folder, /proc)
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as err:
        raise ConfigError(f"{named}: cannot write in {existing} ({err.strerror}); give a path you can "
                          "write to") from None


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
