"""Lightning callbacks of every training run: what the user sees and how it stops."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from nmt.components import names as N
from nmt.components import startup

log = logging.getLogger("nmt")


class FirstStep(Callback):
    """At the first training step, logs the start-up a user waits through:
    ``time/to_first_step_s`` from the process's start (imports, store, data, model, the first
    batch), ``time/stage_to_first_step_s`` from the train stage's (or trial's) own start
    (without the stages before it), and ``time/startup/<phase>_s`` per phase
    (:mod:`nmt.components.startup`), also as one log line. Written straight to the
    loggers, at step 0: Lightning's ``log_every_n_steps`` would delay or drop one row."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.created = time.time()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        startup.mark("fit setup")  # data module, loaders and sampler, optimizer, strategy

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.seconds is None:
            startup.mark("first batch")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.seconds is not None:
            return
        startup.mark("first step")
        now = time.time()
        self.seconds = now - startup.process_start()
        stage = now - (startup.stage_start() or self.created)
        rows = startup.breakdown(now)
        metrics = {N.TO_FIRST_STEP: self.seconds, N.STAGE_TO_FIRST_STEP: stage,
                   **{N.startup_metric(phase): wall for phase, wall, _ in rows}}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=0)
        if trainer.is_global_zero:
            log.info("train: first step %.1f s after the process started, %.1f s after the stage did (%s)",
                     self.seconds, stage, startup.describe(rows))


class EpochLine(Callback):
    """One line per epoch (val/bleu, tokens/s, elapsed): what a user watching a long run
    needs, in logs too, where a redrawn progress bar is noise."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        bleu, speed = m.get(N.VAL_BLEU), m.get(N.TOKENS_PER_S)
        log.info("train: epoch %d, step %d: val/bleu %s, %s target tokens/s, %.0f s elapsed",
                 trainer.current_epoch + 1, trainer.global_step, "-" if bleu is None else f"{float(bleu):.2f}",
                 "-" if speed is None else f"{float(speed):,.0f}", time.perf_counter() - self.start)


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
