"""One reading of input text for every way in: prepare's corpus files, ``nmt translate``'s
``--file`` and stdin, the Python ``predict`` and the REST endpoint.

- A line ends at ``\\n``; a ``\\r`` before it is dropped (CRLF files). Other Unicode line
  separators (U+2028, U+0085, ``\\v``, ``\\f``) are spaces inside a line, not line breaks.
- Text is UTF-8. A BOM at the start of a file is dropped; undecodable bytes raise
  :class:`TextDecodeError` naming the source, the line and the byte.
- :func:`normalize` is what training and serving both see: NFC, invisible format characters
  (Unicode category Cf: BOM, zero-width space, word joiner, ...) removed, control characters
  (Cc) as spaces, lone surrogates removed, runs of white space collapsed, ends stripped.
  A line that is empty after it is blank (and translates to an empty line).
"""

from __future__ import annotations

import functools
import gzip
import io
import sys
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

ENCODING = "utf-8"
BOM = "\ufeff"
_DROP = {"Cf", "Cs"}     # format characters (invisible) and lone surrogates: removed
_SPACE = {"Cc", "Zl", "Zp"}  # control characters and line/paragraph separators: a space
_CONVERT_HINT = "convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`"


class TextDecodeError(ValueError):
    """Bytes that are not UTF-8; the message names the source, line and byte."""


@functools.cache
def _table() -> dict[int, str | None]:
    """str.translate's table: every code point of a dropped category to None, of a space
    category to " " (built once, ~0.3 s; a per-character Python loop cost 10x more per line)."""
    out: dict[int, str | None] = {}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat in _DROP:
            out[cp] = None
        elif cat in _SPACE:
            out[cp] = " "
    return out


def normalize(text: str) -> str:
    """NFC, invisible characters out, white space collapsed; ``""`` for a blank line.

    The one normalisation of the project: prepare cleans the corpus with it and every way
    into a model applies it before the emptiness check and before tokenizing."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_table())
    elif not text.isprintable():
        text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(text.split())


def is_blank(text: str) -> bool:
    """True when nothing is left to translate after :func:`normalize`."""
    return not normalize(text)


def decode_line(raw: bytes, *, source: str, line_no: int) -> str:
    """One line's bytes as text; :class:`TextDecodeError` names source, line and byte."""
    try:
        return raw.decode(ENCODING)
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.start + 1].hex()
        raise TextDecodeError(
            f"{source}: line {line_no}, byte {err.start + 1} (0x{bad}) is not UTF-8; "
            f"{_CONVERT_HINT}") from None


def iter_lines(stream: BinaryIO, *, source: str) -> Iterator[str]:
    """Decoded lines of a binary stream, without their ``\\n``/``\\r\\n``; BOM dropped.

    Streams: one line in memory at a time."""
    for n, raw in enumerate(stream, start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = decode_line(raw, source=source, line_no=n)
        if n == 1 and line.startswith(BOM):
            line = line[1:]
        yield line


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_lines(path: Path, *, what: str = "file") -> Iterator[str]:
    """Stream the lines of a text file (plain or ``.gz``), with one-line errors for a missing
    file, bytes that are not UTF-8 and a damaged gzip stream."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open_binary(path) as f:
            yield from iter_lines(f, source=str(path))
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise TextDecodeError(f"{path}: a damaged gzip file ({err}); replace it with a fresh copy") from None


def split_text(text: str | bytes, *, source: str) -> list[str]:
    """A whole text (stdin, a request body) as lines, by the same rules as a file."""
    if isinstance(text, bytes):
        return list(iter_lines(io.BytesIO(text), source=source))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start another
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if lines and lines[0].startswith(BOM):
        lines[0] = lines[0][1:]
    return lines


def read_stream(stream: BinaryIO | TextIO, *, source: str) -> list[str]:
    """All lines of an open stream (stdin): its bytes when it has them (``.buffer``), so the
    encoding is decided here and not by the terminal's locale."""
    raw = getattr(stream, "buffer", stream)
    data = raw.read()
    return split_text(data, source=source)


def normalized(lines: Iterable[str]) -> Iterator[str]:
    """:func:`normalize` over an iterable, lazily."""
    return (normalize(t) for t in lines)
