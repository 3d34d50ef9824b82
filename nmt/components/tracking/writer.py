"""Metric rows that outlive a tracking-server outage.

A :class:`MetricWriter` keeps rows in a bounded buffer that one background thread drains
through the run store (at most 1000 rows a request), retrying with exponential backoff
(:func:`nmt.components.tracking.store.retrying`) while the server is down, so training never waits
on the network. If the server stays down past ``deadline_s`` the writer gives up and the
next ``add`` raises :class:`TrackingUnavailable`. Re-sending a row is harmless: the store
drops a row equal to one it holds (same key, timestamp, step and value), so a batch whose
answer was lost is simply sent again. :func:`run_writer` puts the pieces around one run.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pytorch_lightning import Callback
from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only

from nmt.components.tracking import names as N
from nmt.components.system.errors import TrackingUnavailable
from nmt.components.tracking.retry import retrying
from nmt.components.tracking.store import BATCH_ROWS, Metric, RunStore, StoreError, metric_rows


class MetricWriter:
    """Bounded, retrying, background writer of one run's metric rows.

    ``run_id`` may be a callable that finds the run (a sweep trial's run is created by the
    driver): it is called from the writer thread, with the same retries, until it answers.
    ``store``: the run store, or only its URI (a Ray worker that was handed the URI)."""

    def __init__(self, store: RunStore | str, run_id: str | Callable[[], str | None], *,
                 deadline_s: float = 300.0, capacity: int = 100_000):
        self.store = store if isinstance(store, RunStore) else RunStore(store, "")
        self.uri, self.deadline_s, self.capacity = self.store.uri, deadline_s, capacity
        self._run = run_id
        self._rows: collections.deque[Metric] = collections.deque()
        self._inflight: list[Metric] = []
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self.sent = 0
        self._thread = threading.Thread(target=self._drain, name="nmt-metric-writer", daemon=True)
        self._thread.start()

    # -- producer side -------------------------------------------------------------
    def add(self, rows: Iterable[Metric]) -> None:
        rows = list(rows)
        with self._cond:
            self._raise_if_failed()
            # a full buffer means the server has been away long: wait, bounded by the deadline
            while len(self._rows) + len(rows) > self.capacity and self._error is None:
                self._cond.wait(1.0)
            self._raise_if_failed()
            self._rows.extend(rows)
            self._cond.notify_all()

    def unsent(self) -> list[Metric]:
        """Rows not yet acknowledged by the store (in flight ones included)."""
        with self._cond:
            return [*self._inflight, *self._rows]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every row is written; raises TrackingUnavailable past the deadline."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._rows or self._inflight) and self._error is None:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise TrackingUnavailable(f"{len(self._rows) + len(self._inflight)} metric rows "
                                              f"still unwritten to {self.uri} after {timeout:g} s")
                self._cond.wait(1.0 if left is None else min(1.0, left))
            self._raise_if_failed()

    def close(self, flush: bool = True) -> None:
        try:
            if flush:
                self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # -- writer thread -------------------------------------------------------------
    def _run_id(self) -> str:
        if isinstance(self._run, str):
            return self._run
        found = self._run()
        if not found:
            raise StoreError("the run is not created yet", error_code="TEMPORARILY_UNAVAILABLE")
        self._run = found
        return found

    def _drain(self) -> None:
        store = RunStore(self.uri, self.store.experiment_id)  # a client of this thread's own
        while True:
            with self._cond:
                while not self._rows and not self._closed:
                    self._cond.wait()
                if not self._rows:
                    return
                n = min(BATCH_ROWS, len(self._rows))
                self._inflight = [self._rows.popleft() for _ in range(n)]
                batch = self._inflight
            try:
                retrying(lambda: store.log(self._run_id(), metrics=batch),
                         f"write {len(batch)} metric rows", self.deadline_s, self.uri)
            except BaseException as err:  # noqa: BLE001 - handed to the producer
                with self._cond:
                    self._error = err
                    self._cond.notify_all()
                return
            with self._cond:
                self.sent += len(batch)
                self._inflight = []
                self._cond.notify_all()


class BufferedMlflowLogger(Logger):
    """Lightning's logger for the train stage: rows go through a :class:`MetricWriter`,
    so a tracking-server outage neither stops nor slows training."""

    def __init__(self, writer: MetricWriter, run_id: str):
        super().__init__()
        self.writer, self._run_id = writer, run_id

    @property
    def name(self) -> str:
        return "mlflow"

    @property
    def version(self) -> str:
        return self._run_id

    @property
    @rank_zero_experiment
    def experiment(self) -> MetricWriter:
        return self.writer

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the stage run logs its params itself

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.writer.add(metric_rows(metrics, step or 0))


class PendingRows(Callback):
    """Metric rows the store had not acknowledged when a checkpoint was taken travel inside
    it, with their run id. A rerun resumed from that checkpoint writes them to that run
    first, so the interrupted run's rows up to the checkpoint are complete even after a
    SIGKILL or a server outage (re-sent rows the store already holds are dropped)."""

    def __init__(self, writer: MetricWriter, run_id: str):
        self.writer, self.run_id = writer, run_id

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        rows = [[m.key, m.value, m.timestamp, m.step] for m in self.writer.unsent()]
        checkpoint[N.CKPT_PENDING_ROWS] = {"run_id": self.run_id, "rows": rows}

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        pending = checkpoint.get(N.CKPT_PENDING_ROWS) or {}
        rows = [Metric(*row) for row in pending.get("rows", [])]
        if not rows or pending.get("run_id") in (None, self.run_id):
            self.writer.add(rows)
            return
        deadline_s = self.writer.deadline_s
        earlier = MetricWriter(self.writer.store, pending["run_id"], deadline_s=deadline_s)
        try:
            earlier.add(rows)
            earlier.flush(timeout=deadline_s)
        finally:
            earlier.close(flush=False)


def run_writer(tracking: Any, store: RunStore | str | None, run_id: str | None
               ) -> tuple[MetricWriter | None, list[Logger], list[Callback]]:
    """A run's writer (sized by ``tracking``, a ``TrackingConfig``), its Lightning logger and
    the callback that keeps unsent rows in checkpoints; none of them without a run (a sweep
    trial reports to Tune)."""
    if not run_id:
        return None, [], []
    writer = MetricWriter(store, run_id, deadline_s=tracking.outage_deadline_s, capacity=tracking.buffer_rows)
    return writer, [BufferedMlflowLogger(writer, run_id)], [PendingRows(writer, run_id)]
