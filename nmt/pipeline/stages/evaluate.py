"""evaluate: decode the test splits with the best checkpoint and score with sacreBLEU.

Reads ``checkpoints/best.ckpt`` + ``model_config.json`` from the train run and the data
from the prepare run. Logs ``<split>/<search>/{bleu,chrf,ter}`` (0-100; BLEU and TER
tokenized for the target language, ``evaluate.bleu_tokenize``) with signatures as tags,
``hypotheses/<split>.<search>.txt`` and a sample-translation table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.components.tracking import names as N
from nmt.components.system import progress
from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.search import translate_ids
from nmt.components.training.devices import describe, inference_device
from nmt.components.evaluation.evalkey import EvalKey
from nmt.components.evaluation.scoring import MetricChoice, corpus_scores, paper_bleu, warn
from nmt.components.models.base import Seq2SeqModel
from nmt.components.tracking.run import RunLog
from nmt.components.evaluation.figures import explorer_entry, log_attention_maps, log_explorer, log_length_analysis
from nmt.pipeline.evaluated import EvaluateOutputs, hypotheses_path
from nmt.pipeline.stages.runner import Context, execute
from nmt.pipeline.upstream import PreparedData
from nmt.pipeline.trained import trained_model
from nmt.components.system.scratch import scratch

if TYPE_CHECKING:  # annotations only: the config loader is not code this stage runs
    from nmt.components.evaluation.goldset import GoldSet
    from nmt.pipeline.config import EvaluateConfig, PipelineConfig


def searches(beam_size: int) -> list[tuple[str, int]]:
    """Metric-name part and beam size: greedy always, beam<k> when k > 1."""
    return [("greedy", 1)] + ([(f"beam{beam_size}", beam_size)] if beam_size > 1 else [])


def metric_name(split: str, search: str, metric: str) -> str:
    return EvalKey(split, search, metric).key


def decode_split(model: Seq2SeqModel, dm: TranslationDataModule, split: str, codec: TextCodec,
                 *, beam_size: int, length_penalty: float, max_len_ratio: float) -> list[str]:
    """Detokenized hypotheses for every sentence of ``split``, in corpus order."""
    out: dict[int, str] = {}
    loader = dm.split_loader(split)
    for batch in progress.track(loader, f"evaluate {split} beam {beam_size}", len(loader), "batch"):
        ids = translate_ids(model, batch["src"], batch["src_mask"], beam_size=beam_size,
                            length_penalty=length_penalty, max_len_ratio=max_len_ratio)
        out.update(zip(batch["idx"], codec.decode_tgt(ids)))
    return [out[i] for i in range(len(out))]


def _log_samples_and_figures(run: RunLog, model: Seq2SeqModel, codec: TextCodec, shown: tuple, label: str,
                             e: EvaluateConfig, metric: MetricChoice, tmp: Path) -> None:
    srcs, src_lens, refs, hyps = shown
    n = min(e.num_samples, len(hyps))
    run.log_table({"source": srcs[:n], "reference": refs[:n], "hypothesis": hyps[:n]}, N.SAMPLES_TABLE)
    log_length_analysis(run, src_lens, hyps, refs, label, tmp / N.LENGTH_DIR, metric.tokenize)
    if log_attention_maps(run, model, codec, srcs[: e.attention_samples], label, tmp / N.ATTENTION_DIR):
        entry = explorer_entry(model, codec, srcs[: e.attention_samples], label, e.beam_size)
        log_explorer(run, entry, srcs[: e.attention_samples], refs, tmp / "explorer")


def evaluate_params(cfg: PipelineConfig, prepare_run_id: str, train_run_id: str) -> dict[str, str]:
    """The reuse key's params: every config value the body reads (decoding batches by
    ``trainer.batch_tokens``; ``data`` resolves ``evaluate.splits`` and, by its target
    language, the metric, both here)."""
    splits = cfg.evaluate.resolve(cfg.data)
    return {**flatten(to_dict(replace(cfg.evaluate, splits=splits)), "evaluate."),
            "trainer.batch_tokens": str(cfg.trainer.batch_tokens), N.PARAM_PREPARE_RUN: prepare_run_id,
            N.PARAM_TRAIN_RUN: train_run_id, N.PARAM_METRIC: cfg.evaluate.metric(cfg.data).key}


def score_splits(run: RunLog, model: Seq2SeqModel, dm: TranslationDataModule, codec: TextCodec,
                 splits: list[str], e: EvaluateConfig, metric: MetricChoice,
                 out_dir: Path, lang: str) -> tuple[dict[str, float], tuple | None]:
    """Decode every split with every search into ``out_dir``'s hypotheses and score it (``lang``:
    the target language, for the papers' Moses tokens). Returns the scores
    and what the figures show: the first split's key and (sources, their token counts,
    references, hypotheses)."""
    scores: dict[str, float] = {}
    figures_from = None  # the first split's best search
    for split in splits:
        if split not in dm.ds:
            run.set_tag(f"skipped.{split}", "no data for this language pair")
            continue
        refs, srcs = dm.ds[split]["tgt"], dm.ds[split]["src"]
        for search, k in searches(e.beam_size):
            hyps = decode_split(model, dm, split, codec, beam_size=k,
                                length_penalty=e.length_penalty, max_len_ratio=e.max_len_ratio)
            (out_dir / hypotheses_path(split, search)).write_text("\n".join(hyps) + "\n")
            paper = {f"bleu_{c}": paper_bleu(hyps, refs, c, lang) for c in e.paper_bleu}
            for name, s in {**corpus_scores(hyps, refs, metric), **paper}.items():
                key = EvalKey(split, search, name)
                scores[key.key] = s.score
                run.set_tag(f"signature.{name}", s.signature)
        figures_from = figures_from or (key, (srcs, dm.ds[split]["src_len"], refs, hyps))
    return scores, figures_from


def gold_set(cfg: PipelineConfig) -> GoldSet | None:
    """``evaluate.alignment_gold``'s pairs and links (None when not set)."""
    e = cfg.evaluate
    if e.alignment_gold is None:
        return None
    from nmt.components.evaluation.goldset import read_gold_set  # forced decoding: only with a gold set
    return read_gold_set(e.alignment_gold, cfg.data.src_lang, cfg.data.tgt_lang, e.alignment_encoding)


def log_alignment(run: RunLog, model: Seq2SeqModel, codec: TextCodec, gold: GoldSet, e: EvaluateConfig, label: str,
                  tmp: Path) -> dict[str, float]:
    """The AER of every readout against ``gold``: the table logged, the default readout as a
    tag, the first ``attention_samples`` pairs in the gold explorer; returns the ``aer/<readout>`` metrics."""
    from nmt.components.decoding.forced import default_readout
    from nmt.components.evaluation.aer import aer_columns, aer_key
    from nmt.components.evaluation.goldset import log_explorer as log_gold_explorer, score_readouts
    table = score_readouts(model, codec, gold)
    run.set_tag(N.TAG_ALIGN_READOUT, default_readout(model))
    run.log_table(aer_columns(table), f"{N.ALIGNMENT_DIR}/{N.AER_TABLE}")
    if e.attention_samples:
        log_gold_explorer(run, model, codec, gold, e.attention_samples, label, tmp / "explorer_gold")
    return {aer_key(n): s.aer for n, s in table.items()}


def evaluate_body(run: RunLog, cfg: PipelineConfig, prepare_run_id: str, train_run_id: str,
                  gold: GoldSet | None = None) -> None:
    """The evaluate run's work: scores, hypotheses, samples and the first split's figures; with
    ``gold``, the AER of every attention readout."""
    e = cfg.evaluate
    data = PreparedData.load(run.store, prepare_run_id)
    model, spec = trained_model(run.store, train_run_id)
    device = inference_device()
    model.to(device)
    label = spec.config.label  # seq2seq-gru, attention, transformer: the trained model's own config
    run.set_tags({N.TAG_ARCH: label, N.TAG_DEVICE: describe(device)})
    dm = TranslationDataModule(data.data_dir, max_tokens=cfg.trainer.batch_tokens,
                               max_positions=model.max_positions)  # a longer source is cut, as translate cuts it
    dm.setup()
    with scratch("evaluate") as tmp:
        hyp_dir = Path(tmp) / N.HYPOTHESES_DIR
        hyp_dir.mkdir()
        # the primary split first: the figures and compare read it
        metric = e.metric(cfg.data)
        warn(metric)
        scores, figures_from = score_splits(run, model, dm, data.codec, e.resolve(cfg.data), e, metric, Path(tmp),
                                            cfg.data.tgt_lang)
        if figures_from:
            key, shown = figures_from
            _log_samples_and_figures(run, model, data.codec, shown, label, e, metric, Path(tmp))
            run.set_tag(N.TAG_ANALYSIS_SPLIT, key.decoded)
        if gold is not None:
            scores.update(log_alignment(run, model, data.codec, gold, e, label, Path(tmp)))
        run.log_metrics(scores)
        (Path(tmp) / N.SCORES).write_text(json.dumps(scores, indent=2))
        run.log_artifacts(hyp_dir, N.HYPOTHESES_DIR)
        run.log_artifact(Path(tmp) / N.SCORES)


def run_evaluate(cfg: PipelineConfig, ctx: Context, prepare_run_id: str, train_run_id: str) -> EvaluateOutputs:
    params = evaluate_params(cfg, prepare_run_id, train_run_id)  # also checks evaluate.splits before any run
    gold = gold_set(cfg)  # and a bad alignment gold set

    def body(run: RunLog) -> None:
        evaluate_body(run, cfg, prepare_run_id, train_run_id, gold)

    run = execute("evaluate", ctx, cfg, params, body)
    return EvaluateOutputs(run.id, dict(run.metrics))
