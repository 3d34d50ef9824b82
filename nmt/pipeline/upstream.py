"""The typed hand-overs between stages: what prepare left (``PreparedData``: its data,
tokenizers and counts, and one of its test splits) and a train run's model (``TrainedModel``,
which the train stage and a sweep's winner both publish through). Every stage and command
that needs them comes here."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from nmt.components.tracking import names as N
from nmt.components.system.typed_config import ConfigError
from nmt.components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TextCodec
from nmt.components.models.base import Seq2SeqModel, Vocabulary
from nmt.components.models.factory import ModelSpec, build, load_spec, save_spec
from nmt.components.tracking.runlog import RunLog
from nmt.components.tracking.uri import project_home
from nmt.components.system.scratch import scratch

if TYPE_CHECKING:  # annotations only: the stages that read here do not run the config loader
    from nmt.components.data.build import Built
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.config import PipelineConfig


@dataclass(frozen=True)
class PreparedData:
    """What a prepare run hands on: its tokenized splits, the codec of its tokenizers and its
    counts. The prepare stage publishes through :meth:`publish`; train, evaluate, sweeps and
    the commands :meth:`load` (downloaded once per prepare run into ``.nmt/cache``)."""
    run_id: str
    data_dir: Path           # a DatasetDict in save_to_disk's layout: train, val, test*
    codec: TextCodec
    stats: dict[str, Any]    # data_stats.json: pairs read, kept and dropped per split, the corpora

    @staticmethod
    def publish(run: RunLog, built: Built, tmp: Path) -> None:
        """Log ``built`` (prepare's result) as ``data/``, ``tokenizer/`` and ``data_stats.json``."""
        from nmt.components.data.build import save_to_disk
        save_to_disk(built.data, tmp / N.DATA_DIR)  # moves the Arrow files: nothing is read back
        (tmp / N.TOKENIZER_DIR).mkdir()
        built.src_tok.save(str(tmp / N.TOKENIZER_DIR / N.SRC_TOKENIZER))
        built.tgt_tok.save(str(tmp / N.TOKENIZER_DIR / N.TGT_TOKENIZER))
        (tmp / N.DATA_STATS).write_text(json.dumps({**built.stats, "corpora": built.corpora}, indent=2))
        run.log_artifacts(tmp / N.DATA_DIR, N.DATA_DIR)
        run.log_artifacts(tmp / N.TOKENIZER_DIR, N.TOKENIZER_DIR)
        run.log_artifact(tmp / N.DATA_STATS)

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> PreparedData:
        dst = project_home() / ".nmt" / "cache" / run_id
        if not (dst / ".complete").exists():
            dst.mkdir(parents=True, exist_ok=True)
            store.download(run_id, N.DATA_DIR, dst)
            store.download(run_id, N.TOKENIZER_DIR, dst)
            (dst / ".complete").touch()
        if not (dst / N.DATA_STATS).exists():  # a cache from before the stats travelled with it
            store.download(run_id, N.DATA_STATS, dst)
        tok = dst / N.TOKENIZER_DIR
        return cls(run_id, dst / N.DATA_DIR, TextCodec.from_files(tok / N.SRC_TOKENIZER, tok / N.TGT_TOKENIZER),
                   json.loads((dst / N.DATA_STATS).read_text()))


def vocabulary(codec: TextCodec) -> Vocabulary:
    """What the network needs from prepare's tokenizers."""
    return Vocabulary(codec.src.get_vocab_size(), codec.tgt.get_vocab_size(), PAD_ID, BOS_ID, EOS_ID, codec.joint)


def model_spec(cfg: PipelineConfig, codec: TextCodec) -> ModelSpec:
    """The configured architecture on prepare's vocabulary: what training builds."""
    return ModelSpec(cfg.model, vocabulary(codec))


def test_split(store: RunStore, prepare_run_id: str, split: str, limit: int | None = None
               ) -> tuple[list[str], list[str]]:
    """Raw sources and references of one test split of a prepare run (the first ``limit``)."""
    from datasets import load_from_disk

    data = load_from_disk(str(PreparedData.load(store, prepare_run_id).data_dir))
    if split not in data:
        raise ConfigError(f"split {split!r} is not in prepare run {prepare_run_id}; available: "
                          f"{', '.join(k for k in data if k.startswith('test'))}")
    rows = data[split][: limit or len(data[split])]
    return list(rows["src"]), list(rows["tgt"])


test_split.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


@dataclass(frozen=True)
class TrainedModel:
    """What a train run hands evaluate and register: the spec, the checkpoint and its val BLEU.
    The train stage and a sweep's winning trial publish through the same call."""
    run_id: str
    spec: ModelSpec
    checkpoint: Path             # a local copy of checkpoints/best.ckpt
    best_val_bleu: float | None  # None: the run never validated

    @staticmethod
    def publish(store: RunStore, run_id: str, spec: ModelSpec, checkpoint: Path, best_val_bleu: float | None) -> None:
        """Give ``run_id`` ``model_config.json``, ``checkpoints/best.ckpt`` and ``best/val_bleu``."""
        run = RunLog(store, run_id)
        if best_val_bleu is not None:
            run.log_metric(N.BEST_VAL_BLEU, best_val_bleu)
        with scratch("train") as tmp:
            run.log_artifact(save_spec(spec, Path(tmp) / N.MODEL_CONFIG))
            shutil.copy(checkpoint, Path(tmp) / N.BEST_CKPT)
            run.log_artifact(Path(tmp) / N.BEST_CKPT, N.CHECKPOINT_DIR)

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> TrainedModel:
        """What ``publish`` gave ``run_id``, downloaded."""
        spec = load_spec(store.download(run_id, N.MODEL_CONFIG))
        ckpt = store.download(run_id, f"{N.CHECKPOINT_DIR}/{N.BEST_CKPT}")
        return cls(run_id, spec, ckpt, store.get_run(run_id).data.metrics.get(N.BEST_VAL_BLEU))

    def model(self) -> Seq2SeqModel:
        """The checkpoint as an eval-mode model."""
        model = build(self.spec)
        ckpt = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
        return model.eval()


def trained_model(store: RunStore, train_run_id: str) -> tuple[Seq2SeqModel, ModelSpec]:
    """The checkpoint a train (or sweep trial) run handed on, as an eval-mode model."""
    trained = TrainedModel.load(store, train_run_id)
    return trained.model(), trained.spec
