"""One run, as the store reads it back (:class:`RunRecord`: what the pipeline needs of a run,
not MLflow's ``Run``, which only :mod:`nmt.components.tracking.store` reads) and as it is
written to (:class:`RunLog`: what a stage body, a journey, a sweep's parent or a compare run
logs into; :meth:`nmt.components.tracking.store.RunStore.run` makes them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.components.tracking import names as N

PARENT_KINDS = ("sweep", "journey", "pipeline")  # the runs that stage runs nest under (RunRecord.kind)


class RunLog:
    """One run's writes: what a stage body, a journey or a compare run logs into. The store
    owns its runs and makes these; ``store`` is that :class:`~nmt.components.tracking.store.RunStore`
    (typed loosely, so that this module imports nothing back)."""

    def __init__(self, store: Any, run_id: str):
        self.store, self.run_id = store, run_id

    def set_tag(self, key: str, value: Any) -> None:
        self.store.set_tag(self.run_id, key, value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.store.log(self.run_id, tags=tags)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.store.log(self.run_id, params=params)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.store.log_metrics(self.run_id, metrics, step)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.log_metrics({key: value}, step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.store.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        self.store.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_table(self, data: Mapping[str, list], artifact_file: str) -> None:
        self.store.client.log_table(self.run_id, dict(data), artifact_file)

    def log_dataset(self, dataset: Any, *, path: str, name: str, context: str, schema_of: Any = None,
                    tags: Mapping[str, str] | None = None) -> None:
        self.store.log_dataset(self.run_id, dataset, path=path, name=name, context=context, schema_of=schema_of,
                               tags=tags)


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

    @property
    def kind(self) -> str:
        """What made it: its stage (train, evaluate, trial, journey, ...), ``sweep`` for a sweep's
        parent, ``pipeline`` for a command's parent run, ``non-nmt`` for a run of another tool."""
        return self.tags.get(N.TAG_STAGE) or ("sweep" if N.TAG_SWEEP in self.tags else
                                              "pipeline" if N.TAG_PIPELINE in self.tags else "non-nmt")

    @classmethod
    def of(cls, run: Any) -> RunRecord:  # MLflow's Run: only the store imports MLflow
        i, d = run.info, run.data
        return cls(i.run_id, i.run_name, i.status, dict(d.params), dict(d.tags), dict(d.metrics), i.start_time,
                   i.artifact_uri, i.experiment_id)
