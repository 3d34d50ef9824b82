"""prepare's core, streaming: raw pairs -> Arrow on disk -> one cleaning pass (batched ``map``,
``num_proc``) -> numpy filters -> a tokenizer trained on a bounded seeded sample -> tokenized
splits. Nothing holds the corpus in Python objects; peak memory is a few batches plus
fixed-width numpy columns (hashes, word counts).

Output columns per split: ``idx`` (0..n-1), ``src``, ``tgt`` (normalised text), ``src_ids``,
``tgt_ids`` (int32, no BOS/EOS), ``src_len``, ``tgt_len``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, Features, List, Value, disable_progress_bars
from tokenizers import Tokenizer

from nmt.components.data import clean
from nmt.components.data.config import DataConfig
from nmt.components.data.sources import BATCH, DataError, Plan
from nmt.components.data.tokenizer import train_tokenizer

log = logging.getLogger("nmt")
RAW_SCHEMA = pa.schema([("src", pa.string()), ("tgt", pa.string())])
FEATURES = Features({"src": Value("string"), "tgt": Value("string"), "idx": Value("int64"),
                     "src_ids": List(Value("int32")), "tgt_ids": List(Value("int32")),
                     "src_len": Value("int32"), "tgt_len": Value("int32")})


@dataclass
class Built:
    data: DatasetDict
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    stats: dict[str, float]
    corpora: dict[str, int]           # training corpus -> raw pairs read


def write_raw(plan: Plan, split: str, path: Path, corpora: dict[str, int]) -> Dataset:
    """Stream a split's corpora into one Arrow file, batch by batch; counts pairs per corpus."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, RAW_SCHEMA) as writer:
        for corpus in plan.splits[split]:
            n = 0
            for src, tgt in corpus.batches():
                writer.write_batch(pa.record_batch([pa.array(src, pa.string()), pa.array(tgt, pa.string())],
                                                   schema=RAW_SCHEMA))
                n += len(src)
            corpora[corpus.name] = n
    return Dataset.from_file(str(path))


def _cleaned(ds: Dataset, d: DataConfig, tag: str) -> Dataset:
    return ds.map(clean.clean_batch, batched=True, batch_size=2_000, num_proc=_procs(d, ds),
                  features=clean.CLEAN_FEATURES, new_fingerprint=f"clean-{tag}-{uuid.uuid4().hex}",
                  load_from_cache_file=False)


def _procs(d: DataConfig, ds: Dataset) -> int | None:
    return d.num_proc if d.num_proc > 1 and len(ds) >= 20_000 else None  # small: forking costs more


def _empty_error(split: str, raw: int, counts: dict[str, int], d: DataConfig) -> DataError:
    what = ", ".join(f"{k.removeprefix('dropped_')} {v}" for k, v in counts.items() if v and k != "normalized")
    return DataError(f"cleaning left no pairs in split {split!r} ({raw} read; removed: {what or 'none'}); "
                     f"relax the filter that removed them (data.max_words={d.max_words}, "
                     f"data.max_len_ratio={d.max_len_ratio}, data.dedup, data.decontaminate) or fix the corpus")


def clean_splits(plan: Plan, d: DataConfig, work: Path, stats: dict[str, float],
                 corpora: dict[str, int]) -> dict[str, Dataset]:
    """Every split cleaned and filtered (train last: it needs the val/test hashes); carved
    splits taken from training. Returns datasets whose kept rows are selected."""
    cleaned = {}
    for split in plan.splits:
        raw = write_raw(plan, split, work / f"raw-{split}.arrow", corpora if split == "train" else {})
        cleaned[split] = _cleaned(raw, d, split)
    out: dict[str, Dataset] = {}
    eval_src, eval_tgt = [], []
    for split, ds in cleaned.items():
        c = clean.columns(ds, clean.WORK_COLS)
        ok, counts = clean.row_filters(c, train=split == "train", max_words=d.max_words,
                                       max_len_ratio=d.max_len_ratio)
        if split == "train":
            train_cols, train_ok, train_counts = c, ok, counts
            continue
        out[split] = ds.select(np.flatnonzero(ok))
        _count(stats, split, len(ds), counts, len(out[split]), d)
        eval_src.append(c["src_hash"][ok]), eval_tgt.append(c["tgt_hash"][ok])
    carved_rows = clean.carve(clean.pair_hash(train_cols), train_ok, list(plan.carve.values()), d.seed)
    carved_pairs = [np.empty(0, np.uint64)]
    for split, rows in zip(plan.carve, carved_rows):
        out[split] = cleaned["train"].select(rows)
        _count(stats, split, len(rows), {}, len(rows), d)
        eval_src.append(train_cols["src_hash"][rows]), eval_tgt.append(train_cols["tgt_hash"][rows])
        carved_pairs.append(clean.pair_hash(train_cols)[rows])
    contaminants = (np.unique(np.concatenate(eval_src)), np.unique(np.concatenate(eval_tgt))) \
        if d.decontaminate and eval_src else (None, None)
    kept = clean.train_filters(train_cols, train_ok, train_counts, carved=np.concatenate(carved_pairs),
                               dedup=d.dedup, eval_src=contaminants[0], eval_tgt=contaminants[1])
    out["train"] = cleaned["train"].select(kept.keep)
    _count(stats, "train", len(cleaned["train"]), kept.counts, len(kept.keep), d)
    first = [s for s in ("train", "val") if s in out]
    return {s: out[s] for s in [*first, *[s for s in out if s not in first]]}


def _count(stats: dict[str, float], split: str, raw: int, counts: dict[str, int], kept: int,
           d: DataConfig) -> None:
    if kept == 0:
        raise _empty_error(split, raw, counts, d)
    stats[f"{split}/pairs"] = kept
    stats[f"{split}/raw_pairs"] = raw
    for k, v in counts.items():
        stats[f"{split}/{k}"] = v
    log.info("prepare: %s: %d pairs kept of %d (%s)", split, kept, raw,
             ", ".join(f"{k} {v}" for k, v in counts.items()) or "carved")


def tokenizer_sample(train: Dataset, d: DataConfig) -> Dataset:
    """A seeded sample of ``data.tokenizer_sample_pairs`` pairs (all of them, in order, when
    the corpus is smaller), as sentencepiece's ``input_sentence_size`` bounds its input."""
    n = len(train)
    if n <= d.tokenizer_sample_pairs:
        return train
    return train.select(np.sort(np.random.default_rng(d.seed).choice(n, d.tokenizer_sample_pairs, replace=False)))


def text_batches(ds: Dataset, sides: tuple[str, ...]) -> Iterator[list[str]]:
    """Every sentence of the first side, then of the next, in batches."""
    for side in sides:
        for batch in ds.select_columns([side]).iter(batch_size=BATCH):
            yield batch[side]


def train_tokenizers(train: Dataset, d: DataConfig) -> tuple[Tokenizer, Tokenizer]:
    sample = tokenizer_sample(train, d)
    if d.joint_vocab:
        tok = train_tokenizer(text_batches(sample, ("src", "tgt")), kind=d.tokenizer, vocab_size=d.vocab_size)
        return tok, tok
    return (train_tokenizer(text_batches(sample, ("src",)), kind=d.tokenizer, vocab_size=d.vocab_size),
            train_tokenizer(text_batches(sample, ("tgt",)), kind=d.tokenizer, vocab_size=d.vocab_size))


def _encoder(src_tok: Tokenizer, tgt_tok: Tokenizer):
    def encode(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        # the _fast variant skips character offsets, which nothing here reads
        src = [e.ids for e in src_tok.encode_batch_fast(batch["src"])]
        tgt = [e.ids for e in tgt_tok.encode_batch_fast(batch["tgt"])]
        return {"idx": indices, "src_ids": src, "tgt_ids": tgt,
                "src_len": [len(x) for x in src], "tgt_len": [len(x) for x in tgt]}
    return encode


def tokenize(ds: Dataset, split: str, src_tok: Tokenizer, tgt_tok: Tokenizer, d: DataConfig) -> Dataset:
    drop = [c for c in ds.column_names if c not in ("src", "tgt")]
    return ds.map(_encoder(src_tok, tgt_tok), batched=True, batch_size=2_000, with_indices=True,
                  remove_columns=drop, features=FEATURES, num_proc=_procs(d, ds),
                  new_fingerprint=f"tokenize-{split}-{uuid.uuid4().hex}", load_from_cache_file=False,
                  ).select_columns(list(FEATURES))


def length_stats(ds: Dataset, split: str) -> dict[str, float]:
    """Mean, p95 (statistics.quantiles' exclusive method) and max of each side's token count."""
    out = {}
    for side in ("src", "tgt"):
        x = clean.columns(ds, (f"{side}_len",))[f"{side}_len"].astype(np.float64)
        p95 = float(np.percentile(x, 95, method="weibull")) if len(x) > 1 else float(x[0])
        out.update({f"{split}/{side}_len_mean": float(x.mean()), f"{split}/{side}_len_p95": p95,
                    f"{split}/{side}_len_max": float(x.max())})
    return out


def build(plan: Plan, d: DataConfig, work: Path) -> Built:
    """Everything prepare produces, with its Arrow files under ``work``."""
    disable_progress_bars()  # a bar per map and process would bury the log
    stats: dict[str, float] = {}
    corpora: dict[str, int] = {}
    splits = clean_splits(plan, d, work, stats, corpora)
    for i, (name, n) in enumerate(corpora.items()):
        stats[f"train/corpus{i}/raw_pairs"] = n
        log.info("prepare: training corpus %d: %s, %d pairs", i, name, n)
    src_tok, tgt_tok = train_tokenizers(splits["train"], d)
    stats["vocab/src"], stats["vocab/tgt"] = src_tok.get_vocab_size(), tgt_tok.get_vocab_size()
    data = DatasetDict({s: tokenize(ds, s, src_tok, tgt_tok, d) for s, ds in splits.items()})
    for split, ds in data.items():
        stats.update(length_stats(ds, split))
    return Built(data, src_tok, tgt_tok, stats, corpora)
