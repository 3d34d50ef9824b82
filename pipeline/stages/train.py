"""train: a Lightning run of the configured architecture on prepare's tokenized data.

Reads ``data/`` and ``tokenizer/`` from the prepare run; produces under the train run
``checkpoints/best.ckpt`` (best ``val/bleu``) and ``model_config.json``. An interrupted
run resumes from the ``last.ckpt`` kept under ``.nmt/checkpoints/<reuse key>/``.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components import artifacts as A
from components.averaging import average_checkpoints
from components.config import ConfigError, flatten, to_dict
from components.data.datamodule import TranslationDataModule
from components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TextCodec
from components.devices import describe, native_bf16, resolve_precision
from components.lit_module import TranslationModule
from components.models.base import Seq2SeqModel
from components.tracking import project_home, reuse_key
from components.tracking_writer import BufferedMlflowLogger, MetricWriter, TrackingUnavailable
from components.translator import model_from_spec
from pipeline.config import PipelineConfig
from pipeline.stages.common import Context, download, execute

log = logging.getLogger("nmt")
EPOCHS_DIR = "epochs"            # under the run's checkpoint folder: the k kept for averaging
AVERAGED_CKPT = "averaged.ckpt"


@dataclass(frozen=True)
class TrainOutputs:
    run_id: str
    checkpoint_uri: str
    best_val_bleu: float | None


def local_inputs(prepare_run_id: str) -> tuple[Path, TextCodec]:
    """prepare's artifacts, downloaded once per prepare run into ``.nmt/cache``."""
    dst = project_home() / ".nmt" / "cache" / prepare_run_id
    if not (dst / ".complete").exists():
        dst.mkdir(parents=True, exist_ok=True)
        download(prepare_run_id, A.DATA_DIR, dst)
        download(prepare_run_id, A.TOKENIZER_DIR, dst)
        (dst / ".complete").touch()
    tok = dst / A.TOKENIZER_DIR
    return dst / A.DATA_DIR, TextCodec.from_files(tok / A.SRC_TOKENIZER, tok / A.TGT_TOKENIZER)


def model_spec(cfg: PipelineConfig, codec: TextCodec) -> dict[str, Any]:
    """Everything needed to rebuild the network: the model config plus vocabulary facts."""
    return {"model": dict(cfg.model), "src_vocab_size": codec.src.get_vocab_size(),
            "tgt_vocab_size": codec.tgt.get_vocab_size(), "pad_id": PAD_ID, "bos_id": BOS_ID,
            "eos_id": EOS_ID, "shared_vocab": codec.joint}


def train_params(cfg: PipelineConfig, prepare_run_id: str) -> dict[str, str]:
    params = {**flatten(cfg.model, "model."), **flatten(to_dict(cfg.optim), "optim."),
              **flatten(to_dict(cfg.trainer), "trainer.")}
    params["upstream.prepare_run_id"] = prepare_run_id
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


class FirstStep(Callback):
    """Logs ``time/to_first_step_s``: from the process's start to its first training step
    (imports, CUDA start, data, model, the first batch): the start-up a user waits through."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.seconds is None:
            import psutil
            self.seconds = time.time() - psutil.Process().create_time()
            pl_module.log("time/to_first_step_s", self.seconds, on_step=True, on_epoch=False)


class StopOnCtrlC(Callback):
    """The first Ctrl-C stops training at the next batch boundary, so the signal never lands
    in the middle of a checkpoint or tracking-store write; a second Ctrl-C interrupts at
    once. Only in the main thread: Ray runs trials in worker threads, and stops them itself."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.warning("train: Ctrl-C, stopping after this batch (again to stop at once)")

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.requested:
            trainer.should_stop = True

    on_validation_batch_end = on_train_batch_end  # the loop ends after this validation

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def fit(cfg: PipelineConfig, run_id: str | None, tracking_uri: str | None, data_dir: Path,
        codec: TextCodec, ckpt_dir: Path, callbacks: list | None = None, resume_from: Path | None = None,
        accelerator: str | None = None, ray_ddp: bool = False, extra_loggers: list | None = None
        ) -> tuple[pl.Trainer, TranslationModule, ModelCheckpoint]:
    """The one training loop (the train stage and every sweep trial call it). Resumes from
    ``resume_from``, else from ``ckpt_dir/last.ckpt`` when an interrupted run left one.
    ``ray_ddp``: this process is one worker of a Ray Train ``TorchTrainer`` (DDP)."""
    t = cfg.trainer
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    pl.seed_everything(t.seed, workers=True)
    accelerator = accelerator or resolve_accelerator(cfg)
    precision = resolve_precision(t.precision, accelerator)
    if precision == "bf16-mixed" and not native_bf16(accelerator):
        log.warning("trainer.precision=bf16-mixed but this %s has no native bf16: it is emulated, far slower "
                    "than 32 (use trainer.precision=auto)", accelerator.upper())
    model = model_from_spec(model_spec(cfg, codec))
    scaled = precision == "16-mixed"  # fp16's GradScaler: clip through Lightning, unfused Adam
    module = TranslationModule(model, optim=cfg.optim, detokenize=codec.decode_tgt,
                               val_bleu_limit=t.val_bleu_limit, max_len_ratio=cfg.evaluate.max_len_ratio,
                               grad_clip=None if scaled else t.grad_clip, fused_adam=not scaled)
    dm = TranslationDataModule(data_dir, max_tokens=t.batch_tokens, seed=t.seed)
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/bleu", mode="max",
                           save_top_k=1, save_last=True, enable_version_counter=False)
    keep = []
    if t.average_checkpoints > 1:  # the k epoch checkpoints to average: the newest, or the best
        keep = [ModelCheckpoint(dirpath=ckpt_dir / EPOCHS_DIR, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                                monitor="step" if t.average_of == "last" else "val/bleu", mode="max",
                                save_top_k=t.average_checkpoints, enable_version_counter=False)]
    writer = (MetricWriter(tracking_uri, run_id, deadline_s=cfg.tracking.outage_deadline_s,
                           capacity=cfg.tracking.buffer_rows) if run_id else None)
    loggers = ([BufferedMlflowLogger(writer, run_id)] if writer else []) + list(extra_loggers or [])
    ctrl_c = StopOnCtrlC()
    distributed: dict = {}
    if ray_ddp:  # Ray places the workers; our sampler shards training batches by rank
        from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment
        distributed = {"strategy": RayDDPStrategy(), "plugins": [RayLightningEnvironment()],
                       "use_distributed_sampler": False}
    trainer = pl.Trainer(
        accelerator=accelerator, devices="auto" if ray_ddp else t.devices, precision=precision, **distributed,
        max_epochs=t.max_epochs, max_steps=t.max_steps,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        limit_train_batches=t.limit_train_batches,
        gradient_clip_val=(t.grad_clip or None) if scaled else None,
        log_every_n_steps=t.log_every_n_steps, logger=loggers or False,
        callbacks=[best, *keep, FirstStep(), EarlyStopping("val/bleu", mode="max", patience=t.patience, strict=False), ctrl_c,
                   *(callbacks or [])],
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        default_root_dir=str(ckpt_dir))
    if ray_ddp:
        from ray.train.lightning import prepare_trainer
        trainer = prepare_trainer(trainer)
    last = ckpt_dir / "last.ckpt"
    resume = resume_from or (last if last.exists() else None)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None)
        if writer is not None:
            writer.flush(timeout=cfg.tracking.outage_deadline_s)
    except TrackingUnavailable as err:
        kept = f"its checkpoint is kept at {last}" if last.exists() else "no checkpoint was taken yet"
        raise TrackingUnavailable(f"{err}. Training stopped; {kept}: once the server answers, rerun the "
                                  "same command to resume") from None
    finally:
        if writer is not None:
            writer.close(flush=False)
    if trainer.interrupted or ctrl_c.requested:  # the run must not count as finished
        raise KeyboardInterrupt("training interrupted; rerun the same command to resume from last.ckpt")
    return trainer, module, best


def choose_checkpoint(cfg: PipelineConfig, trainer: pl.Trainer, module: TranslationModule, best: ModelCheckpoint,
                      ckpt_dir: Path) -> tuple[Path, float | None]:
    """The checkpoint the run hands on, and its val/bleu: the best epoch's, or the average of
    ``trainer.average_checkpoints`` epochs when that validates at least as well."""
    chosen = Path(best.best_model_path or ckpt_dir / A.LAST_CKPT)
    score = None if best.best_model_score is None else float(best.best_model_score)
    epochs = sorted((ckpt_dir / EPOCHS_DIR).glob("epoch*.ckpt"))  # zero-padded: oldest first
    if cfg.trainer.average_checkpoints < 2 or len(epochs) < 2:
        mlflow.set_tag(A.TAG_CHECKPOINT, "best epoch")
        return chosen, score
    averaged = average_checkpoints(epochs, ckpt_dir / AVERAGED_CKPT)
    check = pl.Trainer(accelerator=trainer.accelerator, devices=1, precision=trainer.precision_plugin.precision,
                       logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False)
    avg_score = float(check.validate(module, datamodule=trainer.datamodule, ckpt_path=str(averaged),
                                     verbose=False)[0]["val/bleu"])
    mlflow.log_metric("val/bleu_averaged", avg_score)
    if score is None or avg_score >= score:
        mlflow.set_tag(A.TAG_CHECKPOINT, f"average of {len(epochs)} {cfg.trainer.average_of} epochs")
        return averaged, avg_score
    mlflow.set_tag(A.TAG_CHECKPOINT, "best epoch (the average validated lower)")
    return chosen, score


def run_train(cfg: PipelineConfig, ctx: Context, prepare_run_id: str) -> TrainOutputs:
    params = train_params(cfg, prepare_run_id)
    resolve_accelerator(cfg)  # fail before any run starts

    def body(run_id: str) -> None:
        data_dir, codec = local_inputs(prepare_run_id)
        spec = model_spec(cfg, codec)
        ckpt_dir = project_home() / ".nmt" / "checkpoints" / reuse_key("train", params, ctx.code)
        if (ckpt_dir / "last.ckpt").exists():
            log.info("train: resuming from %s", ckpt_dir / "last.ckpt")
            mlflow.set_tag("resumed_from", str(ckpt_dir / "last.ckpt"))
        start = time.perf_counter()
        trainer, module, best = fit(cfg, run_id, ctx.tracking_uri, data_dir, codec, ckpt_dir)
        chosen, score = choose_checkpoint(cfg, trainer, module, best, ckpt_dir)
        mlflow.set_tags({A.TAG_DEVICE: describe(trainer.strategy.root_device),
                         A.TAG_PRECISION: trainer.precision_plugin.precision})
        mlflow.log_metrics({"train_time_s": time.perf_counter() - start,
                            "num_params": float(module.model.num_parameters()),
                            "epochs": float(trainer.current_epoch), "steps": float(trainer.global_step)})
        if score is not None:
            mlflow.log_metric("best/val_bleu", score)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / A.MODEL_CONFIG).write_text(json.dumps(spec, indent=2))
            mlflow.log_artifact(str(Path(tmp) / A.MODEL_CONFIG))
            shutil.copy(chosen, Path(tmp) / A.BEST_CKPT)
            mlflow.log_artifact(str(Path(tmp) / A.BEST_CKPT), A.CHECKPOINT_DIR)
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the artifact is the record

    return train_outputs(execute("train", ctx, cfg, params, body))


def train_outputs(run: Run) -> TrainOutputs:
    return TrainOutputs(run.info.run_id, f"{run.info.artifact_uri}/{A.CHECKPOINT_DIR}/{A.BEST_CKPT}",
                        run.data.metrics.get("best/val_bleu"))


def existing_train(run_id: str) -> tuple[TrainOutputs, str]:
    """``evaluate.train_run_id``: a finished train run -> its outputs and its prepare run id."""
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise ConfigError(f"evaluate.train_run_id={run_id}: no such run in this tracking store") from None
    stage = run.data.tags.get(A.TAG_STAGE, "non-nmt")
    if stage != "train" or run.info.status != "FINISHED":
        raise ConfigError(f"evaluate.train_run_id={run_id} is a {run.info.status} {stage} run; "
                          "it must name a FINISHED train run")
    return train_outputs(run), run.data.params["upstream.prepare_run_id"]


def load_trained(train_run_id: str) -> tuple[Seq2SeqModel, dict[str, Any]]:
    """The best checkpoint of a train run as an eval-mode model, plus its spec."""
    spec_path = download(train_run_id, A.MODEL_CONFIG)
    spec = json.loads(Path(spec_path).read_text())
    model = model_from_spec(spec)
    ckpt = torch.load(download(train_run_id, f"{A.CHECKPOINT_DIR}/{A.BEST_CKPT}"), map_location="cpu",
                      weights_only=True)
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    return model.eval(), spec
