"""Train's typed hand-over: a train run's model (``TrainedModel``, which the train stage and a
sweep's winner both publish through) and the architecture built on prepare's vocabulary.
Kept apart from :mod:`nmt.pipeline.upstream` so that prepare's code version leaves the models out."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nmt.components.tracking import names as N
from nmt.components.system.scratch import scratch
from nmt.components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TextCodec
from nmt.components.models.base import Seq2SeqModel, Vocabulary
from nmt.components.models.factory import ModelSpec, build, load_spec, save_spec
from nmt.components.tracking.run import RunLog

if TYPE_CHECKING:  # annotations only: the stages that read here do not run the config loader
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.config import PipelineConfig


def vocabulary(codec: TextCodec) -> Vocabulary:
    """What the network needs from prepare's tokenizers."""
    return Vocabulary(codec.src.get_vocab_size(), codec.tgt.get_vocab_size(), PAD_ID, BOS_ID, EOS_ID, codec.joint)


def model_spec(cfg: PipelineConfig, codec: TextCodec) -> ModelSpec:
    """The configured architecture on prepare's vocabulary: what training builds."""
    return ModelSpec(cfg.model, vocabulary(codec))


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
        with scratch("train") as tmp:  # removed on any exit, swept after a kill
            run.log_artifact(save_spec(spec, Path(tmp) / N.MODEL_CONFIG))
            shutil.copy(checkpoint, Path(tmp) / N.BEST_CKPT)
            run.log_artifact(Path(tmp) / N.BEST_CKPT, N.CHECKPOINT_DIR)

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> TrainedModel:
        """What ``publish`` gave ``run_id``, downloaded."""
        spec = load_spec(store.download(run_id, N.MODEL_CONFIG))
        ckpt = store.download(run_id, f"{N.CHECKPOINT_DIR}/{N.BEST_CKPT}")
        return cls(run_id, spec, ckpt, store.get_run(run_id).metrics.get(N.BEST_VAL_BLEU))

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
