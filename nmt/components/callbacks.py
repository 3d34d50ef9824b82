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

log = logging.getLogger("nmt")


class FirstStep(Callback):
    """Logs ``time/to_first_step_s``: from the process's start to its first training step
    (imports, CUDA start, data, model, the first batch): the start-up a user waits through."""

    def __init__(self) -> None:
        self.seconds: float | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self.seconds is None:
            import psutil
            self.seconds = time.time() - psutil.Process().create_time()
            pl_module.log(N.TO_FIRST_STEP, self.seconds, on_step=True, on_epoch=False)


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
