"""The Tune trial: the train stage's own ``fit`` with a report/checkpoint callback.

Trials report to Tune at each validation (each epoch's end, and every
``trainer.val_every_steps`` / ``val_every_minutes`` when set; names in ``sweep.metrics``): ASHA's
rungs count those reports. The driver's :class:`~nmt.pipeline.studies.sweep.trial_runs.MlflowTrialLogger`
writes those rows and the run's life. Against a tracking server (not SQLite, which allows one writer) a
trial also writes its step rows itself, through a retrying :class:`MetricWriter`. They are
committed with the validation's checkpoint: a trial retried from that checkpoint re-runs,
and logs, only the steps after it (mid-epoch too: the sampler's position is in the
checkpoint), and rows not yet acknowledged travel inside the checkpoint, so none is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import ray
import torch
from pytorch_lightning import Callback
from pytorch_lightning.loggers.logger import Logger
from ray import tune
from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

from nmt.components.training.callbacks import token_budget_spent
from nmt.components.tracking.names import SRC_TOKENIZER, TGT_TOKENIZER
from nmt.components.tracking.system_metrics import ROWS_KEY as SYSTEM_ROWS, SystemRows, to_json
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.components.tracking.store import Metric, RunStore, metric_rows
from nmt.components.tracking.writer import MetricWriter
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.sweep.credentials import load_in_trial
from nmt.pipeline.studies.sweep.tune_metrics import EPOCH_METRICS, LAST_REPORT, TUNE_METRICS, find_trial_run
from nmt.pipeline.studies.sweep.space import to_overrides
from nmt.components.system.scratch import scratch, temp_inside

CHECKPOINT_FILE = "checkpoint.ckpt"
PENDING_ROWS = "pending_metrics.json"  # step rows the store had not acknowledged at the checkpoint
NODE_PREFIX = "nmt_"                   # the custom resource naming a node (`nmt cluster`)


def _completed(ckpt_path: Path, max_epochs: int, max_steps: int = -1, max_tokens: int | None = None) -> bool:
    """A checkpoint taken at the last validation (the last epoch's end, ``max_steps`` or the
    token budget): nothing is left to train. One taken in the middle of the last epoch is not."""
    # weights only: a checkpoint on shared storage must not be able to run code here
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if max_steps > 0 and ckpt.get("global_step", 0) >= max_steps:
        return True
    if max_tokens and ckpt.get("tokens_seen", 0) >= max_tokens:
        return True
    data = ckpt.get(TranslationDataModule.__qualname__) or {}
    at_epoch_end = data.get("consumed", 0) >= data.get("batches", 0)  # no state (older): epoch ends only
    return at_epoch_end and 0 < max_epochs <= ckpt.get("epoch", -1) + 1  # -1: no epoch limit


def _last_validation(trainer: Any) -> bool:
    """Whether this validation ends training (max_steps, the token budget, or the last epoch's
    last batch): ASHA's upper bound on reports (max_t) is loose, so it cannot tell by itself."""
    if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
        return True
    if token_budget_spent(trainer):
        return True
    epochs = trainer.max_epochs
    return bool(epochs and epochs > 0 and trainer.current_epoch + 1 >= epochs
                and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


def node_name() -> str:
    """This Ray node's name: its ``nmt_*`` resource (``nmt cluster``), else a short node id."""
    me = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node["NodeID"] == me:
            named = [k[len(NODE_PREFIX):] for k in node.get("Resources", {}) if k.startswith(NODE_PREFIX)]
            if named:
                return named[0]
    return me[:12]


class StepRows(Logger):
    """Lightning logger of a trial: holds step rows until the validation's checkpoint commits them."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Metric] = []

    name = property(lambda self: "trial-steps")
    version = property(lambda self: "0")

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        driver_writes = set(EPOCH_METRICS.values())
        self.rows += metric_rows({k: v for k, v in metrics.items() if k not in driver_writes}, step or 0)

    def take(self) -> list[Metric]:
        rows, self.rows = self.rows, []
        return rows


def _save_rows(path: Path, rows: list[Metric]) -> None:
    path.write_text(json.dumps([[m.key, m.value, m.timestamp, m.step] for m in rows]))


def _load_rows(path: Path) -> list[Metric]:
    return [Metric(*row) for row in json.loads(path.read_text())] if path.exists() else []


class ReportAndCommit(TuneReportCheckpointCallback):
    """Tune's report + checkpoint, plus the node's name and, when the trial writes its own
    step rows, their commit: saved in the checkpoint, then handed to the writer. With
    ``system``, MLflow's system metrics sampled since the last report ride along, for the
    driver to write (rows sampled after the last report are not sent)."""

    def __init__(self, metrics: dict[str, str], node: str, steps: StepRows | None, writer: MetricWriter | None,
                 system: bool = False):
        super().__init__(metrics=metrics, filename=CHECKPOINT_FILE)
        self.node, self.steps, self.writer = node, steps, writer
        self.want_system, self.system = system, None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.want_system and self.system is None:
            self.system = SystemRows().start()

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self.system is not None:
            self.system.stop()
            self.system = None

    def _handle(self, trainer: Any, pl_module: Any) -> None:
        report = self._get_report_dict(trainer, pl_module)
        if not report:  # sanity check
            return
        report["node"] = self.node
        report[LAST_REPORT] = _last_validation(trainer)
        if self.system is not None:
            report[SYSTEM_ROWS] = to_json(self.system.take())
        with scratch("trial") as d:
            trainer.save_checkpoint(os.path.join(d, CHECKPOINT_FILE))
            if self.writer is not None and self.steps is not None:
                rows = self.steps.take()
                _save_rows(Path(d) / PENDING_ROWS, [*self.writer.unsent(), *rows])
                self.writer.add(rows)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(d))


def _trial_writer(tracking: dict[str, Any] | None, trial_id: str, cfg: Any) -> MetricWriter | None:
    """A writer into the trial's run (created by the driver) when the store is a server."""
    store = RunStore(tracking["uri"], tracking["experiment_id"]) if tracking else None
    if store is None or not store.is_server:
        return None
    return MetricWriter(tracking["uri"], lambda: find_trial_run(store, tracking["parent_run_id"], trial_id),
                        deadline_s=cfg.tracking.outage_deadline_s, capacity=cfg.tracking.buffer_rows)


def train_trial(params: dict[str, Any], *, base_overrides: list[str], data_dir: str,
                tokenizer_dir: str, tracking: dict[str, Any] | None = None) -> None:
    from nmt.pipeline.stages.train import fit  # keeps the driver's import light

    load_in_trial((tracking or {}).get("credentials"))
    overrides = [*base_overrides, *to_overrides(params)]
    cfg = load_config(overrides, groups=("sweep",))  # its resources
    if cfg.trainer.devices > 1:
        return train_trial_ddp(overrides, cfg, data_dir, tokenizer_dir)
    cpus = max(1, int(cfg.sweep.resources.cpu))
    torch.set_num_threads(cpus)  # oversubscribed OpenMP threads slow 2-core machines ~10x
    gpu = bool(ray.get_gpu_ids())
    tok = Path(tokenizer_dir)
    codec = TextCodec.from_files(tok / SRC_TOKENIZER, tok / TGT_TOKENIZER)
    ckpt = tune.get_checkpoint()
    ctx = tune.get_context()
    metrics = {k: v for k, v in TUNE_METRICS.items() if gpu or not v.startswith("gpu/")}
    writer = _trial_writer(tracking, ctx.get_trial_id(), cfg)
    steps = StepRows() if writer is not None else None
    callbacks: list = [ReportAndCommit(metrics, node_name(), steps, writer, cfg.tracking.system_metrics)]
    work = Path(ctx.get_trial_dir()) / "lightning"
    accelerator = "gpu" if gpu else "cpu"
    try:
        with ckpt.as_directory() if ckpt is not None else contextlib.nullcontext(None) as d:
            resume = Path(d) / CHECKPOINT_FILE if d is not None else None
            if d is not None and writer is not None:
                writer.add(_load_rows(Path(d) / PENDING_ROWS))  # the store drops rows it already has
            t = cfg.trainer  # a checkpoint of the last validation: the driver died at the very end
            if resume is None or not _completed(resume, t.max_epochs, t.max_steps, t.max_target_tokens):
                fit(cfg, None, None, Path(data_dir), codec, work, callbacks, resume_from=resume,
                    accelerator=accelerator, extra_loggers=[steps] if steps else None)
        if writer is not None and steps is not None:
            writer.add(steps.take())  # rows logged after the last checkpoint (the run's end)
            writer.flush(timeout=cfg.tracking.outage_deadline_s)
    finally:
        if writer is not None:
            writer.close(flush=False)


def _report_each_validation() -> Callback:
    """Ray Train's report callback (rank 0's metrics and a checkpoint to Tune), moved from
    the epoch's end to each validation's, with our metrics under their Tune names too."""
    from ray.train.lightning import RayTrainReportCallback

    class ReportEachValidation(RayTrainReportCallback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            pass  # the epoch's end validates: reported there

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            for tune_key, pl_key in TUNE_METRICS.items():
                if pl_key in trainer.callback_metrics:
                    trainer.callback_metrics[tune_key] = trainer.callback_metrics[pl_key]
            trainer.callback_metrics[LAST_REPORT] = torch.tensor(float(_last_validation(trainer)))
            super().on_train_epoch_end(trainer, pl_module)

    return ReportEachValidation()


def _ddp_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the same ``fit`` under RayDDPStrategy; reports each validation."""
    from nmt.pipeline.stages.train import fit
    cfg = load_config(config["overrides"], groups=("sweep",))
    torch.set_num_threads(max(1, int(cfg.sweep.resources.cpu)))
    tok = Path(config["tokenizer_dir"])
    codec = TextCodec.from_files(tok / SRC_TOKENIZER, tok / TGT_TOKENIZER)
    with scratch("ddp") as work:  # the worker's own checkpoints: Tune keeps what it reports
        with temp_inside(work):  # Ray Train's callback copies each epoch's under gettempdir(): here
            report = _report_each_validation()
        fit(cfg, None, None, Path(config["data_dir"]), codec, work,
            [report], accelerator="gpu" if config["use_gpu"] else "cpu", ray_ddp=True)


def train_trial_ddp(overrides: list[str], cfg: Any, data_dir: str, tokenizer_dir: str) -> None:
    """``trainer.devices > 1``: the trial runs a Ray Train ``TorchTrainer`` of ``devices``
    workers (DDP, one device each); TuneReportCallback hands rank 0's reports to Tune.
    Such a trial restarts from scratch after a failure (its checkpoints stay Ray Train's)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    res = cfg.sweep.resources
    use_gpu = res.per_trial_gpu > 0
    per_worker = {"CPU": res.cpu, **({"GPU": res.per_trial_gpu} if use_gpu else {})}
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
