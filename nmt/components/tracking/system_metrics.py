"""MLflow's system metrics (``system/cpu_utilization_percentage``, memory, disk, network, GPU
where present) as metric rows, for runs that cannot log them themselves.

A stage run gets them from the run store: with ``tracking.system_metrics`` on,
:meth:`nmt.components.tracking.store.RunStore.run` starts MLflow's ``SystemMetricsMonitor`` beside
each run it opens (no fluent switch, no process-global state). A sweep trial opens no run
itself, and against SQLite it must not write at all (one writer: the driver).
:class:`SystemRows` samples with MLflow's own monitor, at its interval
(``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``, 10 s by default;
``MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING`` samples averaged into one row), into rows the
trial hands to the driver with each report (:func:`to_json`, :func:`from_json`).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from nmt.components.tracking import names as N
from nmt.components.tracking.store import Metric, system_monitor

log = logging.getLogger("nmt")

ROWS_KEY = "system_rows"  # the report's key (Tune's) for the rows since the last report


class SystemRows:
    """A daemon thread sampling MLflow's system metrics into rows; :meth:`take` hands them
    over, :meth:`stop` ends it. A sampler that fails says so once and stops: the metrics
    are a view of the machine, never a reason for a run to fail."""

    def __init__(self) -> None:
        self.monitor = system_monitor(None)  # its samplers and settings; it logs nothing here
        self._rows: list[Metric] = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._step = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="nmt-system-metrics")

    def start(self) -> SystemRows:
        self._thread.start()
        return self

    def _loop(self) -> None:
        m = self.monitor
        try:
            while not self._stop.is_set():
                for _ in range(m.samples_before_logging):
                    m.collect_metrics()
                    if self._stop.wait(m.sampling_interval):
                        return
                self._publish()
        except Exception as err:  # noqa: BLE001 - e.g. a GPU driver that stops answering
            log.warning("system metrics: sampling stopped (%s)", str(err).splitlines()[0][:120] if str(err) else err)

    def _publish(self) -> None:
        now = int(time.time() * 1000)
        rows = [Metric(N.SYSTEM_PREFIX + k, float(v), now, self._step) for k, v in self.monitor.aggregate_metrics().items()]
        for monitor in self.monitor.monitors:
            monitor.clear_metrics()
        with self._lock:
            self._rows += rows
            self._step += 1

    def take(self) -> list[Metric]:
        with self._lock:
            rows, self._rows = self._rows, []
        return rows

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def to_json(rows: list[Metric]) -> str:
    """Rows as a JSON string (a Tune report's value): ``[[key, value, ms, step], ...]``."""
    return json.dumps([[m.key, m.value, m.timestamp, m.step] for m in rows])


def from_json(text: str | None) -> list[Metric]:
    return [Metric(*row) for row in json.loads(text)] if text else []
