"""A run as the store reads it back (:class:`RunRecord`): what the pipeline needs of a run,
not MLflow's ``Run``, which only :mod:`nmt.components.tracking.store` reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    """A run as the store reads it back: what the pipeline needs, not MLflow's ``Run``."""

    id: str
    name: str
    status: str                       # RUNNING, FINISHED, FAILED, KILLED
    params: Mapping[str, str]         # as MLflow keeps them: strings
    tags: Mapping[str, str]
    metrics: Mapping[str, float]      # each metric's latest value
    start_time: int                   # ms since the epoch
    artifact_uri: str
    experiment_id: str

    @property
    def run_id(self) -> str:
        return self.id

    @classmethod
    def of(cls, run: Any) -> RunRecord:  # MLflow's Run: only the store imports MLflow
        i, d = run.info, run.data
        return cls(i.run_id, i.run_name, i.status, dict(d.params), dict(d.tags), dict(d.metrics), i.start_time,
                   i.artifact_uri, i.experiment_id)
