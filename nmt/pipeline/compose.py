"""``conf/`` composed by Hydra into one resolved container, and remembered: the same command
line on unchanged files is answered without Hydra (its import and compose were ~0.3 s of a
one-sentence ``nmt translate``). :mod:`nmt.pipeline.config` parses the container.

Hydra's output is a function of the overrides, the files under ``conf/`` and the code that
registers architecture defaults (:func:`_store_architectures`), so a remembered container is
keyed by the overrides and stamped with every such file, and Hydra's and OmegaConf's own
(:mod:`nmt.components.system.remembered`); it is parsed and checked as a fresh one is. The
CLI remembers; library callers compose.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.components.models.arch_configs import ARCHITECTURES  # torch-free: checked before torch loads
from nmt.components.system.code_version import module_files
from nmt.components.system.paths import CONF_DIR
from nmt.components.system.remembered import Remembered, stamp
from nmt.components.system.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

# Groups composed only when a command or an override asks for them (config.yaml has them
# null), each with the option it then gets: `nmt run` carries no sweep, journey, server or
# cluster settings, and imports none of their modules.
ON_DEMAND = {"sweep": "default", "journey": "default", "server": "local", "cluster": "local"}
KEEP = 64  # remembered command lines per home: trying many overrides does not grow the folder forever


def _store_architectures() -> None:
    """``/arch/<name>``: each registered architecture's defaults, read from its config class, the
    one place they are written (they are also what an older model_config.json without a newer
    field means). ``conf/model/*.yaml`` start from one and list only what they change."""
    named = {m.group(1) for path in (CONF_DIR / "model").glob("*.yaml")  # arch: x, or /arch/x@_here_
             for m in re.finditer(r"(?:/arch/|^arch:\s*)(\w+)", path.read_text(), re.M)}
    if not named <= ARCHITECTURES.keys():  # one registered in the factory (README): it imports torch
        import nmt.components.models.factory  # noqa: F401
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for arch, (cls, _) in ARCHITECTURES.items():
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        store.store(group="arch", name=arch, node={"arch": arch, **defaults})


def with_groups(overrides: list[str] | tuple[str, ...], groups: tuple[str, ...] = ()) -> list[str]:
    """``overrides`` plus ``<group>=<option>`` for each on-demand group that ``groups`` names or
    an override reaches into (``server.port=5001``), unless an override chose its option."""
    out = list(overrides)
    keys = [o.lstrip("+~").split("=", 1)[0] for o in out]
    wanted = set(groups) | {k.split(".")[0] for k in keys}
    for group, option in ON_DEMAND.items():
        if group in wanted and group not in keys:
            out.append(f"{group}={option}")
    return out


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Compose ``conf/config.yaml`` with command-line style overrides."""
    for o in overrides:  # a group takes one option: Hydra merges a list's and fails on null in a traceback
        group, _, value = o.lstrip("+").partition("=")
        if (value.startswith("[") or value == "null") and (CONF_DIR / group).is_dir():
            options = ", ".join(sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")))
            raise ConfigError(f"{o}: a config group takes one of its options ({options}); to train several, "
                              "use nmt journey (journey.arms) or nmt sweep (sweep.space)")
    from hydra import compose, initialize_config_dir  # here: a remembered config needs no Hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    _store_architectures()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        from nmt.pipeline.config_errors import explain  # only an error needs explaining
        raise ConfigError(explain(err, overrides)) from None


def _resolved(overrides: list[str]) -> dict:
    from omegaconf import OmegaConf
    container = OmegaConf.to_container(compose_config(overrides), resolve=True)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    return container


def _inputs() -> list[Path]:
    """What a composition depends on: conf/'s files, nmt's modules (the architectures' config
    classes), Hydra's and OmegaConf's own."""
    files = [*sorted(CONF_DIR.rglob("*.yaml")), *module_files().values()]
    for lib in ("hydra", "omegaconf"):
        spec = importlib.util.find_spec(lib)
        if spec and spec.origin:
            files.append(Path(spec.origin))
    return files


def container(overrides: list[str] | tuple[str, ...], groups: tuple[str, ...] = (), cache: Path | None = None) -> dict:
    """The resolved container of ``overrides`` (and the on-demand ``groups``). ``cache``: a
    folder where it is remembered, and answered from while nothing it depends on changed. A
    config error is raised by Hydra every time and never remembered."""
    final = with_groups(overrides, groups)
    if cache is None:
        return _resolved(final)
    memo, key, version = Remembered(cache, KEEP), json.dumps([str(CONF_DIR), final]), stamp(_inputs())
    found = memo.get(key, version)
    if isinstance(found, dict):
        return found
    found = _resolved(final)
    memo.put(key, version, found)
    return found
