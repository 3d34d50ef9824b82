"""Search spaces from ``conf/sweep/*.yaml``: parsed, validated against the composed config
before any trial starts, and turned into Ray Tune domains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nmt.components.system.errors import ConfigError
from nmt.pipeline.override_line import override_value

DOMAINS = ("choice", "loguniform", "uniform", "randint")


def _check_domain(key: str, spec: Any) -> dict[str, Any]:
    where = f"sweep.space.{key}"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise ConfigError(f"{where}: expected {{type: <{'|'.join(DOMAINS)}>, ...}}, got {spec!r}")
    kind = spec["type"]
    allowed = {"choice": {"type", "values"}, "randint": {"type", "low", "high"},
               "loguniform": {"type", "low", "high"}, "uniform": {"type", "low", "high"}}.get(kind)
    if allowed is None:
        raise ConfigError(f"{where}.type: invalid choice {kind!r}; valid choices: {', '.join(DOMAINS)}")
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ConfigError(f"unknown config key {where}.{extra[0]}; valid keys: {', '.join(sorted(allowed))}")
    if kind == "choice":
        if "values" not in spec:
            raise ConfigError(f"{where}: choice needs values (a list); got keys {', '.join(sorted(spec))}")
        values = spec.get("values")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{where}.values: the choice list is empty; give at least one value")
    else:
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: {kind} needs low and high")
        if not spec["low"] < spec["high"]:
            raise ConfigError(f"{where}: low ({spec['low']}) must be below high ({spec['high']})")
        if kind == "loguniform" and spec["low"] <= 0:
            raise ConfigError(f"{where}.low: loguniform needs low > 0")
    return dict(spec)


ARCH_KEY = "arch"  # the architecture itself: sampled values are `model` group options


def _leaves(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings down to the ones that carry a ``type``: ``{optim: {lr: {type: ..}}}``
    and ``{optim.lr: {type: ..}}`` both give key ``optim.lr``."""
    out: dict[str, Any] = {}
    for k, v in space.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and "type" not in v and v:
            out.update(_leaves(v, key + "."))
        else:
            out[key] = v
    return out


def parse_space(space: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if not space:
        raise ConfigError("sweep.space is empty; give at least one parameter to search")
    return {k: _check_domain(k, v) for k, v in _leaves(space).items()}


def to_tune(space: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    from ray import tune  # here: a config loads without importing Ray (see nmt.pipeline.studies.sweep.cmd_sweep)
    out = {}
    for key, s in space.items():
        kind = s["type"]
        if kind == "choice":
            out[key] = tune.choice(list(s["values"]))
        elif kind == "loguniform":
            out[key] = tune.loguniform(float(s["low"]), float(s["high"]))
        elif kind == "uniform":
            out[key] = tune.uniform(float(s["low"]), float(s["high"]))
        else:
            out[key] = tune.randint(int(s["low"]), int(s["high"]))
    return out


def to_overrides(params: Mapping[str, Any]) -> list[str]:
    """A trial's sampled values as Hydra overrides; ``arch`` picks the ``model`` group first.
    ``load_config(to_overrides(p))`` gives back every value of ``p`` (:func:`~nmt.pipeline.override_line.override_value`)."""
    head = [f"model={params[ARCH_KEY]}"] if ARCH_KEY in params else []
    return head + [f"{k}={override_value(v)}" for k, v in sorted(params.items()) if k != ARCH_KEY]


def corner_samples(space: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Samples that together visit every architecture and every choice value (other keys at
    their low end): composing each proves every key is valid for every architecture."""
    archs = space[ARCH_KEY]["values"] if ARCH_KEY in space else [None]
    base = {k: (s["values"][0] if s["type"] == "choice" else s["low"]) for k, s in space.items() if k != ARCH_KEY}
    samples = []
    for arch in archs:
        head = {ARCH_KEY: arch} if arch is not None else {}
        samples.append({**head, **base})
        for k, s in space.items():
            if k != ARCH_KEY and s["type"] == "choice":
                samples += [{**head, **base, k: v} for v in s["values"][1:]]
    return samples
