"""A command's composed config, remembered: the same command line on unchanged files is
answered without Hydra (its import and compose were ~0.3 s of a one-sentence ``nmt translate``).

Hydra's output is a function of the overrides, the files under ``conf/`` and the code that
registers architecture defaults (:func:`nmt.pipeline.config._store_architectures`), so an
entry is keyed by the overrides and stamped with every such file, and Hydra's and
OmegaConf's own (:mod:`nmt.components.system.remembered`). Only the resolved container is
kept; it is parsed and checked as a freshly composed one is. The CLI uses it; library
callers compose.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from nmt.components.system.remembered import Remembered, stamp

KEEP = 64  # entries per home: a user trying many overrides does not grow the folder forever
_PACKAGE = Path(__file__).resolve().parents[1]  # nmt/: the architectures' config classes


def _inputs(conf_dir: Path) -> list[Path]:
    files = [p for root in (conf_dir, _PACKAGE) for p in sorted(root.rglob("*")) if p.suffix in (".yaml", ".py")]
    for lib in ("hydra", "omegaconf"):
        spec = importlib.util.find_spec(lib)
        if spec and spec.origin:
            files.append(Path(spec.origin))
    return files


def cached_container(folder: Path, conf_dir: Path, overrides: list[str], compose: Callable[[], dict]) -> dict:
    """``compose()``'s container for ``overrides``, from ``folder`` when nothing it depends on
    changed since; else composed and remembered. A config error is raised by ``compose`` and
    never remembered."""
    memo, key, version = Remembered(folder, KEEP), json.dumps([str(conf_dir), overrides]), stamp(_inputs(conf_dir))
    container = memo.get(key, version)
    if not isinstance(container, dict):
        container = compose()
        memo.put(key, version, container)
    return container
