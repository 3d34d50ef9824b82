"""Faults of the team path, each judged by "nothing lost": no run left RUNNING, one metric
row per step and per epoch that a run or trial ran, and no trial run twice in MLflow.

Real parts only: the tracking server is stopped and started again, PostgreSQL is
restarted, and the sweep driver is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from mlflow.tracking import MlflowClient

from nmt.components.system.procs import owner_is_dead
from nmt.components.system.scratch import scratch_root
from nmt.pipeline.cli import main
from nmt.pipeline.services import server
from tests.conftest import TINY, kill_tree, metric_steps, assert_no_run_running, assert_nothing_lost, module_home, tracking_server

pytestmark = [pytest.mark.slow, pytest.mark.services]

# ~35 s of training on 2 cores: 9 epochs of 3,000 pairs, a metric row every step
LONG_TRAIN = ["data.train_limit=3000", "data.val_limit=40", "data.test_limit=10", "data.vocab_size=300",
              "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "trainer.max_epochs=9",
              "trainer.max_minutes=null", "trainer.batch_tokens=1024", "trainer.val_bleu_limit=40",
              "trainer.log_every_n_steps=1", "trainer.num_threads=1", "trainer.precision=32", "trainer.patience=20"]
SWEEP = [*TINY, "sweep=smoke", "sweep.num_samples=2", "sweep.scheduler.type=fifo", "trainer.max_epochs=4",
         "data.train_limit=1500", "sweep.max_failures=2"]
PG_VERSION = sorted(os.listdir("/etc/postgresql"))[0] if os.path.isdir("/etc/postgresql") else "15"


@pytest.fixture(scope="module")
def served(tmp_path_factory, multi30k_dir, postgres):
    state = tmp_path_factory.mktemp("fault-server")
    with tracking_server(state) as (cfg, url):
        with module_home(tmp_path_factory, multi30k_dir, "fault-home", uri=url) as (home, _):
            yield cfg, home


def _client() -> MlflowClient:
    return MlflowClient()


def _runs(**tags: str) -> list:
    c = _client()
    exp = c.get_experiment_by_name("nmt")
    if exp is None:
        return []
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if all(r.data.tags.get(k.replace("_", ".")) == v for k, v in tags.items())]


def _wait(predicate, timeout: float, what: str, stop: threading.Event | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and not (stop and stop.is_set()):
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the store may be the thing that is down
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _nmt(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=os.environ.copy())


@contextlib.contextmanager
def _running(*args: str) -> Iterator[subprocess.Popen]:
    """``nmt <args>`` in its own process group, killed (SIGKILL) if still running at the end."""
    proc = _nmt(*args)
    try:
        yield proc
    finally:
        kill_tree(proc)


def _training_rows() -> int:
    runs = _runs(nmt_stage="train")
    return max((len(metric_steps(r.info.run_id, "train/loss_step")) for r in runs if r.info.status == "RUNNING"), default=0)


def test_server_down_20_s_while_training_logs_to_it(served):
    cfg, _ = served
    proc = _nmt("train", *LONG_TRAIN)
    try:
        _wait(lambda: _training_rows() > 20, 120, "training to log steps")
        server.down(cfg)
        time.sleep(20)
        assert proc.poll() is None, "training died while the server was down"
        server.up(cfg)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out[-3000:]
    assert "tracking store unreachable" in out  # the writer saw the outage, and rode it out
    (run,) = [r for r in _runs(nmt_stage="train") if r.data.params.get("trainer.seed") == "42"]
    assert_nothing_lost(run, epochs=9)
    assert_no_run_running()


def test_server_down_past_the_deadline_fails_clearly_and_resumes(served):
    cfg, home = served
    # 5 epochs, not 9: the outage comes after the first, and the deadline (8 s) passes within
    # the next ones; the rerun that resumes from the checkpoint then trains only what is left
    args = [*LONG_TRAIN, "trainer.max_epochs=5", "trainer.seed=3", "tracking.outage_deadline_s=8"]
    try:
        with _running("train", *args) as proc:
            _wait(lambda: any(metric_steps(r.info.run_id, "val/bleu") for r in _runs(nmt_stage="train")
                              if r.info.status == "RUNNING"), 120, "a first epoch")
            server.down(cfg)
            out, _ = proc.communicate(timeout=180)
    finally:
        server.up(cfg)
    assert proc.returncode == 2, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert last.startswith("nmt: error: the tracking store") and "did not answer for 8 s" in last
    assert "its checkpoint is kept at" in last and "rerun the same command" in last
    (kept,) = list((home / ".nmt" / "checkpoints").glob("*/last.ckpt"))  # the checkpoint was kept
    resume_step = torch.load(kept, map_location="cpu", weights_only=True)["global_step"]
    assert main(["train", *args]) == 0  # the rerun resumes from it, and ends the orphan
    runs = [r for r in _runs(nmt_stage="train") if r.data.params.get("trainer.seed") == "3"]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert len(runs) == 2 and len(failed) == 1 and failed[0].data.tags.get("nmt.recovered")
    (done,) = [r for r in runs if r.info.status == "FINISHED"]
    assert done.data.tags.get("resumed_from")
    # the rows: the failed run keeps those the server acknowledged (0..a, contiguous); the
    # resumed run goes on from the checkpoint's step without a gap to its end. Lost (README):
    # the failed run's rows after a and before the checkpoint, held in its buffer when it stopped
    before = metric_steps(failed[0].info.run_id, "train/loss_step")
    after = metric_steps(done.info.run_id, "train/loss_step")
    assert sorted(before) == list(range(len(before))) and len(before) > 0
    assert sorted(after) == list(range(resume_step, resume_step + len(after)))
    assert resume_step + len(after) == int(done.data.metrics["steps"])
    assert_no_run_running()


def _pg(action: str) -> None:
    """Stop (fast: open connections are cut, as in a crash or failover) or start the machine's PostgreSQL."""
    mode = ["-m", "fast"] if action == "stop" else []
    done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action, *mode],
                          capture_output=True, text=True, timeout=60)
    already = "already running" in done.stdout + done.stderr or "is not running" in done.stdout + done.stderr
    assert done.returncode == 0 or already, done.stderr


def test_postgres_restarted_in_the_middle_of_a_sweep(served):
    done, restarted = threading.Event(), threading.Event()

    def this_sweep_logged_an_epoch() -> bool:  # its own trials, not a later test's
        parents = {p.info.run_id for p in _runs(nmt_sweep="pg-restart")}
        return any(metric_steps(r.info.run_id, "val/bleu") for r in _runs(nmt_stage="trial")
                   if r.data.tags.get("mlflow.parentRunId") in parents)

    def restart_when_trials_log():
        try:  # stopped when the test ends: never a restart in the middle of another test
            _wait(this_sweep_logged_an_epoch, 180, "a trial epoch", stop=done)
        except AssertionError:
            return
        _pg("stop")
        time.sleep(5)
        _pg("start")
        restarted.set()
    restarter = threading.Thread(target=restart_when_trials_log, daemon=True)
    restarter.start()
    try:
        assert main(["sweep", *SWEEP, "sweep.name=pg-restart"]) == 0
    finally:
        done.set()
        restarter.join(timeout=60)
        _pg("start")  # idempotent: PostgreSQL is up whatever happened
    assert restarted.is_set(), "PostgreSQL was not restarted while the sweep ran"
    parent = _runs(nmt_sweep="pg-restart")[0]
    trials = [r for r in _runs(nmt_stage="trial") if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and len({r.data.tags["nmt.trial_id"] for r in trials}) == 2
    for run in trials:
        assert_nothing_lost(run, epochs=4)
    assert parent.info.status == "FINISHED" and parent.data.tags.get("best_trial_run_id")
    assert_no_run_running()


def test_driver_killed_then_resumed_on_the_server(served, tmp_path, monkeypatch):
    cfg, home = served
    args = [*SWEEP, "sweep.name=killed", "sweep.max_concurrent_trials=1"]
    # this test's own temp folder (its scratch root), for the driver, its Ray's workers and the resume;
    # Ray's own session folder stays where it is (a socket's path has a length limit)
    monkeypatch.setenv("RAY_TMPDIR", os.environ.get("RAY_TMPDIR", tempfile.gettempdir()))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # killed (SIGKILL) with its own Ray when the block ends (its process tree; never `ray stop`)
    with _running("sweep", *args):
        _wait(lambda: any(r.info.status == "FINISHED" for r in _runs(nmt_stage="trial")
                          if r.data.tags.get("mlflow.parentRunId") in {p.info.run_id for p in _runs(nmt_sweep="killed")}),
              240, "a finished trial")
        time.sleep(3)  # Tune saves its experiment state every 2 s
    assert main(["sweep", *args, "sweep.resume=true"]) == 0
    (parent,) = _runs(nmt_sweep="killed")
    trials = [r for r in _runs(nmt_stage="trial") if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(trials) == 2 and len({r.data.tags["nmt.trial_id"] for r in trials}) == 2  # no duplicate
    for run in trials:
        assert_nothing_lost(run, epochs=4)
    assert parent.info.status == "FINISHED"
    assert_no_run_running()
    # whatever the killed driver's trials left (kill -9) the resumed sweep swept; nothing else is there
    dead = [d for d in scratch_root().iterdir() if (d / "owner").exists() and owner_is_dead((d / "owner").read_text())]
    assert dead == [], f"scratch of killed processes left: {dead}"
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("torchinductor_")] == [scratch_root().name]
