"""Typed, frozen configs parsed from plain mappings (what Hydra composes).

Every stage boundary turns its slice of the composed config into a frozen dataclass with
:func:`parse`. Unknown keys and values outside a ``Literal`` choice raise
:class:`ConfigError` naming the full key and listing what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin

from nmt.components.system.errors import ConfigError

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _choice(value: Any, tp: Any, key: str) -> Any:
    choices = get_args(tp)
    by_text = {str(c): c for c in choices}  # `precision=32` arrives as an int
    if value not in choices and str(value) in by_text:
        return by_text[str(value)]
    if value not in choices:
        raise ConfigError(f"{key}: invalid choice {value!r}; valid choices: {', '.join(map(str, choices))}")
    return value


def _union(value: Any, tp: Any, key: str) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    if value == "" and str in args and type(None) in args:  # '' would mean the current folder, or nothing
        raise ConfigError(f"{key} is empty: give a value, or null for its default")
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(value, arg, key)
        except ConfigError as err:
            errors.append(str(err))
    raise ConfigError(errors[-1] if errors else f"{key}: cannot parse {value!r}")


def _scalar(value: Any, tp: Any, key: str) -> Any:
    """bool, int, float, str: exactly (a bool is not an int; an int is a float)."""
    expected = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp)
    if expected is None:
        if isinstance(tp, type) and not isinstance(value, tp):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return value
    ok = (isinstance(value, bool) if tp is bool else
          not isinstance(value, bool) and isinstance(value, int) if tp is int else
          not isinstance(value, bool) and isinstance(value, (int, float)) if tp is float else isinstance(value, str))
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    return float(value) if tp is float else value


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        return _choice(value, tp, key)
    if origin in (typing.Union, types.UnionType):
        return _union(value, tp, key)
    hook = getattr(tp, "from_mapping", None)
    if hook is not None:  # a config whose class depends on the value (model: the arch picks it)
        return hook(value, key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return parse(tp, value, prefix=key)
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp, *_rest) = get_args(tp) or (Any,)
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    return _scalar(value, tp, key)


def parse(cls: type[T], mapping: Mapping[str, Any] | None, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``mapping``, rejecting unknown keys.

    >>> parse(MyCfg, {"lr": 1e-3}, prefix="optim")
    """
    mapping = dict(mapping or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    where = f"{prefix}." if prefix else ""
    if unknown:
        raise ConfigError(
            f"unknown config key {where}{unknown[0]!s}; valid keys under "
            f"'{prefix or '<root>'}': {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in mapping.items():
        if value == "" and hints[name] is str and name not in getattr(cls, "MAY_BE_EMPTY", ()):
            raise ConfigError(f"{where}{name} is empty; give a value")  # a name, a user, a host: never ''
        kwargs[name] = _coerce(value, hints[name], f"{where}{name}")
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise ConfigError(f"missing config key {where}{missing[0]}")
    for name, value in kwargs.items():  # a TCP port, in whichever section names one
        if (name == "port" or name.endswith("_port")) and type(value) is int and not is_port(value):
            raise ConfigError(f"{where}{name} must be a TCP port, 1-65535, got {value}")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check(prefix)
    return obj


def is_port(n: int) -> bool:
    """A TCP port one can listen on or connect to."""
    return 1 <= n <= 65535


def require(prefix: str, obj: Any, *rules: tuple[str, bool, str]) -> None:
    """A config's range checks, each ``(key, ok, what it must be)``: the first that fails is a
    ConfigError naming the key, the rule and the value (``trainer.devices must be >= 1, got 0``)."""
    for key, ok, need in rules:
        if not ok:
            raise ConfigError(f"{prefix}.{key} must be {need}, got {getattr(obj, key)}")


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a plain dict (tuples become lists), for logging and reuse keys."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(obj)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``: MLflow params are strings, so compare strings."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out
