"""prepare: Multi30k raw files -> cleaned pairs -> subword tokenizer -> tokenized DatasetDict.

Produces, under the prepare run: ``data/`` (DatasetDict, Arrow), ``tokenizer/src.json``
and ``tokenizer/tgt.json``, ``data_stats.json``; logs dataset lineage and counts.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from datasets import Dataset, DatasetDict
from mlflow.entities import Run
from tokenizers import Tokenizer

from nmt.components import names as N
from nmt.components.config import flatten, to_dict
from nmt.components.data.multi30k import (DataError, download, load_split, resolve_data_dir,
                                      sha256_file, splits_for_pair)
from nmt.components.data.tokenizer import train_tokenizer
from nmt.components.tracking import project_home
from nmt.pipeline.config import PipelineConfig
from nmt.pipeline.stages.common import Context, execute


@dataclass(frozen=True)
class PrepareOutputs:
    run_id: str
    data_uri: str
    tokenizer_uri: str


def _source_digest(data_dir: Path, files: list[str]) -> str:
    """Checksum of the raw files this pair reads: a data change changes the reuse key."""
    missing = [f for f in files if not (data_dir / f).is_file()]
    if missing:
        raise DataError(f"missing data file: {data_dir / missing[0]}")
    return ",".join(sha256_file(data_dir / f)[:12] for f in files)


def _length_stats(lengths: list[int]) -> dict[str, float]:
    q = statistics.quantiles(lengths, n=20) if len(lengths) > 1 else [lengths[0]] * 19
    return {"mean": statistics.fmean(lengths), "p95": q[18], "max": max(lengths)}


def prepare_inputs(cfg: PipelineConfig) -> tuple[Path, list[str], dict[str, str]]:
    """Validate the data source before any run starts; returns dir, splits and params."""
    d = cfg.data
    cache = project_home() / ".nmt" / "multi30k"
    data_dir = resolve_data_dir(d.dir, cache)
    splits = splits_for_pair(d.src_lang, d.tgt_lang)
    files = [f"{s}.{lang}.gz" for s in splits for lang in (d.src_lang, d.tgt_lang)]
    if data_dir == cache:  # no local copy given: fetch (skips files already verified)
        download(files, cache)
    params = flatten(to_dict(d), "data.")
    params["data.dir"] = str(data_dir)
    params["data.source_digest"] = _source_digest(data_dir, files)
    return data_dir, splits, params


def build_dataset(cfg: PipelineConfig, data_dir: Path, splits: list[str]
                  ) -> tuple[DatasetDict, Tokenizer, Tokenizer, dict[str, float]]:
    """Clean the pairs, train the tokenizer(s) on the training split, tokenize every split."""
    d = cfg.data
    texts, stats = {}, {}
    for split in splits:
        limit = {"train": d.train_limit, "val": d.val_limit}.get(split, d.test_limit)
        # Only training pairs are length-filtered: test sets are scored in full.
        texts[split] = load_split(data_dir, split, d.src_lang, d.tgt_lang, limit=limit,
                                  max_words=d.max_words if split == "train" else None)
        stats[f"{split}/pairs"] = len(texts[split].src)
        stats[f"{split}/dropped_empty"] = texts[split].dropped_empty
        stats[f"{split}/dropped_long"] = texts[split].dropped_long
    train = texts["train"]
    if d.joint_vocab:
        src_tok = tgt_tok = train_tokenizer(train.src + train.tgt, kind=d.tokenizer, vocab_size=d.vocab_size)
    else:
        src_tok = train_tokenizer(train.src, kind=d.tokenizer, vocab_size=d.vocab_size)
        tgt_tok = train_tokenizer(train.tgt, kind=d.tokenizer, vocab_size=d.vocab_size)
    stats["vocab/src"], stats["vocab/tgt"] = src_tok.get_vocab_size(), tgt_tok.get_vocab_size()
    ds = {}
    for split, t in texts.items():
        src_ids = [e.ids for e in src_tok.encode_batch(t.src)]
        tgt_ids = [e.ids for e in tgt_tok.encode_batch(t.tgt)]
        ds[split] = Dataset.from_dict({
            "idx": list(range(len(t.src))), "src": t.src, "tgt": t.tgt,
            "src_ids": src_ids, "tgt_ids": tgt_ids,
            "src_len": [len(x) for x in src_ids], "tgt_len": [len(x) for x in tgt_ids]})
        for side in ("src", "tgt"):
            for k, v in _length_stats(ds[split][f"{side}_len"]).items():
                stats[f"{split}/{side}_len_{k}"] = v
    return DatasetDict(ds), src_tok, tgt_tok, stats


def run_prepare(cfg: PipelineConfig, ctx: Context) -> PrepareOutputs:
    d = cfg.data
    data_dir, splits, params = prepare_inputs(cfg)

    def body(run_id: str) -> None:
        dsd, src_tok, tgt_tok, stats = build_dataset(cfg, data_dir, splits)
        mlflow.log_metrics({k: float(v) for k, v in stats.items()})
        for split, dset in dsd.items():
            mlflow.log_input(mlflow.data.from_huggingface(
                dset, path=str(data_dir), name=f"multi30k-{d.src_lang}-{d.tgt_lang}-{split}"),
                context="training" if split == "train" else split)

        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            dsd.save_to_disk(str(tmp / N.DATA_DIR))
            (tmp / N.TOKENIZER_DIR).mkdir()
            src_tok.save(str(tmp / N.TOKENIZER_DIR / N.SRC_TOKENIZER))
            tgt_tok.save(str(tmp / N.TOKENIZER_DIR / N.TGT_TOKENIZER))
            (tmp / N.DATA_STATS).write_text(json.dumps(stats, indent=2))
            mlflow.log_artifacts(str(tmp / N.DATA_DIR), N.DATA_DIR)
            mlflow.log_artifacts(str(tmp / N.TOKENIZER_DIR), N.TOKENIZER_DIR)
            mlflow.log_artifact(str(tmp / N.DATA_STATS))

    return prepare_outputs(execute("prepare", ctx, cfg, params, body))


def prepare_outputs(run: Run) -> PrepareOutputs:
    base = run.info.artifact_uri
    return PrepareOutputs(run.info.run_id, f"{base}/{N.DATA_DIR}", f"{base}/{N.TOKENIZER_DIR}")
