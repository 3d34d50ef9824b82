"""The run store: the one module that talks to MLflow's tracking store and registry
(model packaging, ``translator*`` and ``serving``, aside).

A :class:`RunStore` is built once per command from the config (:meth:`RunStore.open`): an
explicit tracking URI and experiment, one ``MlflowClient``, no process-global tracking state.
Every kind of run (stage, pipeline parent, journey, sweep, promotion, compare) lives inside
:meth:`RunStore.run`, which ends it FINISHED, FAILED (with its one-line error) or KILLED, so
nothing is left RUNNING (Tune's trials start and end in callbacks: ``start``/``set_terminated``);
:meth:`RunStore.recover_orphans` ends what a dead process left; :meth:`RunStore.find_reusable`
answers the stage runner's cache (``nmt.pipeline.stages.runner.execute``). Reads hand back a :class:`RunRecord`, not MLflow's
``Run``, and :meth:`RunStore.find` takes typed queries: no other module writes a search string.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag  # noqa: F401 - the store's row and run types
from mlflow.entities.model_registry import ModelVersion  # noqa: F401
from mlflow.exceptions import MlflowException as StoreError
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError, TrackingUnavailable
from nmt.components.system.procs import owner, owner_is_dead
from nmt.components.system.scratch import held_scratch
from nmt.components.tracking.registry import Registry, use_registry_uri
from nmt.components.tracking.retry import retrying
from nmt.components.tracking.run import RunLog, RunRecord
from nmt.components.tracking.uri import check_server, check_uri, error_line, project_home, resolve_tracking_uri, reuse_key

log = logging.getLogger("nmt")
BATCH_ROWS, PARAM_CHARS = 1000, 6000  # MLflow's log_batch rows and param value length


def metric_rows(metrics: Mapping[str, Any], step: int, timestamp_ms: int | None = None) -> list[Metric]:
    ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return [Metric(k, float(v), ts, int(step)) for k, v in metrics.items()]


def system_monitor(run_id: str | None, uri: str | None = None) -> Any:
    """MLflow's own system-metrics sampler (its settings, e.g. the sampling interval); with
    ``run_id`` None it logs nothing and only samples."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    return SystemMetricsMonitor(run_id, tracking_uri=uri)


class RunStore(Registry):
    """One tracking store and experiment. Picklable (Ray ships it to trials): it keeps the
    URI and ids, and makes its client again where it lands."""

    def __init__(self, uri: str, experiment_id: str, *, deadline_s: float = 300.0, system_metrics: bool = False):
        self.uri, self.experiment_id = uri, experiment_id
        self.deadline_s, self.system_metrics = deadline_s, system_metrics
        self._client: MlflowClient | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_client": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.uri, registry_uri=self.uri)  # not $MLFLOW_REGISTRY_URI's
        return self._client

    @classmethod
    def open(cls, uri: str | None, experiment: str, *, deadline_s: float = 300.0,
             system_metrics: bool = False) -> RunStore:
        """The store at ``uri`` (config value, else ``$MLFLOW_TRACKING_URI``, else the embedded
        SQLite store); ``experiment`` is created, tagged for MLflow's Model training view, with
        an absolute artifact folder beside an SQLite store, when it is new.
        Raises ServiceError when a server does not answer or refuses our credentials."""
        uri = resolve_tracking_uri(uri)
        check_uri(uri)
        if uri.startswith(("http://", "https://")):  # a server: fail fast, in one line
            from nmt.components.tracking.login import credentials  # MLflow's order: env, ~/.mlflow/credentials, token
            check_server(uri, *credentials(uri))
        client = MlflowClient(uri, registry_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            if N.TAG_EXPERIMENT_KIND not in exp.tags:  # made by hand or by an older version: first use
                with contextlib.suppress(StoreError):  # a READ user may not tag; cosmetic
                    client.set_experiment_tag(exp.experiment_id, N.TAG_EXPERIMENT_KIND, N.EXPERIMENT_KIND)
            exp_id = exp.experiment_id
        else:
            location = (project_home() / "mlartifacts").as_uri() if uri.startswith("sqlite:") else None
            try:
                exp_id = client.create_experiment(experiment, artifact_location=location,
                                                  tags={N.TAG_EXPERIMENT_KIND: N.EXPERIMENT_KIND})
            except StoreError:  # created meanwhile by another process
                exp_id = client.get_experiment_by_name(experiment).experiment_id
        return cls(uri, exp_id, deadline_s=deadline_s, system_metrics=system_metrics)

    @classmethod
    def from_config(cls, tracking: Any) -> RunStore:
        """From a ``TrackingConfig`` (``uri``, ``experiment``, ``outage_deadline_s``, ``system_metrics``)."""
        return cls.open(tracking.uri, tracking.experiment, deadline_s=tracking.outage_deadline_s,
                        system_metrics=tracking.system_metrics)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """MLflow's global tracking and registry URIs set to ours while a library call reads
        only those (``log_model``, ``register_model``, ``models:/`` names: MLflow resolves these
        through its globals even when given a URI, else ``./mlflow.db``), then put back."""
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri
        with _use_tracking_uri(self.uri), use_registry_uri(self.uri):
            yield

    # -- the run lifecycle ---------------------------------------------------------------
    def start(self, name: str, *, parent: str | None = None, tags: Mapping[str, str] | None = None,
              params: Mapping[str, Any] | None = None) -> RunLog:
        """A RUNNING run owned by this process (``nmt.owner``), nested under ``parent``."""
        all_tags = {N.TAG_OWNER: owner(), **({N.TAG_PARENT: parent} if parent else {}), **(tags or {})}
        handle = RunLog(self, self.client.create_run(self.experiment_id, run_name=name, tags=all_tags).info.run_id)
        if params:
            handle.log_params(params)
        return handle

    def end(self, run_id: str, status: str, error: BaseException | None = None) -> None:
        """End a run FINISHED, FAILED or KILLED; ``error`` goes into its ``nmt.error`` tag."""
        if error is not None:
            with contextlib.suppress(Exception):  # the store may be what failed; the error matters more
                self.client.set_tag(run_id, N.TAG_ERROR, error_line(error))
        self.client.set_terminated(run_id, status)

    @contextlib.contextmanager
    def run(self, name: str, *, parent: str | None = None, tags: Mapping[str, str] | None = None,
            params: Mapping[str, Any] | None = None, resume: str | None = None, patient: bool = False
            ) -> Iterator[RunLog]:
        """A run around a body: FINISHED on success, FAILED with ``nmt.error`` on an exception,
        KILLED on Ctrl-C (Lightning turns it into SystemExit); with ``tracking.system_metrics``
        MLflow's own monitor samples beside it. ``resume``: that unfinished run, RUNNING again
        and ours, instead of a new one. ``patient``: the end waits out a store outage (a sweep)."""
        if resume:
            self.mark_running(resume)
            self.set_tag(resume, N.TAG_OWNER, owner())  # this process writes it now
        handle = RunLog(self, resume) if resume else self.start(name, parent=parent, tags=tags, params=params)
        monitor = system_monitor(handle.run_id, self.uri) if self.system_metrics else None
        if monitor is not None:
            monitor.start()
        try:
            yield handle
        except (KeyboardInterrupt, SystemExit):
            self._end(handle.run_id, "KILLED", None, patient)
            raise
        except BaseException as err:
            self._end(handle.run_id, "FAILED", err, patient)
            raise
        else:
            self._end(handle.run_id, "FINISHED", None, patient)
        finally:
            if monitor is not None:
                monitor.finish()

    def _end(self, run_id: str, status: str, error: BaseException | None, patient: bool) -> None:
        """A success's end must reach the store, a failure's is reported when it cannot; ``patient``:
        first retry an outage, for the deadline after a success and 10 s after a failure."""
        try:
            if not patient:
                return self.end(run_id, status, error)
            deadline = self.deadline_s if status == "FINISHED" else 10.0
            retrying(lambda: self.end(run_id, status, error), f"end run {run_id}", deadline, self.uri)
        except Exception as err:  # noqa: BLE001 - while an error is on its way out, it matters more
            if (status == "FINISHED" or patient) and not isinstance(err, TrackingUnavailable):
                raise
            log.warning("could not mark run %s %s (%s); the next nmt command here marks it",
                        run_id, status, str(err).splitlines()[0][:200])

    def recover_orphans(self) -> list[str]:
        """Runs left RUNNING by a process of this machine that died (kill -9, a store outage
        at the wrong moment) end FAILED, tagged so: no run stays RUNNING for ever."""
        ended = []
        for run in self.find(status="RUNNING"):
            if owner_is_dead(run.tags.get(N.TAG_OWNER)):
                self.client.set_tag(run.id, N.TAG_RECOVERED, "owner process died")
                self.client.set_terminated(run.id, "FAILED")
                ended.append(run.id)
        if ended:
            log.info("marked %d orphaned RUNNING run(s) FAILED: %s", len(ended), ", ".join(ended))
        return ended

    def find_reusable(self, stage: str, params: Mapping[str, str], code: str) -> RunRecord | None:
        """The newest FINISHED run of ``stage`` with exactly these params and code version."""
        runs = self.find(tags={N.TAG_REUSE_KEY: reuse_key(stage, params, code)}, status="FINISHED", limit=5)
        want = {k: str(v) for k, v in params.items()}
        # MLflow params are strings: compare strings, or the cache never hits
        return next((r for r in runs if {k: r.params.get(k) for k in params} == want), None)

    # -- reads -------------------------------------------------------------------------
    def get_run(self, run_id: str) -> RunRecord:
        return RunRecord.of(self.client.get_run(run_id))

    def expect(self, run_id: str, given: str, kinds: tuple[str, ...], status: str | None = None) -> RunRecord:
        """The run a user named (``given``: the flag or key, e.g. ``--runs``), when it is one of
        ``kinds`` (:attr:`RunRecord.kind`) and, if given, in ``status``; else one line saying what it is."""
        named = f"{given}{run_id}" if given.endswith("=") else f"{given} {run_id}"
        try:
            run = self.get_run(run_id)
        except StoreError:
            raise ConfigError(f"{named}: no such run in {self.uri}") from None
        if run.kind not in kinds or (status and run.status != status):
            names = " or ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1 else kinds)
            what = f"a {status + ' ' if status else ''}{names} run"
            raise ConfigError(f"{named} is a {run.status} {run.kind} run; it takes {what}")
        return run

    def find(self, *, stage: str | None = None, parent: str | None = None, tags: Mapping[str, str] | None = None,
             status: str | None = None, not_status: str | None = None, ranked_by: str | None = None,
             limit: int = 1000) -> list[RunRecord]:
        """This experiment's runs of ``stage``, nested under ``parent``, carrying ``tags``, with (or
        without: ``not_status``) ``status``; newest first, or, with ``ranked_by``, only the runs
        that logged that metric, highest first. The one place that writes MLflow's search syntax."""
        where = {**({N.TAG_STAGE: stage} if stage else {}), **({N.TAG_PARENT: parent} if parent else {}), **(tags or {})}
        terms = [f"tags.`{k}` = '{v}'" for k, v in where.items()]
        terms += [f"attributes.status = '{status}'"] if status else []
        terms += [f"attributes.status != '{not_status}'"] if not_status else []
        terms += [f"metrics.`{ranked_by}` >= 0"] if ranked_by else []
        order = [f"metrics.`{ranked_by}` DESC"] if ranked_by else ["attributes.start_time DESC"]
        runs = self.client.search_runs([self.experiment_id], " and ".join(terms), max_results=limit, order_by=order)
        return [RunRecord.of(r) for r in runs]

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return list(self.client.get_metric_history(run_id, key))

    def download(self, run_id: str, path: str, dst: str | Path | None = None) -> Path:
        """A run's artifact (file or folder) copied to ``dst``, or to a folder of this process's,
        removed when it exits (MLflow copies even a local store's, into a temp folder that
        nothing removes)."""
        dst = held_scratch("downloads") if dst is None else dst
        return Path(self.client.download_artifacts(run_id, path, str(dst)))

    @property
    def is_server(self) -> bool:
        """A tracking server (artifacts come over the network), not a store on this disk."""
        return self.uri.startswith(("http://", "https://"))

    def download_uri(self, uri: str, dst: str | Path | None = None) -> Path:
        """A ``runs:/``, ``models:/`` or artifact URI on local disk, where :meth:`download` puts it."""
        from mlflow.artifacts import download_artifacts
        dst = held_scratch("downloads") if dst is None else dst
        with self.pinned():
            return Path(download_artifacts(artifact_uri=uri, dst_path=str(dst),
                                           tracking_uri=self.uri, registry_uri=self.uri))

    # -- writes, by run id ---------------------------------------------------------------
    def log(self, run_id: str, *, metrics: Iterable[Metric] = (), params: Mapping[str, Any] | None = None,
            tags: Mapping[str, Any] | None = None) -> None:
        """Rows, params and tags in batches of the store's limit; a long param value cut to its limit."""
        rows = list(metrics)
        ps = [Param(k, str(v)[:PARAM_CHARS]) for k, v in (params or {}).items()]
        ts = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        if len(rows) <= BATCH_ROWS - 200 and len(ps) <= 100 and len(ts) <= 100:
            if rows or ps or ts:
                self.client.log_batch(run_id, metrics=rows, params=ps, tags=ts)
            return
        for i in range(0, len(ps), 100):
            self.client.log_batch(run_id, params=ps[i:i + 100])
        for i in range(0, len(ts), 100):
            self.client.log_batch(run_id, tags=ts[i:i + 100])
        for i in range(0, len(rows), BATCH_ROWS):
            self.client.log_batch(run_id, metrics=rows[i:i + BATCH_ROWS])

    def log_dataset(self, run_id: str, dataset: Any, *, path: str, name: str, context: str,
                    schema_of: Any = None, tags: Mapping[str, str] | None = None) -> None:
        """A Hugging Face dataset as one of the run's inputs (the UI's Datasets column), with
        ``tags``; the schema is read from ``schema_of`` (a small slice of it) when given."""
        from mlflow.data import from_huggingface
        from mlflow.entities import DatasetInput, InputTag
        ds = from_huggingface(dataset, path=path, name=name)
        if schema_of is not None:
            ds.schema = from_huggingface(schema_of).schema
        rows = [InputTag(key=k, value=v) for k, v in {**(tags or {}), "mlflow.data.context": context}.items()]
        self.client.log_inputs(run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=rows)])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log(run_id, metrics=metric_rows(metrics, step))

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.client.set_tag(run_id, key, str(value))

    def set_terminated(self, run_id: str, status: str) -> None:  # a Tune trial's end (its callbacks)
        self.client.set_terminated(run_id, status)

    def mark_running(self, run_id: str) -> None:  # a resumed run
        self.client.update_run(run_id, status="RUNNING")

    # -- the model registry ----------------------------------------------------------------
    def register(self, model_uri: str, name: str) -> ModelVersion:
        import mlflow
        with self.pinned():
            return mlflow.register_model(model_uri, name)
