"""A registered translator loaded into this installation's own code.

``nmt translate``, ``nmt promote`` and the demo never run code from the artifact store
(neither a pickle nor the ``nmt`` copy a version shipped): they read the version's files
(``weights.pt`` with ``weights_only=True``, ``model_config.json``, the tokenizers) and build
the model with today's :class:`~nmt.components.serving.translator.Translator`. A version whose
files today's code cannot read fails in one line. ``mlflow models serve`` and
``mlflow.pyfunc.load_model`` run the code the version shipped (models from code).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import yaml

from nmt.components.system.scratch import scratch
from nmt.components.tracking.registry import model_uri_name
from nmt.components.system.typed_config import ConfigError
from nmt.components.serving.translator import Translator
from nmt.pipeline.promotion.aliases import require_model

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore

ARTIFACT_KEYS = ("weights", "model_config", "src_tokenizer", "tgt_tokenizer")
REGISTERED = re.compile(r"models:/([^/@]+)(?:@([\w-]+)|/(\d+))")  # models:/<name>@<alias>, models:/<name>/<n>
COMPLETE = ".complete"  # written last: a folder without it is a download that died half-way
RESOLVED = "resolved.json"  # in <home>/.nmt/models: what a request resolved to, and the store's state then


class LocalTranslator:
    """``predict(texts, params)`` like a loaded pyfunc, on today's code."""

    def __init__(self, model: Translator, uri: str, files: Path | None = None):
        self.model, self.uri = model, uri
        self.files = files  # a registered version's local copy (kept), else None

    def predict(self, texts: list[str], params: dict[str, Any] | None = None) -> list[str]:
        return self.model.predict(None, texts, params)


def load_translator(store: RunStore, uri: str) -> LocalTranslator:
    """``models:/<name>@<alias>`` (or any model URI) of ``store`` -> a translator built by
    today's code from that model's files; ConfigError when it is not an nmt translator, or
    names a registered model that does not exist (listing those that do)."""
    with scratch("model") as tmp:  # any other URI's files are copied here: gone once the model is in memory
        try:
            local = local_copy(store, uri, tmp)
        except Exception:
            name = model_uri_name(uri) if uri.startswith("models:/") else None
            if name:  # asked only on failure: a successful load makes no extra registry read
                try:
                    require_model(store, name)
                except ConfigError as err:
                    raise ConfigError(f"--model {uri}: {err}") from None
            raise
        return from_files(local, uri, keep=bool(REGISTERED.fullmatch(uri)))


def from_files(local: Path, uri: str, keep: bool = False) -> LocalTranslator:
    """The translator in folder ``local`` (a model's files, with its MLmodel) of ``uri``."""
    meta = yaml.safe_load((local / "MLmodel").read_text()) if (local / "MLmodel").is_file() else {}
    found = ((meta or {}).get("flavors", {}).get("python_function", {}) or {}).get("artifacts") or {}
    missing = [k for k in ARTIFACT_KEYS if k not in found]
    if missing:
        raise ConfigError(f"{uri} is not an nmt translator (its MLmodel lists no {', '.join(missing)} artifact); "
                          "give a version registered by nmt")
    model = Translator()
    # load_context reads only the context's artifacts: MLflow's PythonModelContext is not needed
    model.load_context(SimpleNamespace(artifacts={k: str(local / found[k]["path"]) for k in ARTIFACT_KEYS}))
    return LocalTranslator(model, uri, local if keep else None)


def local_copy(store: RunStore, uri: str, scratch_dir: Path) -> Path:
    """The files of ``uri`` on local disk. A registered version (``models:/<name>@<alias>`` or
    ``/<version>``) is downloaded once into ``<home>/.nmt/models/``: its files never change. The
    alias is resolved again on every call (one registry read), so a moved alias is seen at once.
    Any other URI is downloaded into ``scratch_dir``."""
    from nmt.components.tracking.uri import project_home
    m = REGISTERED.fullmatch(uri)
    if not m:
        return store.download_uri(uri, scratch_dir)
    name, alias, number = m.groups()
    mv = store.version_by_alias(name, alias) if alias else store.version(name, number)
    # the source and run id too: a model deleted and registered again gets the same numbers
    key = hashlib.sha256("\n".join((store.uri, name, str(mv.version), str(mv.source), str(mv.run_id))).encode())
    dst = project_home() / ".nmt" / "models" / key.hexdigest()[:20]
    if (dst / COMPLETE).is_file():  # it holds the files' folder, relative to dst
        return dst / (dst / COMPLETE).read_text().strip()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{dst.name}.", dir=dst.parent))  # this call's alone
    # the version's artifact location, asked of our own client: MLflow's models:/ resolver reads
    # the process's default registry, not this store's
    source = store.client.get_model_version_download_uri(name, str(mv.version))
    files = store.download_uri(source, tmp).resolve()
    (tmp / COMPLETE).write_text(str(files.relative_to(tmp.resolve())) + "\n")
    try:
        os.replace(tmp, dst)
    except OSError:  # dst is there: another process's copy, never ours to remove
        if not (dst / COMPLETE).is_file():  # still being written: use our own copy
            return tmp / (tmp / COMPLETE).read_text().strip()
        shutil.rmtree(tmp, ignore_errors=True)  # finished first: the same files
    return dst / (dst / COMPLETE).read_text().strip()


# A request (store, experiment, --model or the alias and language pair) resolved once is
# remembered with the local SQLite store's state: while the database and its WAL are
# unchanged, every registry and run read would answer the same, so translate skips them (and
# opening the store). Any write since (a run, a moved alias) misses and resolves again.
def store_stamp(uri: str) -> list | None:
    """The SQLite store's files as they stand (inode, size, mtime), or None: a server, or a
    store written in the last second (a write within the clock's tick would not show)."""
    if not uri.startswith("sqlite:///"):
        return None
    db, stamp = Path(uri.removeprefix("sqlite:///")), []
    for path in (db, db.with_name(db.name + "-wal")):
        try:
            st = path.stat()
        except FileNotFoundError:
            stamp.append(None)
            continue
        if time.time_ns() - st.st_mtime_ns < 1_000_000_000:
            return None
        stamp.append([st.st_ino, st.st_size, st.st_mtime_ns])
    return stamp


def _resolved_file() -> Path:
    from nmt.components.tracking.uri import project_home
    return project_home() / ".nmt" / "models" / RESOLVED


def _resolved() -> dict:
    try:
        found = json.loads(_resolved_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or unreadable: resolve again
        return {}
    return found if isinstance(found, dict) else {}


def cached_translator(uri: str, request: str) -> LocalTranslator | None:
    """The translator ``request`` resolved to on store ``uri``, when the store has not changed
    since and its local copy is complete; else None."""
    entry, stamp = _resolved().get(request), store_stamp(uri)
    if not isinstance(entry, dict) or stamp is None or entry.get("stamp") != stamp:
        return None
    files = Path(entry.get("files", ""))
    if not files.is_absolute() or not any((p / COMPLETE).is_file() for p in files.parents):
        return None
    return from_files(files, str(entry.get("uri")), keep=True)


def remember(request: str, stamp: list | None, loaded: LocalTranslator) -> None:
    """Record what ``request`` resolved to, with the store's ``stamp`` taken before resolving."""
    if stamp is None or loaded.files is None:
        return
    path = _resolved_file()
    entries = {**_resolved(), request: {"stamp": stamp, "uri": loaded.uri, "files": str(loaded.files)}}
    tmp = path.with_name(f"{RESOLVED}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(tmp, path)  # whole: a reader never sees half a file
    except OSError:  # a cache: translate goes on without it
        tmp.unlink(missing_ok=True)

