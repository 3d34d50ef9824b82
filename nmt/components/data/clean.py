"""Cleaning in one pass over Arrow batches: normalise, count characters, hash each side; then
the filters as numpy masks over those columns (never a Python set of strings, so memory stays
~25 bytes a pair): empty pairs, training pairs whose length ratio strays from the corpus's
typical one, pairs carved out for val/test, exact duplicates, and training pairs whose
source or target appears in a val/test split; once the tokenizer exists, training pairs with
a side over ``data.max_tokens`` subword tokens (:func:`length_filter`). Lengths are never
whitespace words, which a language written without spaces (Chinese, Japanese, Thai) does
not have: characters before the tokenizer, subword tokens (what the model sees) after it.

Hashes: pandas' vectorised SipHash (fixed key, so the same text hashes the same in every
process); a pair's hash mixes both sides'.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nmt.components.data.sources import DataError
from nmt.components.data.text import normalize, rewrites

if TYPE_CHECKING:
    from nmt.components.data.source_config import DataConfig

WORK_COLS = {"changed": np.bool_, "src_chars": np.int32, "tgt_chars": np.int32,  # per pair, for the
             "src_hash": np.uint64, "tgt_hash": np.uint64}                        # filters; dropped after
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HANGUL_V_T = (range(0x1161, 0x1176), range(0x11A8, 0x11C3))  # compose with a syllable before them


def text_hash(texts: list[str] | pa.Array) -> np.ndarray:
    """uint64 per text, the same in every process and run."""
    objects = texts.to_numpy(zero_copy_only=False) if isinstance(texts, pa.Array) else np.asarray(texts, dtype=object)
    return pd.util.hash_array(objects, categorize=False)  # categorize only pays off for repeats; same values


def mix(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """A 64-bit mix of two hashes (splitmix64's finaliser over ``a * golden ^ b``)."""
    with np.errstate(over="ignore"):
        z = (a * _GOLDEN) ^ np.uint64(b) if np.isscalar(b) else (a * _GOLDEN) ^ b
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@functools.cache
def _plain_text() -> str:
    """RE2 pattern of a text made only of spaces and code points that :func:`normalize` keeps
    as they are: BMP, no white space, control, format, mark or unassigned character, NFC-stable,
    so that NFC cannot change such a text (every code point that composes with the one before
    it is a mark, or a Hangul vowel or final consonant). Its normalisation is then only
    collapsing spaces."""
    keep = [cp for cp in range(0x21, 0x10000) if not any(cp in r for r in _HANGUL_V_T) and _plain(chr(cp))]
    ranges, start = [], keep[0]
    for a, b in zip(keep, keep[1:] + [-1]):
        if b != a + 1:
            ranges.append(f"\\x{{{start:x}}}-\\x{{{a:x}}}")
            start = b
    return "^[ " + "".join(ranges) + "]*$"


def _plain(c: str) -> bool:
    return (unicodedata.category(c)[0] not in "CMZ" and not c.isspace() and unicodedata.normalize("NFC", c) == c
            and not rewrites(ord(c)))


def normalize_column(texts: pa.Array) -> pa.Array:
    """:func:`normalize` of each text: Arrow's string kernels for texts of plain characters
    (see :func:`_plain_text`), ``normalize`` itself for the rest (none are null)."""
    plain = pc.match_substring_regex(texts, _plain_text())
    out = pc.utf8_trim(pc.replace_substring_regex(texts, "  +", " "), " ")
    if pc.all(plain).as_py():
        return out
    odd = pc.invert(plain)
    fixed = pa.array([normalize(t) for t in pc.filter(texts, odd).to_pylist()], pa.string())
    return pc.replace_with_mask(out, odd, fixed)


def char_count(texts: pa.Array) -> np.ndarray:
    """Code points of each text, as ``len(text)``."""
    return pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int32)


def clean_batch(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, np.ndarray]]:
    """Raw pairs (``src``, ``tgt``) -> the normalised pairs, and per pair: whether normalising
    changed it, each side's length in characters and hash (:data:`WORK_COLS`)."""
    raw_src, raw_tgt = batch.column("src"), batch.column("tgt")
    src, tgt = normalize_column(raw_src), normalize_column(raw_tgt)
    changed = pc.or_(pc.not_equal(src, raw_src), pc.not_equal(tgt, raw_tgt))
    work = {"changed": changed.to_numpy(zero_copy_only=False), "src_chars": char_count(src),
            "tgt_chars": char_count(tgt), "src_hash": text_hash(src), "tgt_hash": text_hash(tgt)}
    return pa.record_batch([src, tgt], schema=batch.schema), work


@dataclass
class Cleaned:
    """Kept row indices of one split and what each filter removed (in this order)."""
    keep: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def typical_ratio(src_len: np.ndarray, tgt_len: np.ndarray) -> float:
    """The median target/source length ratio (a geometric median: the ratio's log is
    symmetric, 2:1 as far from 1:1 as 1:2); 1.0 for no pairs."""
    if not len(src_len):
        return 1.0
    return float(np.exp(np.median(np.log(np.maximum(tgt_len, 1) / np.maximum(src_len, 1)))))


def row_filters(c: dict[str, np.ndarray], *, max_len_ratio: float | None = None
                ) -> tuple[np.ndarray, dict[str, int], float]:
    """Mask of rows with text on both sides and, given ``max_len_ratio`` (training), a
    target/source length ratio within that factor of the corpus's typical one; the counts
    (what normalising changed, what each filter removed) and that typical ratio.

    The ratio counts characters, as it runs before a tokenizer exists (it decides which
    pairs are carved out for val/test and which the tokenizer learns from), and measures from
    the corpus's own typical ratio, as languages differ: a Chinese sentence has about a
    third of the characters of its English translation, so a fixed band around 1:1 would drop
    a well-aligned en-zh corpus whole. For two languages of like length the typical ratio is
    about 1, and this is the classic filter (the longer side over ``max_len_ratio`` times the
    shorter: a sign of a misaligned pair)."""
    sc, tc = c["src_chars"], c["tgt_chars"]
    ok = (sc > 0) & (tc > 0)
    counts = {"normalized": int(c["changed"].sum()), "dropped_empty": int((~ok).sum())}
    typical = typical_ratio(sc[ok], tc[ok])
    if max_len_ratio:
        stray = np.abs(np.log(np.maximum(tc, 1) / np.maximum(sc, 1)) - np.log(typical))
        ratio = ok & (stray > np.log(max_len_ratio) + 1e-9)  # a tolerance: exactly the factor passes
        counts["dropped_ratio"], ok = int(ratio.sum()), ok & ~ratio
    return ok, counts, typical


def length_filter(src_len: np.ndarray, tgt_len: np.ndarray, max_tokens: int | None) -> tuple[np.ndarray, dict]:
    """Mask of tokenized pairs whose sides hold at most ``max_tokens`` subword tokens (what
    the model's positions must hold; fairseq's WMT recipes keep 1-250 BPE tokens), and the
    count of the others as ``dropped_long``."""
    if not max_tokens:
        return np.ones(len(src_len), bool), {}
    long = np.maximum(src_len, tgt_len) > max_tokens
    return ~long, {"dropped_long": int(long.sum())}


def pair_hash(c: dict[str, np.ndarray]) -> np.ndarray:
    return mix(c["src_hash"], c["tgt_hash"])


def carve(pairs: np.ndarray, ok: np.ndarray, sizes: list[int], seed: int) -> list[np.ndarray]:
    """Row indices of each carved split: distinct pairs with the smallest seeded hash, so a
    pair's fate depends on its text and the seed, never on its position."""
    rows = np.flatnonzero(ok)
    uniq, first = np.unique(pairs[rows], return_index=True)
    order = np.argsort(mix(uniq, seed), kind="stable")
    out, start = [], 0
    for n in sizes:
        out.append(np.sort(rows[first[order[start:start + n]]]))
        start += n
    return out


def train_filters(c: dict[str, np.ndarray], ok: np.ndarray, counts: dict[str, int], *, carved: np.ndarray,
                  dedup: bool, eval_src: np.ndarray, eval_tgt: np.ndarray) -> Cleaned:
    """Carved pairs (every copy), duplicates (all but the first) and contaminated pairs out."""
    pairs = pair_hash(c)
    if carved.size:
        hit = ok & np.isin(pairs, carved)
        counts["carved"], ok = int(hit.sum()), ok & ~hit
    if dedup:
        rows = np.flatnonzero(ok)
        _, first = np.unique(pairs[rows], return_index=True)
        keep = np.zeros_like(ok)
        keep[rows[first]] = True
        counts["dropped_duplicate"], ok = int(ok.sum() - keep.sum()), keep
    if eval_src is not None:
        hit = ok & (np.isin(c["src_hash"], eval_src) | np.isin(c["tgt_hash"], eval_tgt))
        counts["dropped_contaminated"], ok = int(hit.sum()), ok & ~hit
    return Cleaned(np.flatnonzero(ok), counts)


@dataclass
class Tally:
    """What one split read and what each filter removed from it, in the order they ran."""
    raw: int
    counts: dict[str, int] = field(default_factory=dict)
    carved: bool = False              # taken out of training (a val/test split the source lacks)


def _fix(name: str, d: DataConfig) -> str:
    """The key that sets filter ``name``, and what to change it to."""
    return {"dropped_empty": "fix the corpus (both sides need text)",
            "dropped_long": f"raise data.max_tokens (now {d.max_tokens}; subword tokens per side)",
            "dropped_ratio": f"raise data.max_len_ratio (now {d.max_len_ratio}, around the typical ratio) or set it "
                             "to null",
            "dropped_duplicate": "set data.dedup=false",
            "dropped_contaminated": "set data.decontaminate=false, or give val/test splits that differ from training",
            "carved": f"lower data.val_size ({d.val_size}) and data.test_size ({d.test_size}), or give "
                      "data.val and data.test"}[name]


def empty_error(split: str, tally: Tally, d: DataConfig) -> DataError:
    """One line: which filter removed how many pairs of ``split``, and the key to change."""
    removed = {k: v for k, v in tally.counts.items() if v and k != "normalized"}
    what = ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in removed.items())
    read = f"carved {tally.raw} from training" if tally.carved else f"{tally.raw} read"
    if not removed:
        fix = ("lower data.val_size and data.test_size, or give data.val and data.test" if tally.carved
               else "fix the corpus or its path")
    else:
        fix = _fix(max(removed, key=removed.get), d)
    return DataError(f"cleaning left no pairs in split {split!r} ({read}; removed: {what or 'none'}); {fix}")
