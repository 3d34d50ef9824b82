"""One reading of input text for every way in: prepare's corpus files, ``nmt translate``'s
``--file`` and stdin, the Python ``predict`` and the REST endpoint.

- A line ends at ``\\n``; a ``\\r`` before it is dropped (CRLF files). Other Unicode line
  separators (U+2028, U+0085, ``\\v``, ``\\f``) are spaces inside a line, not line breaks.
- Text is UTF-8. A BOM at the start of a file is dropped; undecodable bytes raise
  :class:`TextDecodeError` naming the source, the line and the byte.
- :func:`normalize` is what training and serving both see: NFC, invisible characters removed
  (Unicode category Cf: BOM, zero-width space, word joiner, ...; and the rest of Unicode's
  Default_Ignorable_Code_Point: Hangul fillers U+115F/U+1160, variation selectors, the
  combining grapheme joiner, ...), control characters (Cc) and the blank glyphs U+3164,
  U+FFA0 (Hangul fillers a cell wide) and U+2800 (Braille blank) as spaces, lone
  surrogates removed, runs of white space (NBSP and the other Zs included) collapsed, ends
  stripped. A line that is empty after it, or holds only combining marks (category M, with
  no letter to sit on), is blank (and translates to an empty line).
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
# Unicode's Default_Ignorable_Code_Point outside Cf (DerivedCoreProperties.txt; the Cf ones
# are dropped by category): rendered as nothing, so removed like Cf. The Cn parts of the
# property are left out (unassigned: not in any text worth translating).
_IGNORABLE = [(0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180D), (0x180F, 0x180F),
              (0xFE00, 0xFE0F), (0xE0100, 0xE01EF)]
_BLANK = (0x2800, 0x3164, 0xFFA0)  # Braille blank, Hangul fillers drawn a cell wide: a space, not a letter
_CONVERT_HINT = "convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`"
HEAD_BYTES = 8192  # NUL in a source's first block: binary (git's and grep's test)
_BINARY_HINT = ("it holds NUL bytes too, so it looks like a binary file, not text (UTF-16 is one, "
                "`iconv -f utf-16 -t utf-8 FILE > FILE.utf8` converts that); give a text file, one sentence per line")


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
    for lo, hi in _IGNORABLE:
        out.update(dict.fromkeys(range(lo, hi + 1)))
    out.update(dict.fromkeys(_BLANK, " "))
    return out


def rewrites(cp: int) -> bool:
    """Whether :func:`normalize` removes code point ``cp`` or turns it into a space (prepare's
    Arrow fast path sends texts holding such code points through ``normalize`` itself)."""
    return cp in _table()


def normalize(text: str) -> str:
    """NFC, invisible characters out, white space collapsed; ``""`` for a blank line.

    The one normalisation of the project: prepare cleans the corpus with it and every way
    into a model applies it before the emptiness check and before tokenizing."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_table())
        if all(unicodedata.category(c)[0] == "M" for c in text if not c.isspace()):
            return ""  # only combining marks (or nothing): no letter to translate
    elif not text.isprintable():
        text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(text.split())


def is_blank(text: str) -> bool:
    """True when nothing is left to translate after :func:`normalize`."""
    return not normalize(text)


def decode_line(raw: bytes, *, source: str, line_no: int, binary: bool = False) -> str:
    """One line's bytes as text; :class:`TextDecodeError` names source, line and byte
    (``binary``: the source's first block held NUL bytes, so the hint is not iconv's)."""
    try:
        return raw.decode(ENCODING)
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.start + 1].hex()
        hint = _BINARY_HINT if binary or b"\0" in raw else _CONVERT_HINT  # NUL and bytes not UTF-8: not text
        raise TextDecodeError(f"{source}: line {line_no}, byte {err.start + 1} (0x{bad}) is not UTF-8; {hint}") from None


def iter_lines(stream: BinaryIO, *, source: str, head: bytes = b"") -> Iterator[str]:
    """Decoded lines of a binary stream, without their ``\\n``/``\\r\\n``; BOM dropped
    (``head``: the stream's first bytes, to tell a binary file in an error).

    Streams: one line in memory at a time."""
    binary = b"\0" in head[:HEAD_BYTES]
    for n, raw in enumerate(stream, start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = decode_line(raw, source=source, line_no=n, binary=binary)
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
            head = f.read(HEAD_BYTES)
            f.seek(0)
            yield from iter_lines(f, source=str(path), head=head)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise TextDecodeError(f"{path}: a damaged gzip file ({err}); replace it with a fresh copy") from None


def split_text(text: str | bytes, *, source: str) -> list[str]:
    """A whole text (stdin, a request body) as lines, by the same rules as a file."""
    if isinstance(text, bytes):
        return list(iter_lines(io.BytesIO(text), source=source, head=text))
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
