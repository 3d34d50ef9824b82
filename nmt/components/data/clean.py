"""Cleaning in one pass over Arrow: normalise, count words, hash each side; then the filters
as numpy masks over those columns (never a Python set of strings, so memory stays ~20 bytes
a pair): empty, over-long and length-ratio pairs, pairs carved out for val/test, exact
duplicates, and training pairs whose source or target appears in a val/test split.

Hashes: pandas' vectorised SipHash (fixed key, so the same text hashes the same in every
process); a pair's hash mixes both sides'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from datasets import Dataset, Features, Value

from nmt.components.text import normalize

HASH_COLS = ("src_hash", "tgt_hash")
WORK_COLS = ("changed", "src_words", "tgt_words", *HASH_COLS)  # dropped once the filters ran
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
CLEAN_FEATURES = Features({"src": Value("string"), "tgt": Value("string"), "changed": Value("bool"),
                           "src_words": Value("int32"), "tgt_words": Value("int32"),
                           "src_hash": Value("uint64"), "tgt_hash": Value("uint64")})


def text_hash(texts: list[str]) -> np.ndarray:
    """uint64 per text, the same in every process and run."""
    return pd.util.hash_array(np.asarray(texts, dtype=object))


def mix(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """A 64-bit mix of two hashes (splitmix64's finaliser over ``a * golden ^ b``)."""
    with np.errstate(over="ignore"):
        z = (a * _GOLDEN) ^ np.uint64(b) if np.isscalar(b) else (a * _GOLDEN) ^ b
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def clean_batch(batch: dict[str, list]) -> dict[str, list | np.ndarray]:
    """One batched ``map`` step: normalised text, whether it changed, word counts, hashes."""
    src = [normalize(s) for s in batch["src"]]
    tgt = [normalize(t) for t in batch["tgt"]]
    changed = [a != b or c != d for a, b, c, d in zip(src, batch["src"], tgt, batch["tgt"])]
    return {"src": src, "tgt": tgt, "changed": changed,
            "src_words": [len(s.split()) for s in src], "tgt_words": [len(t.split()) for t in tgt],
            "src_hash": text_hash(src), "tgt_hash": text_hash(tgt)}


def columns(ds: Dataset, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Whole columns as numpy arrays (fixed-width: a few bytes a pair), read in one slice
    (``ds[name]`` is a lazy column that numpy would read row by row)."""
    got = ds.with_format("numpy", columns=list(names))[:]
    return {n: got[n].astype(np.uint64) if n in HASH_COLS else got[n] for n in names}


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
