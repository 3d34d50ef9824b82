"""evaluate: decode the test splits with the best checkpoint and score with sacreBLEU.

Reads ``checkpoints/best.ckpt`` + ``model_config.json`` from the train run and the data
from the prepare run. Logs ``<split>/<search>/{bleu,chrf,ter}`` (0-100) with signatures
as tags, ``hypotheses/<split>.<search>.txt`` and a sample-translation table.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow

from components import artifacts as A
from components.config import flatten, to_dict
from components.data.datamodule import TranslationDataModule
from components.data.tokenizer import TextCodec
from components.decoding import translate_ids
from components.devices import describe, inference_device
from components.metrics import corpus_scores
from components.models.base import Seq2SeqModel
from pipeline.config import PipelineConfig
from pipeline.stages.analysis import log_attention_maps, log_length_analysis
from pipeline.stages.common import Context, execute
from pipeline.stages.train import load_trained, local_inputs


@dataclass(frozen=True)
class EvaluateOutputs:
    run_id: str
    scores: dict[str, float]


def searches(beam_size: int) -> list[tuple[str, int]]:
    """Metric-name part and beam size: greedy always, beam<k> when k > 1."""
    return [("greedy", 1)] + ([(f"beam{beam_size}", beam_size)] if beam_size > 1 else [])


def metric_name(split: str, search: str, metric: str) -> str:
    return f"{split}/{search}/{metric}"


def decode_split(model: Seq2SeqModel, dm: TranslationDataModule, split: str, codec: TextCodec,
                 *, beam_size: int, length_penalty: float, max_len_ratio: float) -> list[str]:
    """Detokenized hypotheses for every sentence of ``split``, in corpus order."""
    out: dict[int, str] = {}
    for batch in dm.split_loader(split):
        ids = translate_ids(model, batch["src"], batch["src_mask"], beam_size=beam_size,
                            length_penalty=length_penalty, max_len_ratio=max_len_ratio)
        out.update(zip(batch["idx"], codec.decode_tgt(ids)))
    return [out[i] for i in range(len(out))]


def _label(m: dict) -> str:
    """``seq2seq-gru``, ``attention``, ``transformer``: from the trained model's own config."""
    return f"{m['arch']}-{m['cell']}" if "cell" in m else str(m["arch"])


def run_evaluate(cfg: PipelineConfig, ctx: Context, prepare_run_id: str, train_run_id: str) -> EvaluateOutputs:
    e = cfg.evaluate
    params = {**flatten(to_dict(e), "evaluate."), "upstream.prepare_run_id": prepare_run_id,
              "upstream.train_run_id": train_run_id}

    def body(run_id: str) -> None:
        data_dir, codec = local_inputs(prepare_run_id)
        model, spec = load_trained(train_run_id)
        device = inference_device()
        model.to(device)
        mlflow.set_tags({"arch": _label(spec["model"]), A.TAG_DEVICE: describe(device)})
        dm = TranslationDataModule(data_dir, max_tokens=cfg.trainer.batch_tokens)
        dm.setup()
        with tempfile.TemporaryDirectory() as tmp:
            hyp_dir = Path(tmp) / A.HYPOTHESES_DIR
            hyp_dir.mkdir()
            all_scores: dict[str, float] = {}
            first = True
            for split in e.splits:
                if split not in dm.ds:
                    mlflow.set_tag(f"skipped.{split}", "no data for this language pair")
                    continue
                refs, srcs = dm.ds[split]["tgt"], dm.ds[split]["src"]
                for search, k in searches(e.beam_size):
                    hyps = decode_split(model, dm, split, codec, beam_size=k,
                                        length_penalty=e.length_penalty, max_len_ratio=e.max_len_ratio)
                    (hyp_dir / f"{split}.{search}.txt").write_text("\n".join(hyps) + "\n")
                    for name, s in corpus_scores(hyps, refs).items():
                        all_scores[metric_name(split, search, name)] = s.score
                        mlflow.set_tag(f"signature.{name}", s.signature)
                    if first and search == searches(e.beam_size)[-1][0]:  # the best search
                        n = min(e.num_samples, len(hyps))
                        mlflow.log_table({"source": srcs[:n], "reference": refs[:n],
                                          "hypothesis": hyps[:n]}, artifact_file=A.SAMPLES_TABLE)
                        label = _label(spec["model"])
                        log_length_analysis(srcs, hyps, refs, label, Path(tmp) / "length")
                        log_attention_maps(model, codec, srcs[: e.attention_samples], label, Path(tmp) / "attn")
                        mlflow.set_tag("analysis.split", f"{split}/{search}")
                first = False
            mlflow.log_metrics(all_scores)
            (Path(tmp) / A.SCORES).write_text(json.dumps(all_scores, indent=2))
            mlflow.log_artifacts(str(hyp_dir), A.HYPOTHESES_DIR)
            mlflow.log_artifact(str(Path(tmp) / A.SCORES))

    run = execute("evaluate", ctx, cfg, params, body)
    return EvaluateOutputs(run.info.run_id, dict(run.data.metrics))
