"""Where the seconds before the first training step go.

The command line and the train stage :func:`mark` the end of each start-up phase (imports,
config, tracking store, data, model, ...); at the first step :func:`breakdown` turns the
marks into seconds per phase, from the process's start. :func:`begin_stage` records when
the train stage (or a sweep trial's :func:`~nmt.pipeline.stages.train.fit`) began, so its
own start-up can be read apart from the stages before it (``make demo``'s prepare).
Times are wall-clock seconds (``time.time()``); nothing here needs a GPU or MLflow.
"""

from __future__ import annotations

import time

_marks: list[tuple[str, float, float]] = []   # (phase that just ended, when, this process's CPU seconds)
_stage: list[float] = []               # when the open stage began; empty when none is open


def process_start() -> float:
    """When this process was created (seconds since the epoch, 10 ms resolution)."""
    import psutil
    return psutil.Process().create_time()


def reset() -> None:
    """Forget every mark and stage: a new command starts (``nmt`` main, a test)."""
    _marks.clear()
    _stage.clear()


COMMAND_PHASES = ("imports", "config")  # marked by the command line before the pipeline starts


def begin_pipeline() -> None:
    """A pipeline starts: keep only the command line's own marks (a test's earlier pipelines
    in the same process would otherwise count)."""
    _marks[:] = [m for m in _marks if m[0] in COMMAND_PHASES][-len(COMMAND_PHASES):]
    _stage.clear()


def mark(phase: str) -> None:
    """The phase ``phase`` ends now (and the next one starts)."""
    _marks.append((phase, time.time(), time.process_time()))


def begin_stage() -> None:
    """The train stage (or a trial) starts now; earlier stage marks are dropped."""
    _stage[:] = [time.time()]


def end_stage() -> None:
    _stage.clear()


def stage_start() -> float | None:
    return _stage[0] if _stage else None


def breakdown(now: float | None = None) -> list[tuple[str, float, float]]:
    """-> [(phase, wall seconds, CPU seconds of this process)] in order, the first from the
    process's start, the last up to ``now``; marks older than this process (inherited by a
    fork) are left out. On a shared machine the CPU seconds are the steadier figure."""
    now = time.time() if now is None else now
    start = process_start()
    rows, prev, prev_cpu = [], start, 0.0
    for phase, at, cpu in _marks:
        if at < start or at > now:
            continue
        rows.append((phase, max(at - prev, 0.0), max(cpu - prev_cpu, 0.0)))
        prev, prev_cpu = at, cpu
    return rows


def describe(rows: list[tuple[str, float, float]]) -> str:
    """``imports 1.20 s (cpu 1.10), config 0.30 s (cpu 0.29), ...``: one log line."""
    return ", ".join(f"{phase} {wall:.2f} s (cpu {cpu:.2f})" for phase, wall, cpu in rows)
