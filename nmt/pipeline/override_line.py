"""Hydra's override grammar, both ways: a value quoted so that it parses back to itself
(:func:`override_value`: the CLI's flags, a sweep's sampled values), and several overrides in
one string split as the grammar reads them; and the words on a command line that are no
override at all (:func:`check_words`).

Only the MLproject path needs this: ``mlflow run -P overrides="a=1 b='x y'"`` hands the
whole string to ``nmt --overrides-line``. Arguments from a shell reach Hydra as the shell
gave them, never split (a quoted value such as ``tracking.experiment='de-en (run 2)'`` keeps
its quotes for Hydra to read). An override starts where whitespace, outside quotes and
brackets, is followed by a key (``key=``, ``+key=``, ``++key=``, ``~key``); any other
whitespace belongs to the value before it, as it does in Hydra's grammar."""

from __future__ import annotations

import argparse
import numbers
import re
import shlex
from pathlib import Path
from typing import Any

from nmt.components.system.errors import ConfigError
from nmt.components.system.paths import CONF_DIR

# Hydra's key: a config path or group (ID, DOT_PATH, '/', '@package'), then '=' (or a bare ~key)
_KEY = r"[A-Za-z0-9_$][\w$\-./@]*"
_START = re.compile(rf"(?:\+\+|\+)?{_KEY}=|~{_KEY}(?:=|\s|$)")
_OPEN, _CLOSE = "[{(", "]})"


def split_overrides(line: str) -> list[str]:
    """``"a=1 b='x y' c=[1, 2]"`` -> ``["a=1", "b='x y'", "c=[1, 2]"]``; quotes kept for Hydra."""
    out: list[str] = []
    start, depth, quote, i = 0, 0, "", 0
    text = line.strip()
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1  # an escaped character, the quote included
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif ch.isspace() and depth == 0 and _START.match(text, i + 1):
            out.append(text[start:i].strip())
            start = i + 1
        i += 1
    if quote:
        raise ConfigError(f"--overrides-line {line!r}: a {quote} quote is not closed; close it, or quote "
                          "the whole value the other way (key=\"it's\")")
    out.append(text[start:].strip())
    return [o for o in out if o]


def quote_hint(override: str, message: str) -> str:
    """Hydra's grammar refused a value (``~``, spaces, parentheses, commas): say how to quote it."""
    key, _, value = override.partition("=")
    lines = [ln.strip() for ln in message.splitlines()[1:] if ln.strip() and not ln.strip().startswith(("^", "See "))]
    quoted = f"{key}='{value}'" if "'" not in value else f'{key}="{value}"'
    shell = f'"{quoted}"' if '"' not in quoted else shlex.quote(quoted)
    return (f"cannot read the override {override!r}" + (f" ({lines[0]})" if lines else "")
            + f"; quote the value as Hydra's grammar asks: {quoted} (in a shell: {shell})")


def expand_overrides(args: argparse.Namespace) -> list[str]:
    """A command's overrides: each argument exactly as the shell gave it (Hydra reads its
    quotes), then those of ``--overrides-line`` (MLproject's one string of several), split
    by Hydra's override grammar."""
    return [*(getattr(args, "overrides", None) or []), *split_overrides(getattr(args, "overrides_line", None) or "")]


def override_value(value: Any) -> str:
    """A value in Hydra's override grammar that parses back to itself: ``null``, ``true``,
    ``1e-05``, ``[a,b]``, and every string quoted (``,`` ``=`` quotes spaces ``${`` kept)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):  # also numpy's, which Ray's samplers return
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))  # 1e-05, nan, inf: Hydra's float grammar
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    if isinstance(value, str):
        # inside '...': a quote is \', backslashes before a quote (or the end) are doubled,
        # and \${ keeps a literal ${ from being read as an interpolation
        body = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
        return "'" + body.replace("'", "\\'").replace("${", "\\${") + "'"
    raise ConfigError(f"a sweep value must be null, a boolean, a number, a string or a list of them; "
                      f"got {type(value).__name__}")


def _open(text: str) -> bool:
    """Brackets or a quote opened and not closed."""
    return sum(text.count(c) for c in "[{(") > sum(text.count(c) for c in "]})") or text.count("'") % 2 == 1


def check_words(args: argparse.Namespace) -> None:
    """Every positional word is an override (``key=value``, ``group=option``, ``~key``): a bare
    word (a model's name, an input file) is answered with what the user likely meant, rather
    than Hydra's advice on quoting a value that was never there."""
    words = getattr(args, "overrides", None) or []
    for i, word in enumerate(words):
        if "=" in word or word.startswith("~"):
            continue
        if _open(" ".join(words[:i])):  # a value with spaces that the shell split: say how to quote it
            start, end = next(j for j in range(i, -1, -1) if "=" in words[j]), i + 1
            while end < len(words) and _open(" ".join(words[start:end])):
                end += 1
            whole = " ".join(words[start:end])
            raise ConfigError(f"{word!r} is not an override: the shell split {whole!r} at a space; quote the "
                              f"whole override: \"{whole}\"")
        raise ConfigError(f"{word!r} is not an override (key=value, group=option or ~key); {_meant(args, word)} "
                          f"(nmt {args.command} --help lists its flags, groups and options)")


def _meant(args: argparse.Namespace, word: str) -> str:
    """What a bare ``word`` on ``nmt <command>``'s line likely meant."""
    groups = [g for g in args.groups if (CONF_DIR / g / f"{word}.yaml").is_file()]
    if groups:
        return f"for that option write {groups[0]}={word}"
    by_command = {"translate": f"to translate a file give --file {word}, or pipe the text to stdin",
                  "align": "give the sentence pairs as --src FILE --tgt FILE",
                  "compare": f"to compare evaluate runs give --runs {word} ...",
                  "promote": f"for a version give --version {word}" if word.isdigit()
                  else f"for a train or trial run give --run {word}"}
    if args.command in by_command:
        return by_command[args.command]
    if "/" in word or Path(word).exists():
        return "a file or folder is given by its key, e.g. data.dir=PATH"
    example = getattr(args, "example", "")
    return example[example.index("e.g."):] if "e.g." in example else f"config groups: {', '.join(args.groups)}"
