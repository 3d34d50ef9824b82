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
TUNE_METRICS = {"val_bleu": "val/bleu", "val_loss": "val/loss", "train_loss": "train/loss_step",
                "gpu_peak_mem_mb": "gpu/peak_mem_mb"}  # the last on GPU trials only
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

    overrides = [*base_overrides, *to_overrides(params)]
    cfg = load_config(overrides)
    if cfg.trainer.devices > 1:
        return train_trial_ddp(overrides, cfg, data_dir, tokenizer_dir)
    cpus = max(1, int(cfg.sweep.resources.cpu))
    torch.set_num_threads(cpus)  # oversubscribed OpenMP threads slow 2-core machines ~10x
    gpu = bool(ray.get_gpu_ids())
    tok = Path(tokenizer_dir)
    codec = TextCodec.from_files(tok / "src.json", tok / "tgt.json")
    ckpt = tune.get_checkpoint()
    ctx = tune.get_context()
    metrics = {k: v for k, v in TUNE_METRICS.items() if gpu or not v.startswith("gpu/")}
    callbacks: list = [TuneReportCheckpointCallback(metrics=metrics, filename=CHECKPOINT_FILE)]
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


class _TuneNames(Callback):
    """Add the Tune names of our metrics next to Lightning's, for RayTrainReportCallback."""

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        for tune_key, pl_key in TUNE_METRICS.items():
            if pl_key in trainer.callback_metrics:
                trainer.callback_metrics[tune_key] = trainer.callback_metrics[pl_key]


def _ddp_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the same ``fit`` under RayDDPStrategy; reports each epoch."""
    import tempfile

    from ray.train.lightning import RayTrainReportCallback

    from pipeline.stages.train import fit
    cfg = load_config(config["overrides"])
    torch.set_num_threads(max(1, int(cfg.sweep.resources.cpu)))
    tok = Path(config["tokenizer_dir"])
    codec = TextCodec.from_files(tok / "src.json", tok / "tgt.json")
    fit(cfg, None, None, Path(config["data_dir"]), codec, Path(tempfile.mkdtemp(prefix="nmt-ddp-")),
        [_TuneNames(), RayTrainReportCallback()], accelerator="gpu" if config["use_gpu"] else "cpu", ray_ddp=True)


def train_trial_ddp(overrides: list[str], cfg: Any, data_dir: str, tokenizer_dir: str) -> None:
    """``trainer.devices > 1``: the trial runs a Ray Train ``TorchTrainer`` of ``devices``
    workers (DDP, one device each); TuneReportCallback hands rank 0's reports to Tune.
    Such a trial restarts from scratch after a failure (its checkpoints stay Ray Train's)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    res = cfg.sweep.resources
    use_gpu = res.gpu > 0
    per_worker = {"CPU": res.cpu, **({"GPU": res.gpu} if use_gpu else {})}
    ctx = tune.get_context()
    TorchTrainer(
        _ddp_worker,
        train_loop_config={"overrides": overrides, "data_dir": data_dir, "tokenizer_dir": tokenizer_dir,
                           "use_gpu": use_gpu},
        scaling_config=ScalingConfig(num_workers=cfg.trainer.devices, use_gpu=use_gpu,
                                     resources_per_worker=per_worker),
        run_config=RunConfig(name=f"ddp-{ctx.get_trial_id()}", storage_path=str(Path(ctx.get_trial_dir()).parent),
                             callbacks=[TuneReportCallback()]),
    ).fit()
