"""Where sentence pairs come from: local files (a file per side, TSV, JSONL; plain or ``.gz``)
read as a stream, in batches of raw ``(src, tgt)`` lists. Every defect of the input is a
:class:`DataError` whose one line names the file, the line and what to do.

A :class:`Corpus` is one readable corpus; a :class:`Plan` is what prepare reads: the corpora
of each split, the splits to carve out of training, and the source's identity (checksums,
or a dataset's name, revision and fingerprint) for the reuse key and lineage.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nmt.components.system.errors import NmtError
from nmt.components.data.text import TextDecodeError, read_lines

log = logging.getLogger(__name__)
BATCH = 10_000                        # pairs per Arrow record batch: bounds the memory of reading
Batch = tuple[list[str], list[str]]   # (sources, targets), raw text
TABULAR = (".tsv", ".jsonl")


class DataError(NmtError, ValueError):
    """Bad or missing input data; the message names the file (and line) at fault."""


def not_text(value: object) -> str:
    """What a value that should be a sentence is, in a user's words."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float)):
        return f"a {'boolean' if isinstance(value, bool) else 'number'} ({value!r})"
    return {list: "a list", tuple: "a list", dict: "a nested object"}.get(type(value), type(value).__name__)


def not_text_error(where: object, row: str, n: int, field_name: str, value: object) -> DataError:
    return DataError(f"{where}: {row} {n}, field {field_name!r} is {not_text(value)}, not a string; "
                     f"fix or remove that {row}")


@dataclass(frozen=True)
class Corpus:
    """One corpus of a split: ``batches()`` streams its raw pairs (at most ``BATCH`` at a time);
    :meth:`pairs` is what prepare reads: the same pairs, every value checked."""
    name: str                         # for messages and per-corpus counts
    batches: Callable[[], Iterator[Batch]]
    files: tuple[Path, ...] = ()      # what its checksum covers (empty for an in-memory dataset)
    fields: tuple[str, str] = ("source", "target")  # each side's field, for messages
    row: str = "line"                 # what a pair is called in messages: a file's line, a dataset's row
    label: str = ""                   # the corpus in messages, when more than its name (a split's file)

    def pairs(self) -> Iterator[Batch]:
        """``batches()``, each value checked to be a string before any work: whatever a file,
        ``datasets`` or Arrow hands us (null, a number, a list, a nested object) is one
        :class:`DataError` naming the corpus, the row and the field."""
        n = 0
        for src, tgt in self.batches():
            for values, field_name in ((src, self.fields[0]), (tgt, self.fields[1])):
                if not all(type(v) is str for v in values):
                    i, bad = next((i, v) for i, v in enumerate(values) if type(v) is not str)
                    raise not_text_error(self.label or self.name, self.row, n + i + 1, field_name, bad)
            n += len(src)
            yield src, tgt


@dataclass(frozen=True)
class Plan:
    """What prepare reads. ``splits`` maps a split name to its corpora (several are concatenated);
    ``carve`` maps a split name missing from the source to the number of pairs carved from training."""
    splits: dict[str, list[Corpus]]
    carve: dict[str, int] = field(default_factory=dict)
    identity: dict[str, str] = field(default_factory=dict)  # data.source.* params: the reuse key
    lineage_path: str = ""            # what log_input names as the source


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checksums(corpora: dict[str, list[Corpus]]) -> str:
    """sha256 (12 hex digits) of every file read, in order: a changed file changes the reuse key."""
    files = [f for cs in corpora.values() for c in cs for f in c.files]
    return ",".join(sha256_file(f)[:12] for f in dict.fromkeys(files))


def _lines(path: Path, what: str) -> Iterator[str]:
    """:func:`nmt.components.data.text.read_lines`, its errors as :class:`DataError`; an empty file is one."""
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory; name a file (plain or .gz) instead")
    try:
        it = read_lines(path, what=what)
        first = next(it, None)
        if first is None:
            raise DataError(f"{what} {path} is empty; give it one sentence per line, or leave it out of the config")
        yield first
        yield from it
    except FileNotFoundError as err:
        raise DataError(f"{err}; check the path (data.dir, data.train/val/test)") from None
    except TextDecodeError as err:
        raise DataError(str(err)) from None


def _batched(pairs: Iterator[tuple[str, str]]) -> Iterator[Batch]:
    while chunk := list(itertools.islice(pairs, BATCH)):
        yield [s for s, _ in chunk], [t for _, t in chunk]


def _parallel(src_path: Path, tgt_path: Path, limit: int | None) -> Iterator[tuple[str, str]]:
    """Aligned lines; with a ``limit`` the rest is still counted, so a misaligned pair of
    files fails however few pairs are used."""
    end = object()
    src_it, tgt_it = _lines(src_path, "source file"), _lines(tgt_path, "target file")
    n = 0
    for s, t in itertools.zip_longest(src_it, tgt_it, fillvalue=end):
        if s is end or t is end:
            more = n + 1 + sum(1 for _ in (tgt_it if s is end else src_it))
            counts = (n, more) if s is end else (more, n)
            raise DataError(f"line counts differ: {src_path} has {counts[0]} lines, {tgt_path} has {counts[1]}; "
                            f"the first unpaired line is line {n + 1}; the two sides must align line by line")
        n += 1
        if limit is None or n <= limit:
            yield s, t


def _is_header(n: int, pair: tuple[object, object], names: set[tuple[str, str]], path: Path) -> bool:
    """Line 1 that names the columns (the language codes or the fields): skipped, with a warning."""
    if n != 1 or tuple(str(v).strip() for v in pair) not in names:
        return False
    log.warning("%s: line 1 is a header row (%s), not a sentence pair: skipped", path, " / ".join(map(str, pair)))
    return True


def _tsv(path: Path, names: set[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for n, line in enumerate(_lines(path, "TSV file"), 1):
        parts = line.split("\t")
        if len(parts) == 2 and _is_header(n, (parts[0], parts[1]), names, path):
            continue
        if len(parts) != 2:
            raise DataError(f"{path}: line {n} has {len(parts)} tab-separated fields, expected 2 "
                            "(source<TAB>target); fix or remove that line")
        yield parts[0], parts[1]


def _field(row: dict, key: str, path: Path, n: int, setting: str) -> str:
    """``key`` of a JSONL row, or ``translation[key]`` (the hub's convention)."""
    if key in row:
        value = row[key]
    elif isinstance(row.get("translation"), dict) and key in row["translation"]:
        value = row["translation"][key]
    else:
        nested = row.get("translation")  # the hub's {"translation": {lang: text}}; anything else is a field of its own
        have = sorted(row) + [f"translation.{k}" for k in sorted(nested)] if isinstance(nested, dict) else sorted(row)
        raise DataError(f"{path}: line {n} has no field {key!r} (it has: {', '.join(have) or 'none'}); "
                        f"set {setting} to one of them")
    if type(value) is not str:  # here too, for the file's own line number (a skipped header shifts rows)
        raise not_text_error(path, "line", n, key, value)
    return value


def _jsonl(path: Path, src_key: str, tgt_key: str, settings: tuple[str, str],
           names: set[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    for n, line in enumerate(_lines(path, "JSONL file"), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {n} is not valid JSON ({err.msg} at column {err.colno}); "
                            "fix or remove that line") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {n} is a JSON {type(row).__name__}, expected an object")
        pair = _field(row, src_key, path, n, settings[0]), _field(row, tgt_key, path, n, settings[1])
        if not _is_header(n, pair, names, path):
            yield pair


def _side_file(base: Path, stem: str, lang: str, setting: str) -> Path:
    for cand in (base / f"{stem}.{lang}", base / f"{stem}.{lang}.gz"):
        if cand.exists():
            return cand
    raise DataError(f"{setting}={stem!r}: neither {base / f'{stem}.{lang}'} nor its .gz exists; "
                    f"name a stem with files <stem>.{lang}[.gz], or a .tsv/.jsonl file")


def file_corpus(base: Path, entry: str, src: str, tgt: str, *, setting: str,
                fields: tuple[str | None, str | None] = (None, None), limit: int | None = None) -> Corpus:
    """The corpus a config entry names: a ``.tsv``/``.jsonl`` file (``.gz`` too), or a stem whose
    ``<stem>.<src>[.gz]`` and ``<stem>.<tgt>[.gz]`` files align line by line."""
    path = Path(entry).expanduser()
    path = path if path.is_absolute() else base / path
    kind = next((k for k in TABULAR if path.name.endswith((k, k + ".gz"))), None)
    if kind is not None:
        if not path.exists():
            raise DataError(f"{setting}: missing data file {path}; check the path and data.dir")
        keys = (fields[0] or src, fields[1] or tgt)
        names = {(src, tgt), keys}  # a header row holds the language codes or the field names
        read = (lambda: itertools.islice(_tsv(path, names), limit)) if kind == ".tsv" else (
            lambda: itertools.islice(_jsonl(path, *keys, ("data.src_field", "data.tgt_field"), names), limit))
        files, labels = (path,), (("source", "target") if kind == ".tsv" else keys)
    else:
        sp, tp = _side_file(path.parent, path.name, src, setting), _side_file(path.parent, path.name, tgt, setting)
        read, files, labels = (lambda: _parallel(sp, tp, limit)), (sp, tp), (src, tgt)
    return Corpus(name=str(path), files=files, batches=lambda: _batched(read()), fields=labels)
