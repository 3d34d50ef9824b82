"""One nested run per trial, written by the driver alone.

Trials report to Tune; this callback, running in the driver, turns Tune's events into
run-store writes: so concurrent trials never write to the SQLite store at once ("database
is locked") and no metric row is lost. A resumed sweep finds its runs by trial id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import cloudpickle
from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from nmt.components.system import progress
from nmt.components.tracking import names as N
from nmt.components.tracking.system_metrics import ROWS_KEY as SYSTEM_ROWS, from_json
from nmt.components.tracking.retry import retrying
from nmt.components.tracking.store import RunStore, metric_rows
from nmt.components.tracking.uri import error_line
from nmt.pipeline.studies.sweep.space import ARCH_KEY
from nmt.pipeline.studies.sweep.tune_metrics import (EPOCH_METRICS, LAST_REPORT, TUNE_METRIC, TUNE_METRICS,
                                                      find_trial_run)


class RecordingASHA(ASHAScheduler):
    """ASHA that remembers which trials it stopped, so their runs can say so."""

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        self.stopped: set[str] = set()

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        reached_end = (result.get("done") or result.get(LAST_REPORT)
                       or result.get(self._time_attr, 0) >= self._max_t)
        if decision == TrialScheduler.STOP and not reached_end:
            self.stopped.add(trial.trial_id)
        return decision


def resources_label(trial: Trial) -> str:
    """What Ray reserved for the trial, e.g. ``CPU=1 GPU=0.5`` (a DDP trial: the sum)."""
    need = trial.placement_group_factory.required_resources
    return " ".join(f"{k}={v:g}" for k, v in sorted(need.items()) if v)


class MlflowTrialLogger(Callback):
    """Pickled with the Tuner's state and unpickled on resume: its store keeps no client, and
    it finds a trial's run by its tag, so a resumed sweep logs into the same runs."""

    def __init__(self, *, store: RunStore, parent_run_id: str, default_arch: str,
                 scheduler: RecordingASHA | None, base_params: dict[str, str]):
        self.store, self.parent_run_id = store, parent_run_id
        self.default_arch, self.scheduler, self.base_params = default_arch, scheduler, base_params
        self.runs: dict[str, str] = {}
        self.nodes: dict[str, list[str]] = {}
        self.last_step: dict[str, int] = {}  # per trial: the last epoch whose rows were written

    @property
    def trials_write_steps(self) -> bool:
        """Trials write their own step rows to a server; to SQLite only the driver writes."""
        return self.store.is_server

    def __getstate__(self) -> dict:
        return {**self.__dict__, "runs": {}}

    def __setstate__(self, state: dict) -> None:  # states pickled before these fields existed
        if "store" not in state:  # a URI and experiment id, then
            state["store"] = RunStore(state.pop("tracking_uri"), state.pop("experiment_id"),
                                      deadline_s=state.pop("deadline_s", 300.0))
        state.pop("trials_write_steps", None)
        self.__dict__.update({"nodes": {}, "last_step": {}, **state})

    def _call(self, what: str, fn: Any) -> Any:
        """Every write survives a store outage up to the deadline (tracking.outage_deadline_s)."""
        return retrying(fn, what, self.store.deadline_s, self.store.uri)

    def run_id(self, trial: Trial) -> str:
        if trial.trial_id not in self.runs:
            found = self._call("find a trial run", lambda: find_trial_run(self.store, self.parent_run_id,
                                                                          trial.trial_id))
            self.runs[trial.trial_id] = found or self._create(trial)
        return self.runs[trial.trial_id]

    def _create(self, trial: Trial) -> str:
        """The trial's run, nested under the sweep parent (the store adds the parent and owner tags)."""
        params = {**self.base_params, **{f"trial.{k}": str(v) for k, v in trial.config.items()}}
        tags = {N.TAG_TRIAL: trial.trial_id, N.TAG_STAGE: "trial", N.TAG_RESOURCES: resources_label(trial),
                N.TAG_ARCH: str(trial.config.get(ARCH_KEY, self.default_arch))}
        run = self._call("create a trial run", lambda: self.store.start(
            f"trial-{trial.trial_id}", parent=self.parent_run_id, tags=tags))
        self._call("log trial params", lambda: self.store.log(run.run_id, params=params))
        return run.run_id

    def _ended(self, run_id: str) -> bool:
        return self._call("read a trial run", lambda: self.store.get_run(run_id)).status in ("FINISHED", "KILLED")

    def on_trial_start(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        run_id = self.run_id(trial)
        if not self._ended(run_id):  # a restored trial that had finished keeps its record
            self._call("mark a trial RUNNING", lambda: self.store.mark_running(run_id))

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info: Any) -> None:
        step, ts = int(result.get("training_iteration", 0)), int(result.get("timestamp", 0) * 1000)
        keys = EPOCH_METRICS if self.trials_write_steps else TUNE_METRICS
        rows = metric_rows({key: result[tune_key] for tune_key, key in keys.items() if tune_key in result}, step, ts)
        if step <= self.last_step.get(trial.trial_id, 0):  # a retried trial reporting again an epoch it
            rows = []                                        # had reported before it died: kept once
        self.last_step[trial.trial_id] = max(step, self.last_step.get(trial.trial_id, 0))
        tags = {}
        node = result.get("node")
        if node:  # the node it ran on; a retry may move it, so the whole path is kept too
            seen = self.nodes.setdefault(trial.trial_id, [])
            if not seen or seen[-1] != node:
                seen.append(node)
            tags = {N.TAG_NODE: node, N.TAG_NODES: ",".join(seen)}
        system = from_json(result.get(SYSTEM_ROWS))  # tracking.system_metrics: sampled in the trial
        run_id = self.run_id(trial)
        self._call("log a trial's metrics", lambda: self.store.log(run_id, metrics=[*rows, *system], tags=tags))

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        run_id = self.run_id(trial)
        if self._ended(run_id):
            return
        status = "FINISHED"
        if self.scheduler is not None and trial.trial_id in self.scheduler.stopped:
            self._call("tag an ASHA stop", lambda: self.store.set_tag(run_id, N.TAG_STOPPED, "asha"))
            status = "KILLED"
        self._call("end a trial run", lambda: self.store.set_terminated(run_id, status))

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        run_id = self.run_id(trial)
        why = trial_error(trial)
        if why:
            self._call("tag a trial's error", lambda: self.store.set_tag(run_id, N.TAG_ERROR, why))
        self._call("end a trial run", lambda: self.store.set_terminated(run_id, "FAILED"))


def trial_error(trial: Trial) -> str | None:
    """The trial's error in one line: the trainable's own exception (from the pickle Tune
    writes beside the trial, not Ray's wrapper with its traceback), else the last line of
    Tune's error text; None when Tune kept neither."""
    try:
        pickled, text = trial.pickled_error_file, trial.error_file
        if pickled and Path(pickled).exists():
            err = cloudpickle.loads(Path(pickled).read_bytes())
            return error_line(getattr(err, "cause", None) or err)
        if text and Path(text).exists():
            return next((line.strip()[:500] for line in reversed(Path(text).read_text().splitlines()) if line.strip()),
                        None)
    except Exception:  # noqa: BLE001 - an unreadable error file must not hide the FAILED status
        pass
    return None


class TrialBar(Callback):
    """On a terminal, a bar of the sweep's finished trials (rate, ETA, the best val BLEU so
    far) in place of Tune's status tables; nothing elsewhere. Pickled with the Tuner's state:
    the bar itself is not, and a resumed sweep draws a new one."""

    def __init__(self, total: int):
        self.total, self.best, self._bar = total, None, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_bar": None}

    def _finished(self, trial: Trial) -> None:
        if self._bar is None:
            self._bar = progress.open_bar("sweep: trials", total=self.total, unit="trial")
            if self._bar is None:
                return
        bleu = (trial.last_result or {}).get(TUNE_METRIC)
        if bleu is not None and (self.best is None or bleu > self.best):
            self.best = bleu
        if self.best is not None:
            self._bar.set_postfix_str(f"best val BLEU {self.best:.2f}", refresh=False)
        self._bar.update(1)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._finished(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._finished(trial)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        if self._bar is not None:
            self._bar.close()

