"""Lightning callbacks of every training run: what the user sees and how it stops."""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, Timer, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from nmt.components.tracking import names as N
from nmt.components.training import startup
from nmt.components.system.errors import ConfigError

log = logging.getLogger("nmt")


class FirstStep(Callback):
    """At the first training step, logs the start-up a user waits through:
    ``time/to_first_step_s`` from the process's start (imports, store, data, model, the first
    batch), ``time/stage_to_first_step_s`` from the train stage's (or trial's) own start
    (without the stages before it), and ``time/startup/<phase>_s`` per phase
    (:mod:`nmt.components.training.startup`), also as one log line. Written straight to the
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


class TerminalBar(TQDMProgressBar):
    """Lightning's bar (steps of the epoch, rate, ETA, the logged ``prog_bar`` metrics) on
    stderr, where a terminal shows it; Lightning draws it on stdout, which holds results."""

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc=self.train_description, position=2 * self.process_position, disable=self.is_disabled,
                    leave=True, dynamic_ncols=True, file=sys.stderr, smoothing=0, bar_format=self.BAR_FORMAT)

    def init_validation_tqdm(self) -> Tqdm:
        main_bar = self.trainer.state.fn != "validate"  # no training bar under trainer.validate
        return Tqdm(desc=self.validation_description, position=2 * self.process_position + main_bar,
                    disable=self.is_disabled, leave=not main_bar, dynamic_ncols=True, file=sys.stderr,
                    bar_format=self.BAR_FORMAT)


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


class ValidationSchedule(Callback):
    """Validation every ``steps`` optimizer steps and/or every ``minutes``, as well as at
    epoch ends. Checkpoints (ModelCheckpoint on val/bleu), early stopping and sweep reports
    follow each validation, so they follow this schedule too.

    Lightning 2.6 offers either an interval of batches *or* epoch ends (its int
    ``val_check_interval`` with ``check_val_every_n_epoch=None`` drops the epoch-end check),
    and its time interval replaces both. This widens the epoch loop's own decision
    (``_TrainingEpochLoop._should_check_val_fx``, pinned by the lock file and guarded by
    tests/components/training/test_long_epochs.py) with an "or due" rule, and only at a batch that stepped the
    optimizer: a checkpoint in the middle of an accumulation would lose its gradients."""

    def __init__(self, steps: int | None = None, minutes: float | None = None) -> None:
        self.steps, self.seconds = steps, (minutes * 60 if minutes else None)
        self._last_step, self._last_time = -1, time.monotonic()

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not (self.steps or self.seconds):
            return
        loop = trainer.fit_loop.epoch_loop
        lightning_rule = loop._should_check_val_fx
        loop._should_check_val_fx = lambda fetcher: lightning_rule(fetcher) or self._due(trainer)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a resumed run validated at its checkpoint's step already
        self._last_step, self._last_time = trainer.global_step, time.monotonic()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._last_step, self._last_time = trainer.global_step, time.monotonic()

    def _due(self, trainer: pl.Trainer) -> bool:
        loop = trainer.fit_loop.epoch_loop
        step = trainer.global_step
        if not loop._should_check_val_epoch() or loop._should_accumulate() or step == self._last_step:
            return False
        by_steps = bool(self.steps) and step % self.steps == 0
        by_time = self.seconds is not None and time.monotonic() - self._last_time >= self.seconds
        if self.seconds is not None and trainer.world_size > 1:  # DDP: ranks' clocks differ; all validate or none
            by_time = bool(trainer.strategy.broadcast(by_time, src=0))
        return by_steps or by_time


def check_batch_log_path(path: str | None) -> None:
    """``trainer.batch_log``'s folder exists (else a traceback at the first batch, after start-up)."""
    folder = Path(path).parent if path else None
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"trainer.batch_log={path}: there is no folder {folder}; create it or give another path")


def check_batch_log(cfg: Any) -> None:
    """The train stage's check before any stage runs (a row's ``check`` in the stage table)."""
    check_batch_log_path(cfg.trainer.batch_log)


class BatchLog(Callback):
    """``trainer.batch_log``: one JSON line per training batch, ``{"epoch", "step", "idx"}``
    (``step``: optimizer steps done before the batch; ``idx``: the pairs' ids in the
    prepared split). Written and flushed per batch, so a killed run's file is complete up to
    its last batch: what shows that a resumed run neither replays nor skips a batch."""

    def __init__(self, path: str) -> None:
        check_batch_log_path(path)
        self.path = path

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if trainer.is_global_zero:
            line = json.dumps({"epoch": trainer.current_epoch, "step": trainer.global_step,
                               "idx": [int(i) for i in batch["idx"]]})
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


class ContinueSteps(Callback):
    """A resumed run logs its first step row at the checkpoint's step, not one before it.

    Lightning 2.6 saves its logging step (``_batches_that_stepped``) before counting the
    step of the batch whose validation saves the checkpoint, and on restart adds that one
    back only for some restart stages: resumed from a validation inside an epoch, it would
    log the checkpoint's last step again. With one optimizer the logging step is the
    optimizer step, so the first batch of the run sets it so (a no-op on a fresh run)."""

    def __init__(self) -> None:
        self._first = True

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._first:
            self._first = False
            trainer.fit_loop.epoch_loop._batches_that_stepped = trainer.global_step


class TokenBudget(Callback):
    """``trainer.max_target_tokens``: stop once ``train/tokens_seen`` (the module's
    ``tokens_seen``, restored from a checkpoint on resume) reaches ``max_tokens``. Checked
    after each batch that stepped the optimizer, so a run ends at most one optimizer step's
    tokens past the budget, and the validation Lightning runs at a stop (which the best
    checkpoint and a sweep trial's report and checkpoint follow) is never in the middle of an
    accumulation. A run resumed at the budget trains no further. Composes with max_epochs,
    max_steps and max_minutes: whichever comes first. A budget in tokens is the same work on a
    busy or an idle machine."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._last_step = -1

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "tokens_seen", 0) >= self.max_tokens:  # resumed from the budget's own checkpoint
            trainer.should_stop = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if trainer.global_step == self._last_step:  # accumulating: no optimizer step in this batch
            return
        self._last_step = trainer.global_step
        spent = getattr(pl_module, "tokens_seen", 0) >= self.max_tokens
        if trainer.world_size > 1:  # ranks count their own batches: all stop or none
            spent = bool(trainer.strategy.broadcast(spent, src=0))
        if spent:
            trainer.should_stop = True


class ValidateAtMaxSteps(Callback):
    """``trainer.max_steps`` inside an epoch: Lightning 2.6 leaves its epoch loop at that step
    without validating, so the steps since the last validation would be trained and thrown
    away (never scored, checkpointed, averaged or kept). Asking it to stop at that step
    instead validates there, as a stop by minutes, target tokens or early stopping does."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


def token_budget_spent(trainer: pl.Trainer) -> bool:
    """Whether the trainer's :class:`TokenBudget` (if it has one) has been reached."""
    budgets = [c.max_tokens for c in trainer.callbacks if isinstance(c, TokenBudget)]
    return bool(budgets) and getattr(trainer.lightning_module, "tokens_seen", 0) >= min(budgets)


def budget_progress(trainer: pl.Trainer) -> float:
    """The fraction of the training budget spent, 0..1: the largest over the limits set
    (optimizer steps of max_steps or max_epochs, minutes of max_minutes, target tokens of
    max_target_tokens), since whichever is reached first ends the run. Each is restored on
    resume (the step, the Timer's elapsed time, tokens_seen), so a resumed run goes on where
    it was. 0 where nothing but early stopping ends it."""
    spent = [0.0]
    steps = trainer.estimated_stepping_batches
    if math.isfinite(steps) and steps > 0:
        spent.append(trainer.global_step / steps)
    for c in trainer.callbacks:
        if isinstance(c, Timer) and c.time_remaining() is not None:
            elapsed = c.time_elapsed()
            spent.append(elapsed / max(elapsed + c.time_remaining(), 1e-9))
        elif isinstance(c, TokenBudget):
            spent.append(getattr(trainer.lightning_module, "tokens_seen", 0) / c.max_tokens)
    return min(1.0, max(spent))
