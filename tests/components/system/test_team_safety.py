"""On a machine several people share: nothing deleted that is not ours, no process signalled
that is not ours, no code run from a checkpoint, no secret in a printed URI or a daemon's
environment. Real processes, real files, a real SQLite store; no service needed."""

from __future__ import annotations

import os
import pickle
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from nmt.components.training.lit_module import average_checkpoints
from nmt.components.system.paths import redact
from nmt.components.system.procs import ProcessId, boot_id, owner, owner_is_dead
from nmt.components.tracking.store import RunStore
from nmt.components.tracking.uri import resolve_tracking_uri
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.services import cluster, server
from nmt.pipeline.services.daemons import daemon_env
from nmt.pipeline.studies.sweep.trainable import _completed
from nmt.pipeline.trained import trained_model
from tests.conftest import TINY, TINY_NETS, free_port

ROOT = Path(__file__).resolve().parents[3]


def _sleeper(*argv: str) -> subprocess.Popen:
    """A process of the test's own, in its own session (as a daemon would be)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *argv], start_new_session=True)


# ------------------------------------------------------------------ nothing deleted that is not ours

@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../../etc", "x/.."])
def test_a_sweep_name_that_leaves_its_folder_is_refused_before_anything(nmt_home, name, capsys):
    keep = nmt_home / ".nmt" / "server" / "artifacts" / "1" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("a run's artifact")
    assert main(["sweep", *TINY, "sweep=smoke", f"sweep.name='{name}'"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    why = "sweep.name is empty; give a value" if name == "" else f"sweep.name={name!r} is not a usable folder name"
    assert len(err) == 1 and why in err[0]
    assert keep.read_text() == "a run's artifact"
    assert not (nmt_home / "mlflow.db").exists()  # refused before any run


def test_make_clean_keeps_the_tracking_server_state(tmp_path):
    (tmp_path / ".nmt" / "server" / "artifacts" / "1").mkdir(parents=True)
    (tmp_path / ".nmt" / "server" / "artifacts" / "1" / "best.ckpt").write_text("w")
    (tmp_path / ".nmt" / "checkpoints" / "k").mkdir(parents=True)
    (tmp_path / "mlflow.db").write_text("")
    done = subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "clean"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "MULTI30K_DIR": ""})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".nmt" / "server" / "artifacts" / "1" / "best.ckpt").read_text() == "w"
    assert not (tmp_path / ".nmt" / "checkpoints").exists() and not (tmp_path / "mlflow.db").exists()


# ------------------------------------------------------------------ no process signalled that is not ours

def test_a_stale_server_pid_naming_another_process_is_left_alone(tmp_path, capsys):
    other = _sleeper("--not-mlflow")
    try:
        time.sleep(0.3)
        args = [f"server.state_dir={tmp_path}", f"server.port={free_port()}"]
        cfg = load_config(args).server
        for stale in (str(other.pid),  # an old bare pid file
                      '{"pid": %d, "start": 1.0, "argv": ["mlflow", "server"]}' % other.pid):
            (tmp_path / "server.pid").write_text(stale)
            assert server.status(cfg).pid is None
            assert main(["server", "down", *args]) == 0
            assert capsys.readouterr().out.strip() == "no server was running"
            assert other.poll() is None, "nmt server down signalled a process it did not start"
        ProcessId.of(other.pid).save(tmp_path / "server.pid")  # a record that still matches: stopped
        assert server.down(cfg) is True
        assert other.wait(timeout=30) is not None
    finally:
        other.kill()


def test_cluster_down_compares_whole_arguments_not_substrings():
    port = free_port("127.0.0.2")
    cfg = load_config([f"cluster.port={port}"]).cluster
    bystander = _sleeper(f"--port={port}1", "ray", f"--note=127.0.0.2:{port}")
    try:
        time.sleep(0.3)
        assert cluster.down(cfg) == 0
        assert bystander.poll() is None, "nmt cluster down killed a process whose arguments merely contain the port"
    finally:
        bystander.kill()


def test_a_run_owner_is_host_boot_pid_and_start_time():
    me = ProcessId.of(os.getpid())
    host = socket.gethostname()
    assert owner() == f"{host}|{boot_id()}|{me.pid}|{me.start:.2f}" and not owner_is_dead(owner())
    assert owner_is_dead(f"{host}|{boot_id()}|{me.pid}|{me.start - 100:.2f}")  # pid reused by us: the owner died
    assert owner_is_dead(f"{host}|another-boot|{me.pid}|{me.start:.2f}")       # rebooted since
    assert not owner_is_dead(f"elsewhere|{boot_id()}|{me.pid}|{me.start - 100:.2f}")  # another machine's
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert owner_is_dead(f"{host}|{boot_id()}|{gone.pid}|{time.time():.2f}")


def test_a_process_s_identity_survives_a_stepped_wall_clock(monkeypatch):
    """psutil's create_time moves with the wall clock (it adds btime, computed from it): after
    a clock step a server just started must still read as ours, and an owner still alive."""
    import psutil
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        recorded, tag = ProcessId.of(child.pid), owner()
        real = psutil.Process.create_time
        monkeypatch.setattr(psutil.Process, "create_time", lambda self: real(self) + 2.0)  # the clock stepped 2 s
        assert recorded.process() is not None and recorded.process().pid == child.pid
        assert not owner_is_dead(tag)
        assert ProcessId(child.pid, recorded.start + 0.5, recorded.argv).process() is None  # another start
        # a start recorded as seconds since the epoch (an older record) is still read, by the wall clock
        epoch = ProcessId(child.pid, real(psutil.Process(child.pid)), recorded.argv)
        monkeypatch.setattr(psutil.Process, "create_time", real)
        assert epoch.process() is not None
    finally:
        child.kill()
        child.wait()
    assert recorded.process() is None


def test_a_process_recorded_the_moment_popen_returns_is_recognised(tmp_path):
    """Popen returns once exec began, before the kernel has laid out the new program's
    arguments: a record taken then (as `nmt server up` does) held an empty command line, and
    the server it named was never ours to stop (CI left servers running, their ports taken)."""
    script = tmp_path / "daemon"
    script.write_text("#!/bin/sh\nsleep 30\n")  # a script, as the mlflow entry point is
    script.chmod(0o700)
    for _ in range(20):
        proc = subprocess.Popen([str(script), "--port", "5000"])
        try:
            recorded = ProcessId.of(proc.pid)
            assert recorded.argv[-3:] == (str(script), "--port", "5000")
            assert recorded.process() is not None
        finally:
            proc.kill()
            proc.wait()


def test_orphan_recovery_ends_the_dead_owner_s_run_only(nmt_home):
    store = RunStore.open(None, "nmt")
    exp = store.experiment_id
    client = MlflowClient()
    me = ProcessId.of(os.getpid())
    host = socket.gethostname()
    live = client.create_run(exp, tags={"nmt.owner": owner()}).info.run_id
    reused = client.create_run(exp, tags={"nmt.owner": f"{host}|{boot_id()}|{me.pid}|{me.start - 50:.2f}"}).info.run_id
    assert store.recover_orphans() == [reused]
    assert client.get_run(live).info.status == "RUNNING" and client.get_run(reused).info.status == "FAILED"
    client.set_terminated(live)


# ------------------------------------------------------------------ no code run from a checkpoint

class _Payload:
    """Unpickling this runs code: what a doctored checkpoint on shared storage would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def doctored(tmp_path: Path) -> tuple[Path, Path]:
    marker, ckpt = tmp_path / "code-ran", tmp_path / "evil.ckpt"
    torch.save({"epoch": 0, "state_dict": {}, "hook": _Payload(marker)}, ckpt)
    return ckpt, marker


@pytest.mark.parametrize("load", ["averaging", "tune checkpoint", "train run checkpoint"])
def test_checkpoints_are_read_weights_only(doctored, load, tmp_path, nmt_home):
    ckpt, marker = doctored
    if load == "train run checkpoint":  # a train run whose artifact someone replaced
        exp = RunStore.open(None, "nmt").experiment_id
        client = MlflowClient()
        run_id = client.create_run(exp).info.run_id
        best = tmp_path / "best.ckpt"
        best.write_bytes(ckpt.read_bytes())
        client.log_artifact(run_id, str(best), "checkpoints")
        from nmt.components.models.base import Vocabulary
        from nmt.components.models.factory import ModelSpec, parse_model, save_spec
        spec = ModelSpec(parse_model(TINY_NETS["gru"]), Vocabulary(23, 29, 0, 1, 2, False))
        client.log_artifact(run_id, str(save_spec(spec, tmp_path / "model_config.json")))
        client.set_terminated(run_id)
    with pytest.raises(pickle.UnpicklingError):
        if load == "averaging":
            average_checkpoints([ckpt, ckpt], tmp_path / "avg.ckpt")
        elif load == "tune checkpoint":
            _completed(ckpt, max_epochs=1)
        else:
            trained_model(RunStore.open(None, "nmt"), run_id)
    assert not marker.exists()


def test_no_torch_load_or_lightning_resume_without_weights_only():
    import ast
    found = []
    for path in sorted((ROOT / "nmt").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            kw = {k.arg: k.value for k in node.keywords}
            loads = name == "load" and "torch" in ast.unparse(node.func)
            if (loads or "ckpt_path" in kw) and not (isinstance(kw.get("weights_only"), ast.Constant)
                                                      and kw["weights_only"].value is True):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, "checkpoint loads without weights_only=True: " + ", ".join(found)


# ------------------------------------------------------------------ secrets

def test_printed_uris_lose_their_credentials():
    assert redact("see http://alice:s3cr%40t@host:5000/api and s3://k:v@bucket/x") == \
        "see http://***@host:5000/api and s3://***@bucket/x"
    assert redact("postgresql+psycopg2://role@127.0.0.1/db") == "postgresql+psycopg2://***@127.0.0.1/db"


def test_a_tracking_uri_with_credentials_is_split(nmt_home, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    dead = free_port()
    assert resolve_tracking_uri(f"http://bob:pa%25ss@127.0.0.1:{dead}") == f"http://127.0.0.1:{dead}"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("bob", "pa%ss")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://bob:sentinel-pw@127.0.0.1:{dead}")
    assert main(["run", *TINY]) == 2
    err = capsys.readouterr().err
    assert "sentinel-pw" not in err and f"http://127.0.0.1:{dead} does not answer" in err


def test_daemons_get_an_allowlisted_environment():
    source = {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "AWS_SECRET_ACCESS_KEY": "k", "GITHUB_TOKEN": "t",
              "MLFLOW_TRACKING_PASSWORD": "p", "RAY_health_check_period_ms": "1000"}
    assert daemon_env(source=source) == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C"}
    assert daemon_env(prefixes=("RAY_",), source=source, X="1") == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C",
                                                                     "RAY_health_check_period_ms": "1000", "X": "1"}


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_a_server_beyond_loopback_without_auth_is_refused(tmp_path, host, capsys):
    assert main(["server", "up", f"server.host='{host}'", f"server.state_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"server.host={host} exposes the server" in err[0] and "server.auth=true" in err[0]
    assert not (tmp_path / "server.pid").exists()


def test_private_files_are_0600(tmp_path):
    from nmt.components.system.paths import private_log, write_private
    old = tmp_path / "server.log"
    old.write_text("from before")
    old.chmod(0o644)
    with private_log(old) as f:
        f.write(b"more")
    for path in (old, write_private(tmp_path / "state.json", "{}")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ------------------------------------------------------------------ one checkpoint folder, one owner

IDENTICAL = ["data.train_limit=1500", "data.val_limit=20", "data.test_limit=10", "data.vocab_size=300", "model=gru",
             "model.emb_dim=24", "model.hidden_dim=40", "trainer.max_epochs=8", "trainer.max_minutes=null",
             "trainer.batch_tokens=1024", "trainer.val_bleu_limit=20", "trainer.num_threads=1",
             "trainer.precision=32"]


@pytest.mark.slow
def test_a_second_identical_run_waits_for_the_owner_and_reuses_its_result(nmt_home, caplog):
    """Two identical `nmt train`s share a checkpoint folder: the second neither resumes from
    the first's last.ckpt nor deletes it; it waits, naming the owner, then reuses its run."""
    first = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "train", *IDENTICAL], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        end = time.monotonic() + 300
        while not [p for p in (nmt_home / ".nmt" / "checkpoints").glob("*.lock") if "run " in p.read_text()]:
            assert first.poll() is None and time.monotonic() < end, "the first run never took its checkpoint folder"
            time.sleep(0.5)
        with caplog.at_level("WARNING", logger="nmt"):
            assert main(["train", *IDENTICAL]) == 0
        out, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out[-3000:]
    waited = [r.getMessage() for r in caplog.records if "is in use by" in r.getMessage()]
    assert len(waited) == 1 and f"pid {first.pid} " in waited[0]
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    runs = client.search_runs([exp], "tags.`nmt.stage` = 'train'")
    assert [r.info.status for r in runs] == ["FINISHED"]  # one run trained; the second reused it
    assert "resumed_from" not in runs[0].data.tags
