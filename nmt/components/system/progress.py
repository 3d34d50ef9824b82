"""Progress you can watch: a live bar (tqdm, with rate and ETA) when stderr is a terminal,
the plain log lines of before in logs, under CI and in Ray trials, nothing with ``--quiet``.

The command line chooses once (:func:`choose`); library callers (tests, notebooks, trials)
get plain lines. Bars go to stderr: stdout carries a command's results (translations).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

BARS, LINES, OFF = "bars", "lines", "off"
_mode = [LINES]
T = TypeVar("T")


def choose(quiet: bool, stream: Any = None) -> str:
    """``--quiet``: off; else bars on a terminal, plain lines elsewhere."""
    stream = sys.stderr if stream is None else stream
    _mode[0] = OFF if quiet else BARS if stream.isatty() else LINES
    return _mode[0]


def reset() -> None:
    _mode[0] = LINES


def mode() -> str:
    return _mode[0]


def bars() -> bool:
    return _mode[0] == BARS


def _bar(**kw: Any):
    from tqdm import tqdm  # only when a bar is drawn
    return tqdm(file=sys.stderr, dynamic_ncols=True, smoothing=0.1, **kw)


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterable[T]:
    """``items``, with a bar that counts them when bars are on."""
    return _bar(iterable=items, desc=desc, total=total, unit=unit) if bars() else items


def open_bar(desc: str, total: int | None = None, unit: str = "it") -> Any:
    """A bar its owner advances (``update``) and closes, for work driven by callbacks; None
    without bars."""
    return _bar(desc=desc, total=total, unit=unit) if bars() else None


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def counter(desc: str, total: int | None = None, unit: str = "pairs") -> Iterator[Any]:
    """A bar advanced by ``.update(n)`` (e.g. rows per Arrow batch); a no-op without bars."""
    if not bars():
        yield _Silent()
        return
    with _bar(desc=desc, total=total, unit=unit, unit_scale=True) as bar:
        yield bar
