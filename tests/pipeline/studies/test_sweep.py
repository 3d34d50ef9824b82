"""Sweeps on a real local Ray (2 CPUs) with a real SQLite MLflow store."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from ray.tune import Tuner

from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.sweep.driver import validate_sweep
from tests.conftest import kill_tree, ray_cluster

pytestmark = pytest.mark.services

SWEEP = ["sweep=smoke", "trainer.max_epochs=3"]


def _runs(client=None):
    client = client or MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def _trials(runs):
    return [r for r in runs if r.data.tags.get("nmt.stage") == "trial"]


@pytest.mark.slow
def test_sweep_of_four_trials_tracks_stops_and_registers(nmt_home, tiny, capsys):
    assert main(["sweep", *tiny, *SWEEP]) == 0
    out = capsys.readouterr().out
    runs = _runs()
    parents = [r for r in runs if r.data.tags.get("nmt.sweep") == "smoke"]
    assert len(parents) == 1
    parent = parents[0]
    trials = _trials(runs)
    assert len(trials) == 4 and len({r.data.tags["nmt.trial_id"] for r in trials}) == 4
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in trials)
    assert all("val/bleu" in r.data.metrics and "trial.optim.lr" in r.data.params for r in trials)
    stopped = [r for r in trials if r.data.tags.get("nmt.stopped_by") == "asha"]
    assert stopped and all(r.info.status == "KILLED" for r in stopped)
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}
    # the winner went through evaluate and register, nested under the sweep
    best = parent.data.tags["best_trial_run_id"]
    stages = {r.data.tags.get("nmt.stage"): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert stages["evaluate"].data.params["upstream.train_run_id"] == best
    mv = MlflowClient().get_model_version_by_alias("nmt-de-en", "champion")
    assert mv.tags["train_run_id"] == best
    assert "stopped by ASHA" in out and out.count("seq2seq") >= 4
    # sweep insight: fANOVA importance and parallel coordinates under the parent
    arts = {a.path for a in MlflowClient().list_artifacts(parent.info.run_id, N.INSIGHT_DIR)}
    assert {f"{N.INSIGHT_DIR}/{n}" for n in (N.IMPORTANCE_JSON, N.IMPORTANCE_PNG, N.PARALLEL_PNG)} <= arts
    assert N.TAG_INSIGHT not in parent.data.tags


def _wait_for(predicate, timeout, what, poll=0.5):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_killed_driver_resumes_without_rerunning_finished_trials(nmt_home, tiny):
    args = [*tiny, *SWEEP, "trainer.max_epochs=4", "sweep.scheduler.type=fifo", "sweep.max_concurrent_trials=1"]
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "sweep", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        _wait_for(lambda: any(r.info.status == "FINISHED" for r in _trials(_runs())), 240, "a finished trial")
        _wait_for(lambda: any(Tuner.can_restore(str(d)) for d in (nmt_home / ".nmt" / "ray" / "smoke").glob("*")),
                  60, "Tune's saved state")  # <storage>/<sweep name>/<parent run id>
        time.sleep(3)  # Tune saves its experiment state every 2 s in our sweeps
    finally:
        kill_tree(proc)  # the driver and its own Ray, nobody else's (never `ray stop`)
    before = {r.data.tags["nmt.trial_id"]: r for r in _trials(_runs())}
    done = {t: r for t, r in before.items() if r.info.status == "FINISHED"}
    assert done and len(done) < 4
    assert main(["sweep", *args, "sweep.resume=true"]) == 0
    after = {r.data.tags["nmt.trial_id"]: r for r in _trials(_runs())}
    assert len(after) == 4 and set(before) <= set(after)
    client = MlflowClient()
    for t, r in done.items():  # finished trials were not run again
        assert after[t].info.end_time == r.info.end_time
        assert len(client.get_metric_history(r.info.run_id, "val/bleu")) == 4
    assert {r.info.status for r in after.values()} == {"FINISHED"}
    parents = [r for r in _runs() if r.data.tags.get("nmt.sweep") == "smoke"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


@pytest.mark.slow
def test_trial_whose_process_dies_is_retried_from_its_checkpoint(nmt_home, tiny):
    """A real fault, set up from outside: the trial's worker process is killed (SIGKILL)
    once its first checkpoint exists. Tune retries it from that checkpoint
    (sweep.max_failures=1): it finishes, and each epoch is recorded exactly once."""
    args = [*tiny, *SWEEP, "trainer.max_epochs=6", "sweep.num_samples=1", "sweep.scheduler.type=fifo"]
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "sweep", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    sweep_dir = nmt_home / ".nmt" / "ray" / "smoke"
    try:
        _wait_for(lambda: any(sweep_dir.glob("*/*/checkpoint_000000")), 240, "the trial's first checkpoint", poll=0.1)
        killed = [p for p in psutil.Process(proc.pid).children(recursive=True)  # this sweep's, nobody else's
                  if any("ray::ImplicitFunc" in part for part in p.cmdline())]
        assert killed, "no trial process (ray::ImplicitFunc) found to kill"
        for p in killed:
            p.kill()
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert list(sweep_dir.glob("*/*/error.txt")), "Tune recorded no failure of the trial"
    (trial,) = _trials(_runs())
    assert trial.info.status == "FINISHED"
    steps = [m.step for m in MlflowClient().get_metric_history(trial.info.run_id, "val/bleu")]
    assert sorted(steps) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_sweep_on_an_existing_cluster_by_address(nmt_home, tiny, tmp_path):
    """SQLite store: the driver alone writes, whichever node a trial runs on."""
    with ray_cluster(tmp_path / "cluster") as cluster:  # a process of its own, as `nmt sweep` is
        done = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", "sweep", *tiny, *SWEEP, "sweep.num_samples=2",
                               f"sweep.ray_address={cluster.address}"], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trials = _trials(_runs())
    assert len(trials) == 2 and all("val/bleu" in r.data.metrics for r in trials)
    assert {r.data.tags["nmt.node"] for r in trials} <= {"worker_1", "worker_2"}


@pytest.mark.parametrize("override, message", [
    ("+sweep.space.model.hiden_dim={type: choice, values: [8]}", "sweep.space: unknown config key 'model.hiden_dim'"),
    ("sweep.space.optim.lr.type=choice", "unknown config key sweep.space.optim.lr.high; valid keys: type, values"),
    ("sweep.space.model.dropout={type: choice, values: []}", "cannot set 'sweep.space.model.dropout'"),
    ("sweep.num_samples=-1", "sweep.num_samples must be >= 1, got -1"),
    ("sweep.resources.gpu=0.5", "sweep.resources.gpu=0.5 but the Ray cluster has 0 GPUs"),
])
def test_bad_sweep_input_fails_before_any_trial(nmt_home, tiny, override, message, capsys):
    if "gpu" in override:
        pytest.importorskip("torch")
        import torch
        if torch.cuda.is_available():
            pytest.skip("a GPU is present")
    assert main(["sweep", *tiny, *SWEEP, override]) == 2
    assert message in capsys.readouterr().err
    assert _trials(_runs()) == []


def test_space_validation_visits_every_architecture():
    cfg = load_config(["sweep=default"])
    space = validate_sweep(cfg, ["sweep=default"])
    assert set(space["arch"]["values"]) == {"gru", "attention", "transformer"}
    assert {"optim.lr", "model.dropout", "trainer.batch_tokens"} <= set(space)
    bad = ["sweep=default", "+sweep.space.model.hidden_dim={type: choice, values: [8]}"]
    with pytest.raises(ConfigError, match="sweep.space: unknown config key 'model.hidden_dim'"):
        validate_sweep(load_config(bad), bad)  # the transformer has no hidden_dim


def test_empty_choice_list_is_rejected():
    with pytest.raises(ConfigError, match=r"sweep\.space\.model\.hidden_dim\.values: the choice list is empty"):
        load_config(["sweep=rnn", "sweep.space.model.hidden_dim.values=[]"])


@pytest.mark.slow
def test_trial_with_two_devices_trains_through_ray_train_ddp(nmt_home, tiny):
    """trainer.devices=2: each trial is a TorchTrainer of 2 DDP workers (gloo on CPU),
    half a CPU each so that both fit beside the trial's coordinator on 2 cores."""
    args = [*tiny, *SWEEP, "sweep.num_samples=1", "sweep.scheduler.type=fifo", "trainer.devices=2",
            "sweep.resources.cpu=0.5",
            "trainer.precision=32", "trainer.max_epochs=2"]
    assert main(["sweep", *args]) == 0
    (trial,) = _trials(_runs())
    assert trial.info.status == "FINISHED"
    steps = sorted(m.step for m in MlflowClient().get_metric_history(trial.info.run_id, "val/bleu"))
    assert steps == [1, 2]
    parent = next(r for r in _runs() if r.data.tags.get("nmt.sweep") == "smoke")
    assert parent.data.tags["best_trial_run_id"] == trial.info.run_id  # its checkpoint was evaluated
    # Ray Train's per-epoch copies went to the worker's scratch, gone with it (not /tmp, for good)
    left = list(Path(tempfile.gettempdir()).glob(f"lightning_checkpoints-*-name=ddp-{trial.data.tags['nmt.trial_id']}-*"))
    assert left == []
