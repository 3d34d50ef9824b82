"""Cleaning in one pass over Arrow batches: normalise, count words, hash each side; then the
filters as numpy masks over those columns (never a Python set of strings, so memory stays
~25 bytes a pair): empty, over-long and length-ratio pairs, pairs carved out for val/test,
exact duplicates, and training pairs whose source or target appears in a val/test split.

Hashes: pandas' vectorised SipHash (fixed key, so the same text hashes the same in every
process); a pair's hash mixes both sides'.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nmt.components.data.text import normalize, rewrites

WORK_COLS = {"changed": np.bool_, "src_words": np.int32, "tgt_words": np.int32,  # per pair, for the
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


def word_count(texts: pa.Array) -> np.ndarray:
    """Words of normalised texts (single spaces, none at the ends), as ``len(text.split())``."""
    n = pc.add(pc.count_substring(texts, " "), pc.cast(pc.greater(pc.utf8_length(texts), 0), pa.int32()))
    return n.to_numpy(zero_copy_only=False).astype(np.int32)


def clean_batch(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, dict[str, np.ndarray]]:
    """Raw pairs (``src``, ``tgt``) -> the normalised pairs, and per pair: whether normalising
    changed it, each side's word count and hash (:data:`WORK_COLS`)."""
    raw_src, raw_tgt = batch.column("src"), batch.column("tgt")
    src, tgt = normalize_column(raw_src), normalize_column(raw_tgt)
    changed = pc.or_(pc.not_equal(src, raw_src), pc.not_equal(tgt, raw_tgt))
    work = {"changed": changed.to_numpy(zero_copy_only=False), "src_words": word_count(src),
            "tgt_words": word_count(tgt), "src_hash": text_hash(src), "tgt_hash": text_hash(tgt)}
    return pa.record_batch([src, tgt], schema=batch.schema), work


@dataclass
class Cleaned:
    """Kept row indices of one split and what each filter removed (in this order)."""
    keep: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)


def row_filters(c: dict[str, np.ndarray], *, train: bool, max_words: int | None,
                max_len_ratio: float | None) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of rows that pass the per-row filters; counts per filter, each row counted once.
    Only training pairs are length-filtered: test sets are scored in full."""
    sw, tw = c["src_words"], c["tgt_words"]
    ok = (sw > 0) & (tw > 0)
    counts = {"normalized": int(c["changed"].sum()), "dropped_empty": int((~ok).sum())}
    if train and max_words:
        long = ok & (np.maximum(sw, tw) > max_words)
        counts["dropped_long"], ok = int(long.sum()), ok & ~long
    if train and max_len_ratio:
        ratio = ok & (np.maximum(sw, tw) > max_len_ratio * np.minimum(sw, tw))
        counts["dropped_ratio"], ok = int(ratio.sum()), ok & ~ratio
    return ok, counts


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
