"""A registered translator's local copy, built by this installation's own code without MLflow,
and what a request resolved to last time.

:func:`from_files` reads a version's files (``weights.pt`` with ``weights_only=True``,
``model_config.json``, the tokenizers, the MLmodel's list of them) into a
:class:`~nmt.components.serving.inference.TranslatorCore`. :func:`cached_translator` answers a
repeated ``nmt translate`` from the local copy while the SQLite store is unchanged: that
path opens no store and imports no MLflow (a test and an import-linter contract keep it so);
:mod:`nmt.pipeline.promotion.loading` resolves and downloads through the store otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nmt.components.serving.inference import ARTIFACTS, TranslatorCore
from nmt.components.system.remembered import Remembered, stamp
from nmt.components.system.errors import ConfigError

COMPLETE = ".complete"  # written last: a folder without it is a download that died half-way
RESOLVED = "resolved"  # <home>/.nmt/models/resolved/: what a request resolved to, and the store's state then
KEEP_RESOLVED = 32  # requests remembered: a user who varies --model or the pair does not grow the folder forever


class LocalTranslator:
    """``predict(texts, params)`` like a loaded pyfunc, on today's code."""

    def __init__(self, model: TranslatorCore, uri: str, files: Path | None = None):
        self.model, self.uri = model, uri
        self.files = files  # a registered version's local copy (kept), else None

    def predict(self, texts: list[str], params: dict[str, Any] | None = None) -> list[str]:
        return self.model.predict(texts, params)


def from_files(local: Path, uri: str, keep: bool = False) -> LocalTranslator:
    """The translator in folder ``local`` (a model's files, with its MLmodel) of ``uri``."""
    meta = yaml.safe_load((local / "MLmodel").read_text()) if (local / "MLmodel").is_file() else {}
    found = ((meta or {}).get("flavors", {}).get("python_function", {}) or {}).get("artifacts") or {}
    missing = [k for k in ARTIFACTS if k not in found]
    if missing:
        raise ConfigError(f"{uri} is not an nmt translator (its MLmodel lists no {', '.join(missing)} artifact); "
                          "give a version registered by nmt")
    model = TranslatorCore.from_artifacts({k: str(local / found[k]["path"]) for k in ARTIFACTS})
    return LocalTranslator(model, uri, local if keep else None)


# A request (store, experiment, --model or the alias and language pair) resolved once is
# remembered with the local SQLite store's state: while the database and its WAL are
# unchanged, every registry and run read would answer the same, so translate skips them (and
# opening the store). Any write since (a run, a moved alias) misses and resolves again.
def store_stamp(uri: str) -> str | None:
    """The SQLite store's files as they stand, or None: a server, or a store written in the
    last second (:func:`nmt.components.system.remembered.stamp`)."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return stamp([db, db.with_name(db.name + "-wal")])


def _resolved() -> Remembered:
    from nmt.components.tracking.uri import project_home
    return Remembered(project_home() / ".nmt" / "models" / RESOLVED, KEEP_RESOLVED)


def cached_translator(uri: str, request: str) -> LocalTranslator | None:
    """The translator ``request`` resolved to on store ``uri``, when the store has not changed
    since and its local copy is complete; else None."""
    entry = _resolved().get(request, store_stamp(uri))
    if not isinstance(entry, dict):
        return None
    files = Path(entry.get("files", ""))
    if not files.is_absolute() or not any((p / COMPLETE).is_file() for p in files.parents):
        return None
    return from_files(files, str(entry.get("uri")), keep=True)


def remember(request: str, state: str | None, loaded: LocalTranslator) -> None:
    """Record what ``request`` resolved to, with the store's ``state`` (:func:`store_stamp`) taken before resolving."""
    if loaded.files is not None:
        _resolved().put(request, state, {"uri": loaded.uri, "files": str(loaded.files)})
