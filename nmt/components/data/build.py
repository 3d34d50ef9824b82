"""prepare's core, streaming: raw pairs -> Arrow on disk -> one cleaning pass -> numpy filters ->
a tokenizer trained on a bounded seeded sample -> tokenized splits written to Arrow, training
pairs over ``data.max_tokens`` subword tokens left out as they are written. Each pass
reads an Arrow file batch by batch (no memory map, so the corpus never joins the process's
resident pages) and writes the next one; nothing holds the corpus in Python objects, and no
worker processes are forked. What grows with the corpus is ~35 bytes a pair of numpy
columns (hashes, character and token counts, kept rows).

Output columns per split: ``idx`` (0..n-1), ``src``, ``tgt`` (normalised text), ``src_ids``,
``tgt_ids`` (int32, no BOS/EOS), ``src_len``, ``tgt_len``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, List, Value, disable_progress_bars
from tokenizers import Tokenizer

from nmt.components.data import clean
from nmt.components.system import progress
from nmt.components.data.source_config import DataConfig
from nmt.components.data.encode import encode_column
from nmt.components.data.sources import Plan
from nmt.components.data.tokenizer import train_tokenizer

log = logging.getLogger("nmt")
RAW_SCHEMA = pa.schema([("src", pa.string()), ("tgt", pa.string())])
FEATURES = Features({"src": Value("string"), "tgt": Value("string"), "idx": Value("int64"),
                     "src_ids": List(Value("int32")), "tgt_ids": List(Value("int32")),
                     "src_len": Value("int32"), "tgt_len": Value("int32")})
ENCODE_ROWS = 50_000  # pairs tokenized at once: more distinct pieces shared, ~40 MB of ids


@dataclass
class Built:
    data: DatasetDict
    src_tok: Tokenizer
    tgt_tok: Tokenizer
    stats: dict[str, float]
    corpora: dict[str, int]           # training corpus -> raw pairs read


@dataclass(frozen=True)
class Selected:
    """A split: the rows it keeps (ascending) of a cleaned Arrow file."""
    path: Path
    rows: np.ndarray


def batches(path: Path) -> Iterator[pa.RecordBatch]:
    """An Arrow stream file's batches, read (not memory-mapped) one at a time."""
    with pa.OSFile(str(path)) as f, pa.ipc.open_stream(f) as reader:
        yield from reader


def write_raw(plan: Plan, split: str, path: Path, corpora: dict[str, int]) -> Path:
    """Stream a split's corpora into one Arrow file, batch by batch; counts pairs per corpus."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, RAW_SCHEMA) as writer, \
            progress.counter(f"prepare: read {split}") as bar:
        for corpus in plan.splits[split]:
            n = 0
            for src, tgt in corpus.pairs():  # every value checked before any work
                writer.write_batch(pa.record_batch([pa.array(src, pa.string()), pa.array(tgt, pa.string())],
                                                   schema=RAW_SCHEMA))
                n += len(src)
                bar.update(len(src))
            corpora[corpus.name] = n
    return path


def clean_file(raw: Path, out: Path) -> dict[str, np.ndarray]:
    """Normalised pairs of ``raw`` into ``out``; :data:`clean.WORK_COLS` of every pair, as numpy."""
    parts: dict[str, list[np.ndarray]] = {k: [np.empty(0, t)] for k, t in clean.WORK_COLS.items()}
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, RAW_SCHEMA) as writer, \
            progress.counter(f"prepare: clean {raw.stem}") as bar:
        for batch in batches(raw):
            bar.update(batch.num_rows)
            text, work = clean.clean_batch(batch)
            writer.write_batch(text)
            for k, v in work.items():
                parts[k].append(v)
    raw.unlink()  # read once; its disk space is better spent on the next pass
    return {k: np.concatenate(v) for k, v in parts.items()}


def clean_splits(plan: Plan, d: DataConfig, work: Path, corpora: dict[str, int],
                 stats: dict[str, float]) -> tuple[dict[str, Selected], dict[str, clean.Tally]]:
    """Every split cleaned and filtered (train last: it needs the val/test hashes); carved
    splits taken from training. Returns, per split, its cleaned file and kept rows, and its
    counts; a split left empty is a :class:`DataError` naming the filter."""
    cols, files = {}, {}
    for split in plan.splits:
        raw = write_raw(plan, split, work / f"raw-{split}.arrow", corpora if split == "train" else {})
        files[split] = work / f"clean-{split}.arrow"
        cols[split] = clean_file(raw, files[split])
    out: dict[str, Selected] = {}
    tallies: dict[str, clean.Tally] = {}
    eval_src, eval_tgt = [], []
    masks = {split: clean.row_filters(c, max_len_ratio=d.max_len_ratio if split == "train" else None)
             for split, c in cols.items()}  # only training pairs are length-filtered: tests are scored in full
    stats["train/len_ratio_typical"] = masks["train"][2]  # target/source characters: dropped_ratio's centre
    for split in ["train", *[s for s in cols if s != "train"]]:  # an empty training corpus is the first error
        ok, counts, _ = masks[split]
        tallies[split] = clean.Tally(len(ok), counts)
        _check(split, int(ok.sum()), tallies[split], d)
        if split != "train":
            out[split] = Selected(files[split], np.flatnonzero(ok))
            eval_src.append(cols[split]["src_hash"][ok]), eval_tgt.append(cols[split]["tgt_hash"][ok])
    train_cols, (train_ok, _, _) = cols["train"], masks["train"]
    pairs = clean.pair_hash(train_cols)
    carved_rows = clean.carve(pairs, train_ok, list(plan.carve.values()), d.seed)
    for split, rows in zip(plan.carve, carved_rows):
        out[split], tallies[split] = Selected(files["train"], rows), clean.Tally(len(rows), carved=True)
        _check(split, len(rows), tallies[split], d)
        eval_src.append(train_cols["src_hash"][rows]), eval_tgt.append(train_cols["tgt_hash"][rows])
    contaminants = (np.unique(np.concatenate(eval_src)), np.unique(np.concatenate(eval_tgt))) \
        if d.decontaminate and eval_src else (None, None)
    carved = np.concatenate([np.empty(0, np.uint64), *(pairs[r] for r in carved_rows)])
    kept = clean.train_filters(train_cols, train_ok, tallies["train"].counts, carved=carved,
                               dedup=d.dedup, eval_src=contaminants[0], eval_tgt=contaminants[1])
    out["train"] = Selected(files["train"], kept.keep)
    _check("train", len(kept.keep), tallies["train"], d)
    first = [s for s in ("train", "val") if s in out]
    return {s: out[s] for s in [*first, *[s for s in out if s not in first]]}, tallies


def _check(split: str, kept: int, tally: clean.Tally, d: DataConfig) -> None:
    if kept == 0:
        raise clean.empty_error(split, tally, d)


def _record(stats: dict[str, float], split: str, tally: clean.Tally, kept: int, d: DataConfig) -> None:
    """The split's counts into ``stats`` and the log; a split the length filters emptied fails."""
    _check(split, kept, tally, d)
    stats[f"{split}/pairs"] = kept
    stats[f"{split}/raw_pairs"] = tally.raw
    for k, v in tally.counts.items():
        stats[f"{split}/{k}"] = v
    log.info("prepare: %s: %d pairs kept of %d (%s)", split, kept, tally.raw,
             ", ".join(f"{k} {v}" for k, v in tally.counts.items()) or "carved")


def tokenizer_sample(train: Selected, d: DataConfig) -> Selected:
    """A seeded sample of ``data.tokenizer_sample_pairs`` pairs (all of them, in order, when
    the corpus is smaller), as sentencepiece's ``input_sentence_size`` bounds its input."""
    n = len(train.rows)
    if n <= d.tokenizer_sample_pairs:
        return train
    pick = np.sort(np.random.default_rng(d.seed).choice(n, d.tokenizer_sample_pairs, replace=False))
    return Selected(train.path, train.rows[pick])


def selected_batches(path: Path, wanted: dict[str, np.ndarray], rows: int = 0) -> Iterator[tuple[str, pa.Table]]:
    """One pass over a cleaned file: each split's rows, in order, in tables of at least
    ``rows`` pairs (the last one of a split may be smaller)."""
    pending: dict[str, list[pa.RecordBatch]] = {s: [] for s in wanted}
    start = 0
    for batch in batches(path):
        end = start + batch.num_rows
        for split, keep in wanted.items():
            lo, hi = np.searchsorted(keep, [start, end])
            if hi > lo:
                pending[split].append(batch.take(pa.array(keep[lo:hi] - start)))
            if pending[split] and sum(b.num_rows for b in pending[split]) >= rows:
                yield split, pa.Table.from_batches(pending[split])
                pending[split] = []
        start = end
    for split, left in pending.items():
        if left:
            yield split, pa.Table.from_batches(left)


def text_batches(sel: Selected, sides: tuple[str, ...]) -> Iterator[list[str]]:
    """Every sentence of the first side, then of the next, in batches."""
    for side in sides:
        for _, table in selected_batches(sel.path, {"sample": sel.rows}):
            yield table.column(side).to_pylist()


def train_tokenizers(train: Selected, d: DataConfig) -> tuple[Tokenizer, Tokenizer]:
    sample = tokenizer_sample(train, d)
    if d.joint_vocab:
        tok = train_tokenizer(text_batches(sample, ("src", "tgt")), kind=d.tokenizer, vocab_size=d.vocab_size)
        return tok, tok
    return (train_tokenizer(text_batches(sample, ("src",)), kind=d.tokenizer, vocab_size=d.vocab_size),
            train_tokenizer(text_batches(sample, ("tgt",)), kind=d.tokenizer, vocab_size=d.vocab_size))


def encoded(table: pa.Table, first: int, src_tok: Tokenizer, tgt_tok: Tokenizer,
            max_tokens: int | None, counts: dict[str, int]) -> pa.RecordBatch:
    """Cleaned pairs -> rows of :data:`FEATURES`, numbered from ``first``; with ``max_tokens``,
    only the pairs whose sides hold at most that many tokens (the others counted in ``counts``)."""
    src_ids, tgt_ids = encode_column(src_tok, table.column("src")), encode_column(tgt_tok, table.column("tgt"))
    src_len, tgt_len = pc.list_value_length(src_ids), pc.list_value_length(tgt_ids)
    cols = {"src": table.column("src").combine_chunks(), "tgt": table.column("tgt").combine_chunks(),
            "src_ids": src_ids, "tgt_ids": tgt_ids, "src_len": src_len, "tgt_len": tgt_len}
    if max_tokens:
        ok, removed = clean.length_filter(src_len.to_numpy(), tgt_len.to_numpy(), max_tokens)
        for k, v in removed.items():
            counts[k] = counts.get(k, 0) + v
        mask = pa.array(ok)
        cols = {k: pc.filter(v, mask) for k, v in cols.items()}
    n = len(cols["src"])
    cols["idx"] = pa.array(np.arange(first, first + n, dtype=np.int64))
    return pa.record_batch([cols[f] for f in FEATURES], schema=FEATURES.arrow_schema)


def tokenize(splits: dict[str, Selected], src_tok: Tokenizer, tgt_tok: Tokenizer, work: Path,
             tallies: dict[str, clean.Tally], d: DataConfig, stats: dict[str, float]) -> DatasetDict:
    """Each split tokenized into ``work/<split>.arrow``, one pass per cleaned file; training
    loses the pairs over ``data.max_tokens`` (val and test splits are scored in full: evaluate
    cuts a source to the model's positions). Every split's counts and token statistics into
    ``stats``."""
    paths = {s: work / f"{s}.arrow" for s in splits}
    lens: dict[str, list[np.ndarray]] = {f"{s}/{side}": [] for s in splits for side in ("src", "tgt")}
    for path in dict.fromkeys(sel.path for sel in splits.values()):
        wanted = {s: sel.rows for s, sel in splits.items() if sel.path == path}
        with contextlib.ExitStack() as stack:
            writers = {s: stack.enter_context(pa.ipc.new_stream(stack.enter_context(pa.OSFile(str(paths[s]), "wb")),
                                                                FEATURES.arrow_schema)) for s in wanted}
            done = dict.fromkeys(wanted, 0)
            bar = stack.enter_context(progress.counter(f"prepare: tokenize {'+'.join(wanted)}",
                                                       sum(len(r) for r in wanted.values())))
            for split, table in selected_batches(path, wanted, ENCODE_ROWS):
                bar.update(table.num_rows)
                bound = d.max_tokens if split == "train" else None
                batch = encoded(table, done[split], src_tok, tgt_tok, bound, tallies[split].counts)
                writers[split].write_batch(batch)
                done[split] += batch.num_rows
                for side in ("src", "tgt"):
                    lens[f"{split}/{side}"].append(batch.column(f"{side}_len").to_numpy())
    for split in splits:
        _record(stats, split, tallies[split], sum(len(x) for x in lens[f"{split}/src"]), d)
        stats.update(length_stats({side: np.concatenate(lens[f"{split}/{side}"]) for side in ("src", "tgt")}, split))
    return DatasetDict({s: Dataset.from_file(str(p)) for s, p in paths.items()})


def length_stats(lens: dict[str, np.ndarray], split: str) -> dict[str, float]:
    """Mean, p95 (statistics.quantiles' exclusive method) and max of each side's token count."""
    out = {}
    for side, n in lens.items():
        x = n.astype(np.float64)
        p95 = float(np.percentile(x, 95, method="weibull")) if len(x) > 1 else float(x[0])
        out.update({f"{split}/{side}_len_mean": float(x.mean()), f"{split}/{side}_len_p95": p95,
                    f"{split}/{side}_len_max": float(x.max())})
    return out


def save_to_disk(data: DatasetDict, path: Path) -> None:
    """``data.save_to_disk(path)``, but each split's Arrow file (one file, as :func:`tokenize`
    wrote it) is moved into place instead of copied through a memory map, which would put
    the whole corpus among the process's resident pages. ``datasets`` writes the rest of the
    layout (dataset_dict.json, each split's state.json and dataset_info.json) from one-row
    splits; ``data`` stays readable (same file system, the maps follow the moved files)."""
    DatasetDict({s: ds.select([0]) for s, ds in data.items()}).save_to_disk(str(path))
    for split, ds in data.items():
        state_path = path / split / "state.json"
        state = json.loads(state_path.read_text())
        (target,) = state["_data_files"]
        (source,) = ds.cache_files
        os.replace(source["filename"], path / split / target["filename"])
        state["_fingerprint"] = ds._fingerprint
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True))


def build(plan: Plan, d: DataConfig, work: Path) -> Built:
    """Everything prepare produces, with its Arrow files under ``work``."""
    if not progress.bars():
        disable_progress_bars()  # the stage's save_to_disk would print a bar per split
    stats: dict[str, float] = {}
    corpora: dict[str, int] = {}
    splits, tallies = clean_splits(plan, d, work, corpora, stats)
    for i, (name, n) in enumerate(corpora.items()):
        stats[f"train/corpus{i}/raw_pairs"] = n
        log.info("prepare: training corpus %d: %s, %d pairs", i, name, n)
    src_tok, tgt_tok = train_tokenizers(splits["train"], d)
    stats["vocab/src"], stats["vocab/tgt"] = src_tok.get_vocab_size(), tgt_tok.get_vocab_size()
    data = tokenize(splits, src_tok, tgt_tok, work, tallies, d, stats)
    for path in dict.fromkeys(sel.path for sel in splits.values()):
        path.unlink()  # tokenized copies hold the text now
    return Built(data, src_tok, tgt_tok, stats, corpora)
