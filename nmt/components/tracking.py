"""MLflow helpers: where the store lives, stage runs that never stay RUNNING, and the
reuse key that lets a finished stage stand in for a re-run (MLflow multistep example)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import mlflow
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from nmt.components import names as N
from nmt.components.errors import ServiceError
from nmt.components.private import redact
from nmt.components.procs import owner, owner_is_dead  # noqa: F401 - owner: re-exported

log = logging.getLogger("nmt")
_ROOT = Path(__file__).resolve().parents[2]


def project_home() -> Path:
    """Where the embedded store lives: ``$NMT_HOME``, else the checkout."""
    return Path(os.environ.get("NMT_HOME") or _ROOT).resolve()


def default_tracking_uri(home: Path | None = None) -> str:
    return f"sqlite:///{(home or project_home()) / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    Always absolute: a relative URI breaks inside Ray trial directories."""
    uri = _credentials_out(configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri())
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


def _credentials_out(uri: str) -> str:
    """``http://user:pass@host`` -> ``http://host``, the pair moved to MLflow's credential
    variables: the URI is exported, logged, pickled by Tune and printed; they are not."""
    from urllib.parse import unquote, urlsplit, urlunsplit
    parts = urlsplit(uri)
    if not parts.scheme.startswith("http") or "@" not in parts.netloc:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(user))
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(password))
    return urlunsplit(parts._replace(netloc=host))


def check_server(uri: str) -> None:
    """Fail fast, in one line, when a tracking server is down or refuses our credentials
    (MLflow's own client would retry for minutes, then print a traceback)."""
    import requests
    if not uri.startswith(("http://", "https://")):
        return
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=10)
    except requests.RequestException as err:
        raise ServiceError(f"the tracking server {redact(uri)} does not answer ({type(err).__name__}); start it "
                          "(`nmt server up`) or fix MLFLOW_TRACKING_URI / tracking.uri") from None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    auth = (user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None
    r = requests.get(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     auth=auth, timeout=30)
    if r.status_code == 401:
        who = f"user {user!r}" if user else "no credentials"
        raise ServiceError(f"the tracking server {redact(uri)} refused {who} (HTTP 401): set MLFLOW_TRACKING_USERNAME "
                          "and MLFLOW_TRACKING_PASSWORD to an account on that server")


def setup_tracking(uri: str, experiment: str) -> str:
    """Point MLflow at ``uri`` (exported for child processes) and return the experiment id,
    creating it with an absolute artifact folder beside the store when it is new."""
    check_server(uri)
    mlflow.set_tracking_uri(uri)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        if N.TAG_EXPERIMENT_KIND not in exp.tags:  # made by hand or by an older version: first use
            with contextlib.suppress(mlflow.exceptions.MlflowException):  # a READ user may not tag; cosmetic
                client.set_experiment_tag(exp.experiment_id, N.TAG_EXPERIMENT_KIND, N.EXPERIMENT_KIND)
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:"):
        location = (project_home() / "mlartifacts").as_uri()
    try:  # tagged "Machine learning", so the UI opens it in the Model training view, not GenAI
        return client.create_experiment(experiment, artifact_location=location,
                                        tags={N.TAG_EXPERIMENT_KIND: N.EXPERIMENT_KIND})
    except mlflow.exceptions.MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(experiment).experiment_id


def reuse_key(stage: str, params: Mapping[str, str], code: str) -> str:
    """Entry point + parameters (as strings) + the stage's code version
    (:func:`nmt.components.imports.code_version`); upstream run ids are params."""
    blob = json.dumps({"stage": stage, "params": {k: str(v) for k, v in params.items()},
                       "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def find_reusable(experiment_id: str, stage: str, params: Mapping[str, str], code: str) -> Run | None:
    """The newest FINISHED run of ``stage`` with exactly these params and code version."""
    key = reuse_key(stage, params, code)
    runs = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{N.TAG_REUSE_KEY}` = '{key}' and attributes.status = 'FINISHED'",
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
    all_tags = {N.TAG_STAGE: stage, N.TAG_CODE_VERSION: code, N.TAG_OWNER: owner(),
                N.TAG_REUSE_KEY: reuse_key(stage, params, code), **(tags or {})}
    run = mlflow.start_run(run_name=stage, experiment_id=experiment_id, tags=all_tags,
                           parent_run_id=parent_run_id, nested=mlflow.active_run() is not None)
    try:
        mlflow.log_params(dict(params))
        yield run
    except (KeyboardInterrupt, SystemExit):  # Lightning turns Ctrl-C into SystemExit
        _end_quietly("KILLED")
        raise
    except BaseException as err:
        _tag_quietly(N.TAG_ERROR, error_line(err))
        _end_quietly("FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")


def error_line(err: BaseException) -> str:
    """An exception in one line, ``Type: first line of its message``, short enough for a tag."""
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}"[:500] if first else type(err).__name__


def _tag_quietly(key: str, value: str) -> None:
    try:
        mlflow.set_tag(key, value)
    except Exception:  # noqa: BLE001 - the store may be what failed; the error itself matters more
        pass


def _end_quietly(status: str) -> None:
    """End the active run while an error is on its way out: if the store is unreachable too,
    say so and let the original error through (the next command marks the run)."""
    run = mlflow.active_run()
    try:
        mlflow.end_run(status)
    except Exception as err:  # noqa: BLE001 - the original error matters more
        log.warning("could not mark run %s %s (%s); the next nmt command here marks it",
                    run.info.run_id if run else "?", status, str(err).splitlines()[0][:120])


def recover_orphans(client: MlflowClient, experiment_id: str) -> list[str]:
    """Runs left RUNNING by a process of this machine that died (kill -9, a store outage
    at the wrong moment) end FAILED, tagged so: no run stays RUNNING for ever."""
    runs = client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    ended = []
    for run in runs:
        if owner_is_dead(run.data.tags.get(N.TAG_OWNER)):
            client.set_tag(run.info.run_id, N.TAG_RECOVERED, "owner process died")
            client.set_terminated(run.info.run_id, "FAILED")
            ended.append(run.info.run_id)
    if ended:
        log.info("marked %d orphaned RUNNING run(s) FAILED: %s", len(ended), ", ".join(ended))
    return ended
