"""A command's composed config, remembered: the same command line on unchanged files is
answered without Hydra (its import and compose were ~0.3 s of a one-sentence ``nmt translate``).

Hydra's output is a function of the overrides, the files under ``conf/`` and the code that
registers architecture defaults (:func:`nmt.pipeline.config._store_architectures`), so an
entry is keyed by the overrides and stamped with every such file's size and mtime, and Hydra's
and OmegaConf's own. Only the resolved container is kept (plain JSON, no code); it is parsed
and validated as a freshly composed one is. The CLI uses it; library callers compose.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

KEEP = 64  # entries per home: a user trying many overrides does not grow the folder forever
_PACKAGE = Path(__file__).resolve().parents[1]  # nmt/: the architectures' config classes


def _stamp(conf_dir: Path) -> str | None:
    """Every input file's (path, size, mtime) hashed, or None when one changed in the last
    second (an edit within the clock's tick would not show)."""
    roots = [conf_dir, _PACKAGE]
    for lib in ("hydra", "omegaconf"):
        spec = importlib.util.find_spec(lib)
        if spec and spec.origin:
            roots.append(Path(spec.origin))
    h, now = hashlib.sha256(), time.time_ns()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".py"))
        for path in files:
            st = path.stat()
            if now - st.st_mtime_ns < 1_000_000_000:
                return None
            h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cached_container(folder: Path, conf_dir: Path, overrides: list[str], compose: Callable[[], dict]) -> dict:
    """``compose()``'s container for ``overrides``, from ``folder`` when nothing it depends on
    changed since; else composed and remembered. A config error is raised by ``compose`` and
    never remembered."""
    key = hashlib.sha256(json.dumps([str(conf_dir), overrides]).encode()).hexdigest()[:32]
    path, stamp = folder / f"{key}.json", _stamp(conf_dir)
    if stamp is not None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("stamp") == stamp and isinstance(entry.get("container"), dict):
                return entry["container"]
        except (OSError, ValueError, AttributeError):  # none yet, or unreadable: compose
            pass
    container = compose()
    if stamp is not None:
        _write(folder, path, {"stamp": stamp, "container": container})
    return container


def _write(folder: Path, path: Path, entry: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, path)  # whole: a reader never sees half a file
        kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:  # a cache: the command goes on without it
        tmp.unlink(missing_ok=True)
