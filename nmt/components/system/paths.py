"""The one reading of a filesystem path given in the config (``data.dir``,
``sweep.storage_path``, ``server.state_dir``, ``server.artifacts_destination``,
``cluster.state_dir``): ``~`` expanded and made absolute, so a relative path means the same
folder whichever process (a Ray trial in its own directory, the server) reads it."""

from __future__ import annotations

from pathlib import Path

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
