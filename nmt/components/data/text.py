"""One reading of input text for every way in: prepare's corpus files, ``nmt translate``'s
``--file`` and stdin, the Python ``predict`` and the REST endpoint.

- A line ends at ``\\n``; a ``\\r`` before it is dropped (CRLF files). Other Unicode line
  separators (U+2028, U+0085, ``\\v``, ``\\f``) are spaces inside a line, not line breaks.
- Text is UTF-8. A BOM at the start of a file is dropped; undecodable bytes raise
  :class:`TextDecodeError` naming the source, the line and the byte.
- :func:`normalize` is what training and serving both see: NFC, noise removed, control
  characters (Cc), line/paragraph separators and the blank glyphs U+3164, U+FFA0 (Hangul
  fillers a cell wide) and U+2800 (Braille blank) as spaces, runs of white space (NBSP and
  the other Zs included) collapsed, ends stripped. A line that is empty after it, or holds
  only combining marks and format characters (no letter to sit on), is blank (and
  translates to an empty line).

The rule for invisible characters (one predicate, :func:`dropped`, which prepare's Arrow
fast path and :func:`normalize` share): **a character that is spelling stays; only noise goes.**

- Kept, because they are spelling: ZERO WIDTH NON-JOINER and JOINER (U+200C, U+200D: Persian
  ``می‌خواهم``, Kurdish, Urdu, Sinhala and Indic conjuncts, emoji ZWJ sequences); the
  directional marks LRM, RLM, ALM (U+200E, U+200F, U+061C: single characters that place
  neutral text in a right-to-left line); variation selectors (U+FE00-FE0F, U+E0100-E01EF:
  emoji and CJK glyph variants) and the Mongolian ones (U+180B-180D, U+180F) with the
  Mongolian vowel separator (U+180E); the combining grapheme joiner (U+034F, which keeps
  marks in the order written); the visible prepended signs (Arabic number signs U+0600-0605,
  end of ayah, Syriac and Kaithi signs); Egyptian hieroglyph and shorthand format controls.
  Every format character (Cf) not listed below is kept too.
- Removed, because they are noise: the BOM / ZERO WIDTH NO-BREAK SPACE (U+FEFF), ZERO WIDTH
  SPACE (U+200B), SOFT HYPHEN (U+00AD) and WORD JOINER (U+2060), hints for where a line may
  or may not break, not letters; the invisible math operators (U+2061-2064); the bidi
  embeddings, overrides and isolates (U+202A-202E, U+2066-2069): they open a span that a
  later character closes, so a sentence split or a reordering translation leaves them
  unpaired and reversing the rest of the line (the "Trojan Source" spoofing, CVE-2021-42574);
  the deprecated format characters (U+206A-206F); interlinear annotation (U+FFF9-FFFB, not
  for interchange); musical beam and slur controls (U+1D173-1D17A); the tag characters
  (U+E0001, U+E0020-E007F: outside the few subdivision flags, whose flag then shows as a
  plain black flag, they carry hidden text); lone surrogates (Cs); the Hangul fillers
  U+115F/U+1160 and the discouraged Khmer inherent vowels U+17B4/U+17B5 (invisible letters).
"""

from __future__ import annotations

import gzip
import io
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

ENCODING = "utf-8"
BOM = "\ufeff"
_SPACE = {"Cc", "Zl", "Zp"}  # control characters and line/paragraph separators: a space
# Noise (module docstring): removed. Every other code point stays, format characters included.
_NOISE = [(0x00AD, 0x00AD), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x200B, 0x200B), (0x202A, 0x202E),
          (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x1D173, 0x1D17A),
          (0xE0001, 0xE0001), (0xE0020, 0xE007F)]
_BLANK = (0x2800, 0x3164, 0xFFA0)  # Braille blank, Hangul fillers drawn a cell wide: a space, not a letter
_CONVERT_HINT = "convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`"
HEAD_BYTES = 8192  # NUL in a source's first block: binary (git's and grep's test)
_BINARY_HINT = ("it holds NUL bytes too, so it looks like a binary file, not text (UTF-16 is one, "
                "`iconv -f utf-16 -t utf-8 FILE > FILE.utf8` converts that); give a text file, one sentence per line")


class TextDecodeError(ValueError):
    """Bytes that are not UTF-8; the message names the source, line and byte."""


def _rule(cp: int) -> int | str | None:
    """What :func:`normalize` makes of code point ``cp``: None (removed), " " (a space) or
    ``cp`` itself (kept)."""
    if cp in _BLANK:
        return " "
    if any(lo <= cp <= hi for lo, hi in _NOISE):
        return None
    cat = unicodedata.category(chr(cp))
    return None if cat == "Cs" else " " if cat in _SPACE else cp


class _Table(dict):
    """str.translate's table, filled as code points are met: building it for all of Unicode
    up front cost ~0.3 s, most of ``nmt translate``'s work on one sentence with an umlaut
    (a per-character Python loop in normalize cost 10x more per line)."""

    def __missing__(self, cp: int) -> int | str | None:
        self[cp] = rule = _rule(cp)
        return rule


_TABLE = _Table()


def dropped(cp: int) -> bool:
    """The rule (module docstring): whether :func:`normalize` removes code point ``cp``."""
    return _TABLE[cp] is None


def rewrites(cp: int) -> bool:
    """Whether :func:`normalize` removes code point ``cp`` or turns it into a space (prepare's
    Arrow fast path sends texts holding such code points through ``normalize`` itself)."""
    return _TABLE[cp] != cp


def _letterless(c: str) -> bool:
    """A combining mark or a kept format character: nothing to translate on its own."""
    return unicodedata.category(c)[0] == "M" or unicodedata.category(c) == "Cf"


def normalize(text: str) -> str:
    """NFC, noise out (module docstring), white space collapsed; ``""`` for a blank line.

    The one normalisation of the project: prepare cleans the corpus with it and every way
    into a model applies it before the emptiness check and before tokenizing."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_TABLE)
        if all(_letterless(c) for c in text if not c.isspace()):
            return ""  # only combining marks, joiners or marks of direction (or nothing)
    elif not text.isprintable():
        text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(text.split())


def decode_line(raw: bytes, *, source: str, line_no: int, binary: bool = False, encoding: str = ENCODING) -> str:
    """One line's bytes as text; :class:`TextDecodeError` names source, line and byte
    (``binary``: the source's first block held NUL bytes, so the hint is not iconv's)."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        bad = raw[err.start:err.start + 1].hex()
        hint = _BINARY_HINT if binary or b"\0" in raw else _CONVERT_HINT  # NUL and bytes not UTF-8: not text
        name = "UTF-8" if encoding == ENCODING else encoding
        raise TextDecodeError(f"{source}: line {line_no}, byte {err.start + 1} (0x{bad}) is not {name}; {hint}") from None


def iter_lines(stream: BinaryIO, *, source: str, head: bytes = b"", encoding: str = ENCODING) -> Iterator[str]:
    """Decoded lines of a binary stream, without their ``\\n``/``\\r\\n``; BOM dropped
    (``head``: the stream's first bytes, to tell a binary file in an error; ``encoding``: UTF-8
    unless a file is known to be another, e.g. the Latin-1 alignment gold set).

    Streams: one line in memory at a time."""
    binary = b"\0" in head[:HEAD_BYTES]
    for n, raw in enumerate(stream, start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = decode_line(raw, source=source, line_no=n, binary=binary, encoding=encoding)
        if n == 1 and line.startswith(BOM):
            line = line[1:]
        yield line


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, gunzipped when it ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_lines(path: Path, *, what: str = "file", encoding: str = ENCODING) -> Iterator[str]:
    """Stream the lines of a text file (plain or ``.gz``), with one-line errors for a missing
    file, bytes that are not UTF-8 and a damaged gzip stream."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path}: {'is a directory, not a file' if path.is_dir() else 'no such file'}")
    try:
        with open_binary(path) as f:
            head = f.read(HEAD_BYTES)
            f.seek(0)
            yield from iter_lines(f, source=str(path), head=head, encoding=encoding)
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
