"""train: a Lightning run of the configured architecture on prepare's tokenized data.

Reads ``data/`` and ``tokenizer/`` from the prepare run; produces under the train run
``checkpoints/best.ckpt`` (best ``val/bleu``, or an average of epochs) and
``model_config.json``. An interrupted run resumes from the ``last.ckpt`` kept under
``.nmt/checkpoints/<reuse key>/``. :func:`fit` is the one training loop: sweep trials call it too.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from nmt.components.tracking import names as N
from nmt.components.training import startup
from nmt.components.training.lit_module import TranslationModule, average_checkpoints
from nmt.components.training.callbacks import (BatchLog, ContinueSteps, EpochLine, FirstStep, StopOnCtrlC, TerminalBar,
                                               TokenBudget, ValidateAtMaxSteps, ValidationSchedule, check_batch_log)
from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.system.errors import ConfigError
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.components.evaluation.scoring import warn
from nmt.components.training.devices import describe, keep_freed_memory, native_bf16, resolve_precision
from nmt.components.system import progress
from nmt.components.system.procs import folder_lock, note
from nmt.components.models.factory import build, model_dict
from nmt.components.tracking.run import RunLog, RunRecord
from nmt.components.tracking.store import RunStore
from nmt.components.tracking.uri import project_home, reuse_key
from nmt.components.tracking.writer import run_writer
from nmt.components.system.errors import TrackingUnavailable
from nmt.pipeline.stages.runner import Context, execute, stage_code
from nmt.pipeline.upstream import PreparedData
from nmt.pipeline.trained import TrainedModel, model_spec

if TYPE_CHECKING:  # annotations only: the config loader is not code this stage runs
    from nmt.pipeline.config import PipelineConfig

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class TrainOutputs:
    run_id: str
    best_val_bleu: float | None


def train_params(cfg: PipelineConfig, prepare_run_id: str) -> dict[str, str]:
    """The reuse key's params: every config value the body reads (validation decodes with
    ``evaluate.max_len_ratio`` and scores as ``evaluate.bleu_tokenize`` resolves). Not
    ``tracking.*``: it says how metrics reach the store, not what is trained."""
    params = {**flatten(model_dict(cfg.model), "model."), **flatten(to_dict(cfg.optim), "optim."),
              **flatten(to_dict(cfg.trainer), "trainer."), "evaluate.max_len_ratio": cfg.evaluate.max_len_ratio,
              N.PARAM_METRIC: cfg.evaluate.metric(cfg.data).key}  # what val/bleu scores selects the weights
    if cfg.recipe is not None:  # its values are keyed above; the name says where they came from
        params[N.PARAM_RECIPE] = cfg.recipe.name
    params[N.PARAM_PREPARE_RUN] = prepare_run_id
    return params


def resolve_accelerator(cfg: PipelineConfig) -> str:
    t = cfg.trainer
    has_gpu = torch.cuda.is_available()
    if t.accelerator == "gpu" and not has_gpu:
        raise ConfigError("trainer.accelerator=gpu but no CUDA device is visible; valid here: auto, cpu")
    acc = "gpu" if t.accelerator == "gpu" or (t.accelerator == "auto" and has_gpu) else "cpu"
    if acc == "cpu" and t.precision == "16-mixed":
        raise ConfigError("trainer.precision=16-mixed needs a GPU; on CPU use auto, bf16-mixed or 32")
    return acc


class EpochKeeper(ModelCheckpoint):
    """The k epoch checkpoints kept for averaging. Its own state key: with ``average_of=best``
    it monitors val/bleu like the best-epoch callback, and Lightning refuses two callbacks
    whose saved state would collide."""

    @property
    def state_key(self) -> str:
        return "EpochKeeper" + super().state_key


def _trainer(cfg: PipelineConfig, ckpt_dir: Path, accelerator: str, precision: str, loggers: list,
             callbacks: list, ray_ddp: bool) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Lightning Trainer of :func:`fit` and the checkpoint callback that tracks the best epoch."""
    t = cfg.trainer
    scaled = precision == "16-mixed"  # fp16's GradScaler: clip through Lightning
    # at every validation's end, not the epoch's (Lightning's default when validation runs
    # once an epoch): trainer.val_every_* validates inside epochs too
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=N.VAL_BLEU, mode="max", save_top_k=1,
                           enable_version_counter=False, save_on_train_epoch_end=False)
    # what an interrupted run resumes from, at every validation: Lightning 2.6's save_last
    # rewrites last.ckpt only when the best one improved, so a kill on a plateau lost every
    # validation since the best. After the others (Lightning keeps that order): their state too.
    latest = ModelCheckpoint(dirpath=ckpt_dir, filename=Path(N.LAST_CKPT).stem, save_top_k=1,
                             enable_version_counter=False, save_on_train_epoch_end=False)
    keep = []
    if t.average_checkpoints > 1:  # the k epoch checkpoints to average: the newest, or the best
        # the step too: with trainer.val_every_* an epoch validates (and so saves) more than once
        keep = [EpochKeeper(dirpath=ckpt_dir / N.EPOCHS_DIR, filename="epoch{epoch:03d}-step{step:08d}",
                                auto_insert_metric_name=False, monitor="step" if t.average_of == "last" else N.VAL_BLEU,
                                mode="max", save_top_k=t.average_checkpoints, enable_version_counter=False,
                                save_on_train_epoch_end=False)]
    if accelerator == "cpu" and t.keep_freed_memory:
        keep_freed_memory()  # glibc's mmap of large blocks off: no page faults every step
    distributed: dict = {}
    if ray_ddp:  # Ray places the workers; our sampler shards training batches by rank
        from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment
        distributed = {"strategy": RayDDPStrategy(), "plugins": [RayLightningEnvironment()],
                       "use_distributed_sampler": False}
    trainer = pl.Trainer(
        accelerator=accelerator, devices="auto" if ray_ddp else t.devices, precision=precision, **distributed,
        max_epochs=t.max_epochs, max_steps=t.max_steps, max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        limit_train_batches=t.limit_train_batches, gradient_clip_val=(t.grad_clip or None) if scaled else None,
        log_every_n_steps=t.log_every_n_steps, logger=loggers or False,
        accumulate_grad_batches=t.accumulate_grad_batches,
        callbacks=[best, *keep, latest, FirstStep(), EpochLine(), ValidationSchedule(t.val_every_steps, t.val_every_minutes),
                   ContinueSteps(), ValidateAtMaxSteps(), *([BatchLog(t.batch_log)] if t.batch_log else []),
                   *([TokenBudget(t.max_target_tokens)] if t.max_target_tokens else []),
                   EarlyStopping(N.VAL_BLEU, mode="max", patience=t.patience, strict=False,
                                 check_on_train_epoch_end=False), *callbacks,
                   *([TerminalBar(refresh_rate=5)] if progress.bars() else [])],
        enable_progress_bar=progress.bars(), enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(ckpt_dir))
    if ray_ddp:
        from ray.train.lightning import prepare_trainer
        trainer = prepare_trainer(trainer)
    return trainer, best


def _precision(configured: str, accelerator: str) -> str:
    precision = resolve_precision(configured, accelerator)
    if precision == "bf16-mixed" and not native_bf16(accelerator):
        log.warning("trainer.precision=bf16-mixed but this %s has no native bf16: it is emulated, far slower "
                    "than 32 (use trainer.precision=auto)", accelerator.upper())
    return precision


def _module(cfg: PipelineConfig, codec: TextCodec, precision: str) -> TranslationModule:
    """The configured network on prepare's vocabulary, seeded, wrapped for Lightning."""
    t = cfg.trainer
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    pl.seed_everything(t.seed, workers=True)
    scaled = precision == "16-mixed"  # fp16's GradScaler: unfused Adam, clipping by Lightning
    metric = cfg.evaluate.metric(cfg.data)
    warn(metric)
    return TranslationModule(build(model_spec(cfg, codec)), optim=cfg.optim, detokenize=codec.decode_tgt,
                             val_bleu_limit=t.val_bleu_limit, max_len_ratio=cfg.evaluate.max_len_ratio,
                             grad_clip=None if scaled else t.grad_clip, fused_adam=not scaled, metric=metric)


def check(cfg: PipelineConfig) -> None:
    """The train stage's checks before any stage runs (the stage table's ``check``)."""
    check_batch_log(cfg)
    one_device(cfg)


def one_device(cfg: PipelineConfig, ray_ddp: bool = False) -> None:
    """More than one device trains in a sweep's trials only (Ray Train workers, ``ray_ddp``):
    Lightning's own launcher would re-run this command in each extra process, a second pipeline
    that waits for the first's checkpoint folder. Also in :func:`fit`, for any other caller."""
    n = cfg.trainer.devices
    if n > 1 and not ray_ddp:
        raise ConfigError(f"trainer.devices={n}: more than one device trains in a sweep's trials only (Ray Train "
                          f"DDP: nmt sweep ... trainer.devices={n}); nmt train, run and journey train on one "
                          "(trainer.devices=1)")


def fit(cfg: PipelineConfig, run_id: str | None, store: RunStore | str | None, data_dir: Path,
        codec: TextCodec, ckpt_dir: Path, callbacks: list | None = None, resume_from: Path | None = None,
        accelerator: str | None = None, ray_ddp: bool = False, extra_loggers: list | None = None
        ) -> tuple[pl.Trainer, TranslationModule, ModelCheckpoint]:
    """The one training loop (the train stage and every sweep trial call it). Resumes from
    ``resume_from``, else from ``ckpt_dir/last.ckpt`` when an interrupted run left one.
    ``ray_ddp``: this process is one worker of a Ray Train ``TorchTrainer`` (DDP)."""
    one_device(cfg, ray_ddp)
    t = cfg.trainer
    own_stage = startup.stage_start() is None  # a sweep trial: its start-up begins here
    if own_stage:
        startup.begin_stage()
    accelerator = accelerator or resolve_accelerator(cfg)
    precision = _precision(t.precision, accelerator)
    module = _module(cfg, codec, precision)
    startup.mark("model")
    writer, loggers, pending = run_writer(cfg.tracking, store, run_id)
    ctrl_c = StopOnCtrlC()
    trainer, best = _trainer(cfg, ckpt_dir, accelerator, precision, [*loggers, *(extra_loggers or [])],
                             [ctrl_c, *pending, *(callbacks or [])], ray_ddp)
    startup.mark("trainer")
    last = ckpt_dir / N.LAST_CKPT
    resume = resume_from or (last if last.exists() else None)
    try:
        dm = TranslationDataModule(data_dir, max_tokens=t.batch_tokens, seed=t.seed,
                                   max_positions=module.model.max_positions)  # longer pairs left out, not a crash
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None, weights_only=True)
        if writer is not None:
            writer.flush(timeout=cfg.tracking.outage_deadline_s)
    except TrackingUnavailable as err:
        kept = f"its checkpoint is kept at {last}" if last.exists() else "no checkpoint was taken yet"
        raise TrackingUnavailable(f"{err}. Training stopped; {kept}: once the server answers, rerun the "
                                  "same command to resume") from None
    finally:
        if writer is not None:
            writer.close(flush=False)
        if own_stage:
            startup.end_stage()
    if trainer.interrupted or ctrl_c.requested:  # the run must not count as finished
        raise KeyboardInterrupt(f"training interrupted; rerun the same command to resume from {N.LAST_CKPT}")
    return trainer, module, best


def choose_checkpoint(cfg: PipelineConfig, run: RunLog, trainer: pl.Trainer, module: TranslationModule,
                      best: ModelCheckpoint, ckpt_dir: Path) -> tuple[Path, float | None]:
    """The checkpoint the run hands on, and its val/bleu: the best epoch's, or the average of
    ``trainer.average_checkpoints`` epochs when that validates at least as well."""
    chosen = Path(best.best_model_path or ckpt_dir / N.LAST_CKPT)
    score = None if best.best_model_score is None else float(best.best_model_score)
    epochs = sorted((ckpt_dir / N.EPOCHS_DIR).glob("epoch*.ckpt"))  # zero-padded: oldest first
    if cfg.trainer.average_checkpoints < 2 or len(epochs) < 2:
        run.set_tag(N.TAG_CHECKPOINT, "best epoch")
        return chosen, score
    averaged = average_checkpoints(epochs, ckpt_dir / N.AVERAGED_CKPT)
    check = pl.Trainer(accelerator=trainer.accelerator, devices=1, precision=trainer.precision_plugin.precision,
                       logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False)
    avg_score = float(check.validate(module, datamodule=trainer.datamodule, ckpt_path=str(averaged),
                                     verbose=False, weights_only=True)[0][N.VAL_BLEU])
    run.log_metric(N.VAL_BLEU_AVERAGED, avg_score)
    if score is None or avg_score >= score:
        run.set_tag(N.TAG_CHECKPOINT, f"average of {len(epochs)} {cfg.trainer.average_of} epochs")
        return averaged, avg_score
    run.set_tag(N.TAG_CHECKPOINT, "best epoch (the average validated lower)")
    return chosen, score


def run_train(cfg: PipelineConfig, ctx: Context, prepare_run_id: str) -> TrainOutputs:
    startup.begin_stage()
    params = train_params(cfg, prepare_run_id)
    resolve_accelerator(cfg)  # fail before any run starts

    def body(run: RunLog) -> None:
        note(lock, f"run {run.run_id}")
        startup.mark("train run")  # the reuse lookup, the run and its params
        data = PreparedData.load(run.store, prepare_run_id)
        startup.mark("data download")
        if (ckpt_dir / N.LAST_CKPT).exists():
            log.info("train: resuming from %s", ckpt_dir / N.LAST_CKPT)
            run.set_tag(N.TAG_RESUMED_FROM, str(ckpt_dir / N.LAST_CKPT))
        start = time.perf_counter()
        trainer, module, best = fit(cfg, run.run_id, run.store, data.data_dir, data.codec, ckpt_dir)
        chosen, score = choose_checkpoint(cfg, run, trainer, module, best, ckpt_dir)
        run.set_tags({N.TAG_DEVICE: describe(trainer.strategy.root_device),
                      N.TAG_PRECISION: trainer.precision_plugin.precision,
                      N.TAG_VAL_METRIC: module.metric.selection_signature()})
        run.log_metrics({N.TRAIN_TIME: time.perf_counter() - start,
                         N.NUM_PARAMS: float(module.model.num_parameters()),
                         "epochs": float(trainer.current_epoch), "steps": float(trainer.global_step),
                         N.DROPPED_POSITIONS: float(trainer.datamodule.dropped.get("train", 0))})
        TrainedModel.publish(run.store, run.run_id, model_spec(cfg, data.codec), chosen, score)
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the artifact is the record

    ckpt_dir = project_home() / ".nmt" / N.CHECKPOINT_DIR / reuse_key("train", params, stage_code(body))
    # one identical run at a time owns the checkpoint folder: a second waits, then reuses its result
    try:
        with folder_lock(ckpt_dir, "train") as lock:
            return train_outputs(execute("train", ctx, cfg, params, body))
    finally:
        startup.end_stage()


def train_outputs(run: RunRecord) -> TrainOutputs:
    return TrainOutputs(run.id, run.metrics.get(N.BEST_VAL_BLEU))


def existing_train(store: RunStore, run_id: str) -> tuple[TrainOutputs, str]:
    """``evaluate.train_run_id``: a finished train run -> its outputs and its prepare run id."""
    run = store.expect(run_id, "evaluate.train_run_id=", ("train",), "FINISHED")
    return train_outputs(run), run.params[N.PARAM_PREPARE_RUN]
