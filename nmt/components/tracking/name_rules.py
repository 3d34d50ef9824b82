"""Config values checked against the rules of the system they go to, before any run starts:
registered-model aliases and names, and experiment names, by MLflow's own validators (so
the rules are exactly the installed MLflow's, its reserved names included), plus what our
``models:/<name>@<alias>`` URIs need.

A plain name (a letter, then letters, digits, ``-`` and ``_``; not reserved) passes every one
of these rules, so it is accepted without importing MLflow (over a second on 2 cores): a
config error elsewhere is then answered before MLflow loads. Any other name goes to MLflow's
validators (a test holds the two to the same verdicts)."""

from __future__ import annotations

import re
import unicodedata

from nmt.components.system.errors import ConfigError

PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
RESERVED_ALIAS = re.compile(r"latest|v\d+", re.I)  # MLflow: version aliases and 'latest', any case


def plain(name: str) -> bool:
    return bool(PLAIN.fullmatch(name)) and not RESERVED_ALIAS.fullmatch(name)


def _check(key: str, value: str, refusal: str | None, hint: str) -> None:
    if refusal is not None:
        raise ConfigError(f"{key}={value!r}: MLflow refuses it ({refusal}); {hint}")


def check_alias(key: str, alias: str) -> None:
    """MLflow's alias rules: letters, digits, ``_`` and ``-`` only, at most 255 characters;
    ``latest`` (any case) and ``v<N>``/``V<N>`` are reserved for versions."""
    if plain(alias):
        return
    from nmt.components.tracking.registry import alias_refusal
    _check(key, alias, alias_refusal(alias),
           "choose a name of letters, digits, _ and -, not 'latest' or v<number> (e.g. champion, prod-eu)")


def check_model_name(key: str, name: str) -> None:
    """MLflow's registered-model name rules, and no ``@`` (it separates the alias in URIs)."""
    if plain(name):
        return
    from nmt.components.tracking.registry import model_name_refusal, model_uri_name
    _check(key, name, model_name_refusal(name), "choose a name without '/', ':' or '..' (e.g. nmt-de-en)")
    _visible(key, name)
    if "@" in name or name != name.strip():
        raise ConfigError(f"{key}={name!r}: a model name may not contain '@' (it starts the alias in "
                          "models:/<name>@<alias>) nor start or end with spaces; e.g. nmt-de-en")
    if model_uri_name(f"models:/{name}@champion") != name:
        raise ConfigError(f"{key}={name!r}: models:/<name>@<alias> would not name this model back (MLflow's URI "
                          "parsing drops or splits at '?', '#', tabs, line breaks and other control "
                          "characters); use letters, digits, '-', '_' and '.' (e.g. nmt-de-en)")


def _visible(key: str, name: str) -> None:
    """No control, format (invisible) or unassigned characters (Unicode category C*): MLflow
    keeps them, PostgreSQL refuses NUL, and a name with a zero-width space in it is found by
    nobody who types what they see."""
    bad = next((c for c in name if unicodedata.category(c).startswith("C")), None)
    if bad is not None:
        raise ConfigError(f"{key}={name!r}: U+{ord(bad):04X} ({unicodedata.category(bad)}, invisible or a control "
                          "character) in the name; type it again with visible characters only")


def check_experiment(key: str, name: str) -> None:
    """MLflow's experiment name rules (non-empty, at most 500 characters)."""
    if plain(name):
        return
    from nmt.components.tracking.registry import experiment_name_refusal
    _check(key, name, experiment_name_refusal(name), "give a non-empty name (e.g. nmt)")
    _visible(key, name)
    if name != name.strip():
        raise ConfigError(f"{key}={name!r}: starts or ends with spaces; MLflow would keep them, so a later "
                          "lookup without them finds nothing")
