"""MLflow helpers: where the store lives, stage runs that never stay RUNNING, and the
reuse key that lets a finished stage stand in for a re-run (MLflow multistep example)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from components import artifacts as A

_ROOT = Path(__file__).resolve().parents[1]


def project_home() -> Path:
    """Where the embedded store lives: ``$NMT_HOME``, else the checkout."""
    return Path(os.environ.get("NMT_HOME") or _ROOT).resolve()


def default_tracking_uri(home: Path | None = None) -> str:
    return f"sqlite:///{(home or project_home()) / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    Always absolute: a relative URI breaks inside Ray trial directories."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def setup_tracking(uri: str, experiment: str) -> str:
    """Point MLflow at ``uri`` (exported for child processes) and return the experiment id,
    creating it with an absolute artifact folder beside the store when it is new."""
    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        location = (project_home() / "mlartifacts").as_uri()
    try:
        return client.create_experiment(experiment, artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(experiment).experiment_id


_CODE_DIRS = ("components", "pipeline")


def code_version() -> str:
    """Content hash of the project's Python sources: changes whenever the code does,
    whether or not it is committed."""
    h = hashlib.sha256()
    for d in _CODE_DIRS:
        for path in sorted((_ROOT / d).rglob("*.py")):
            h.update(str(path.relative_to(_ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def reuse_key(stage: str, params: Mapping[str, str], code: str) -> str:
    """Entry point + parameters (as strings) + code version; upstream run ids are params."""
    blob = json.dumps({"stage": stage, "params": {k: str(v) for k, v in params.items()},
                       "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def find_reusable(experiment_id: str, stage: str, params: Mapping[str, str], code: str) -> Run | None:
    """The newest FINISHED run of ``stage`` with exactly these params and code version."""
    key = reuse_key(stage, params, code)
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{A.TAG_REUSE_KEY}` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5)
    for run in runs:
        # MLflow params are strings: compare strings, or the cache never hits.
        if {k: run.data.params.get(k) for k in params} == {k: str(v) for k, v in params.items()}:
            return run
    return None


@contextlib.contextmanager
def stage_run(stage: str, *, experiment_id: str, params: Mapping[str, str], code: str,
              parent_run_id: str | None = None, tags: Mapping[str, str] | None = None
              ) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run for one stage; ends FINISHED on success, FAILED on an exception and
    KILLED on Ctrl-C, so nothing is left RUNNING."""
    all_tags = {A.TAG_STAGE: stage, A.TAG_CODE_VERSION: code,
                A.TAG_REUSE_KEY: reuse_key(stage, params, code), **(tags or {})}
    run = mlflow.start_run(run_name=stage, experiment_id=experiment_id, tags=all_tags,
                           parent_run_id=parent_run_id, nested=mlflow.active_run() is not None)
    try:
        mlflow.log_params(dict(params))
        yield run
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def run_metric(run: Run, key: str) -> float | None:
    value = run.data.metrics.get(key)
    return None if value is None else float(value)


def best_metric(client: MlflowClient, run_id: str, key: str, mode: str = "max") -> float | None:
    """Best value in a metric's history (the run's latest value may not be the best)."""
    hist = client.get_metric_history(run_id, key)
    if not hist:
        return None
    values = [m.value for m in hist]
    return max(values) if mode == "max" else min(values)
