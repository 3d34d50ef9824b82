"""Hydra's composition errors, said as one line that names the key and what to do."""

from __future__ import annotations

import re

from hydra import compose, initialize_config_dir
from hydra.errors import OverrideParseException
from omegaconf import DictConfig

from nmt.components.data.source_config import DataConfig
from nmt.components.system.paths import CONF_DIR
from nmt.pipeline.compose import ON_DEMAND
from nmt.pipeline.override_line import quote_hint


def explain(err: Exception, overrides: list[str] | tuple[str, ...]) -> str:
    """Hydra says "Could not override 'trainer.foo'"; say why: the key does not exist
    (listing the keys that do), or the value does not fit (Hydra's cause)."""
    message = str(err).strip()
    if isinstance(err, OverrideParseException):
        return quote_hint(err.override, message)
    several = re.match(r"Ambiguous value for argument '([^']+)'|Sweep parameters '([^']+)' requires --multirun", message)
    if several:  # Hydra's multirun syntax: nmt has no --multirun; its sweeps and journeys run several
        o = several.group(1) or several.group(2)
        return (f"{o}: several values in one override; for a list write key=[a,b], for text with a comma "
                "quote it: key='a,b'; to train several configs use nmt sweep (sweep.space) or nmt journey")
    missing = re.search(r"Could not find '([\w-]+)/([^']*)'\s+Available options in '[\w-]+':\s+(.*?)\n\S",
                        message + "\nX", re.S)
    if missing:  # Hydra's answer lists the options over many lines and adds its search path: one line
        group, option, options = missing.group(1), missing.group(2), missing.group(3).split()
        return f"{group}={option}: no such option; valid: {', '.join(options)} (conf/{group}/*.yaml)"
    m = re.search(r"Could not override '([^']+)'", message)
    if not m:
        return message
    key = m.group(1)
    parent, _, leaf = key.rpartition(".")
    if parent == "data" and leaf in DataConfig.RENAMED:
        return DataConfig.renamed(key)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            base = compose(config_name="config", overrides=[o for o in overrides if not o.startswith(key + "=")])
        parts, node = key.split("."), base
        depth = 0  # how far the key's path exists: the first missing part is the one to name
        while depth < len(parts) - 1 and isinstance(node, DictConfig) and isinstance(node.get(parts[depth]), DictConfig):
            node, depth = node[parts[depth]], depth + 1
        exists = depth == len(parts) - 1 and leaf in node
    except Exception:  # the explanation must never hide the original error
        return message
    if exists:
        cause = str(err.__cause__ or "").strip().splitlines()
        return f"cannot set {key!r}: {cause[0] if cause else message}"
    valid = set(node.keys()) | (set(ON_DEMAND) if depth == 0 else set())  # the root's on-demand sections too
    return f"unknown config key {key!r}; valid keys under '{'.'.join(parts[:depth]) or '<root>'}': {', '.join(sorted(valid))}"
