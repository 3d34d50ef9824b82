"""The Tune trial: the train stage's own ``fit`` with a report/checkpoint callback.

Trials never write to MLflow: they report to Tune, and the driver's
:class:`~pipeline.sweep.tracking.MlflowTrialLogger` is the single writer to the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ray
import torch
from pytorch_lightning import Callback
from ray import tune
from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

from components.data.tokenizer import TextCodec
from pipeline.config import load_config
from pipeline.sweep.space import to_overrides

# Lightning metric keys -> Tune metric names (Tune's names must not contain "/").
TUNE_METRICS = {"val_bleu": "val/bleu", "val_loss": "val/loss", "train_loss": "train/loss_step"}
CHECKPOINT_FILE = "checkpoint.ckpt"
FAIL_ONCE_ENV = "NMT_SWEEP_FAIL_ONCE_DIR"  # tests: each trial raises once after its first report


class _FailOnce(Callback):
    """Injected failure for the retry test: raise once per trial, after a checkpoint exists."""

    def __init__(self, marker_dir: str, trial_id: str):
        self.marker = Path(marker_dir) / trial_id

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
            raise RuntimeError(f"injected failure in trial {self.marker.name}")


def _completed(ckpt_path: Path, max_epochs: int) -> bool:
    """A checkpoint taken at the validation of the last epoch: nothing is left to train."""
    epoch = torch.load(ckpt_path, map_location="cpu", weights_only=False).get("epoch", -1)
    return epoch + 1 >= max_epochs


def train_trial(params: dict[str, Any], *, base_overrides: list[str], data_dir: str,
                tokenizer_dir: str) -> None:
    from pipeline.stages.train import fit  # keeps the driver's import light

    cfg = load_config([*base_overrides, *to_overrides(params)])
    cpus = max(1, int(cfg.sweep.resources.cpu))
    torch.set_num_threads(cpus)  # oversubscribed OpenMP threads slow 2-core machines ~10x
    gpu = bool(ray.get_gpu_ids())
    tok = Path(tokenizer_dir)
    codec = TextCodec.from_files(tok / "src.json", tok / "tgt.json")
    ckpt = tune.get_checkpoint()
    ctx = tune.get_context()
    callbacks: list = [TuneReportCheckpointCallback(metrics=TUNE_METRICS, filename=CHECKPOINT_FILE)]
    if os.environ.get(FAIL_ONCE_ENV):
        callbacks.append(_FailOnce(os.environ[FAIL_ONCE_ENV], ctx.get_trial_id()))
    work = Path(ctx.get_trial_dir()) / "lightning"
    if ckpt is not None:
        with ckpt.as_directory() as d:
            resume = Path(d) / CHECKPOINT_FILE
            if _completed(resume, cfg.trainer.max_epochs):
                return  # restored after the driver died between its last report and its end
            fit(cfg, None, None, Path(data_dir), codec, work, callbacks, resume_from=resume,
                accelerator="gpu" if gpu else "cpu")
    else:
        fit(cfg, None, None, Path(data_dir), codec, work, callbacks, accelerator="gpu" if gpu else "cpu")
