"""The team path with auth on: a server whose admin and database passwords are sentinels, a
loopback Ray cluster, and sweeps on both. Two sweeps of one name both finish and register
their winner; no secret shows in ``ps``, in a daemon's environment, in any file under the
state folders, the project home, the sweep storage or Ray's session logs, or in MLflow's
params and tags."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psutil
import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.services import cluster, server
from tests.conftest import TINY, assert_no_run_running, module_home, ray_cluster, tracking_server

pytestmark = [pytest.mark.slow, pytest.mark.services]

ADMIN = "sentinel-admin-Zq%9@x"
DB = "sentinel-db-Kp@7%w"
CLOUD = "sentinel-cloud-key-7731"
SECRETS = (ADMIN, DB, CLOUD)
SWEEP = [*TINY, "sweep=smoke", "sweep.num_samples=1", "sweep.scheduler.type=fifo", "trainer.max_epochs=2",
         "data.train_limit=600"]


@pytest.fixture(scope="module")
def team(tmp_path_factory, multi30k_dir, postgres):
    with pytest.MonkeyPatch.context() as mp:
        for var, value in (("NMT_SERVER_ADMIN_PASSWORD", ADMIN), ("NMT_SERVER_DB_PASSWORD", DB),
                           ("AWS_SECRET_ACCESS_KEY", CLOUD)):
            mp.setenv(var, value)
        server_state, cluster_state = tmp_path_factory.mktemp("team-server"), tmp_path_factory.mktemp("team-cluster")
        with tracking_server(server_state, "server.auth=true") as (scfg, url):
            mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN)
            with module_home(tmp_path_factory, multi30k_dir, "team-home", uri=url) as (home, _):
                with ray_cluster(cluster_state) as ccfg:
                    yield {"server": scfg, "cluster": ccfg, "home": home,
                           "dirs": [server_state, cluster_state, home, _session_dir(ccfg)]}


def _session_dir(cfg) -> Path:
    """This cluster's Ray session folder (its logs), read from its raylet's command line."""
    for p in cluster._processes(cfg):
        for arg in p.cmdline():
            if arg.startswith("--session_dir="):
                return Path(arg.split("=", 1)[1])
    raise AssertionError("no raylet of the cluster names its session folder")


def _sweep(team, storage: Path, *extra: str) -> subprocess.Popen:
    args = [*SWEEP, f"sweep.ray_address={team['cluster'].address}", f"sweep.storage_path={storage}", *extra]
    return subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "sweep", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=os.environ.copy())


def _runs() -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    return client.search_runs([exp.experiment_id], max_results=1000) if exp else []


def _children(parent: str, stage: str) -> list:
    return [r for r in _runs()
            if r.data.tags.get("mlflow.parentRunId") == parent and r.data.tags.get("nmt.stage") == stage]


def test_two_sweeps_of_one_name_both_finish_and_register(team, tmp_path):
    storage = tmp_path / "storage"
    first = _sweep(team, storage, "sweep.name=twin")
    end = time.monotonic() + 400
    while not any(MlflowClient().get_metric_history(r.info.run_id, "val/bleu") for r in _runs()
                  if r.data.tags.get("nmt.stage") == "trial"):
        assert first.poll() is None and time.monotonic() < end, first.stdout.read()[-3000:] if first.poll() else "slow"
        time.sleep(1)
    second = _sweep(team, storage, "sweep.name=twin")  # the first still trains
    outs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    parents = [r for r in _runs() if r.data.tags.get("nmt.sweep") == "twin"]
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    folders = {p.data.tags["nmt.sweep_dir"] for p in parents}
    assert folders == {f"{storage}/twin/{p.info.run_id}" for p in parents}
    for p in parents:
        assert list(Path(p.data.tags["nmt.sweep_dir"]).glob("*/checkpoint_*/checkpoint.ckpt"))
        (reg,) = _children(p.info.run_id, "register")
        assert reg.info.status == "FINISHED" and reg.data.params["registered.version"]
    assert_no_run_running()


def _sample_ps(stop: threading.Event, seen: list[str]) -> None:
    while not stop.is_set():
        for p in psutil.process_iter(["cmdline"]):
            seen.append(" ".join(p.info["cmdline"] or []))
        time.sleep(0.5)


def _forms(secret: str) -> list[bytes]:
    return [secret.encode(), quote(secret, safe="").encode()]


def _files_with_secrets(folders: list[Path]) -> list[str]:
    found = []
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            except OSError:
                continue
            found += [f"{path}: {s!r}" for s in SECRETS if any(f in data for f in _forms(s))]
    return found


def test_no_secret_in_ps_daemon_environments_logs_files_or_mlflow(team, tmp_path):
    storage = tmp_path / "storage"
    stop, seen = threading.Event(), []
    sampler = threading.Thread(target=_sample_ps, args=(stop, seen), daemon=True)
    sampler.start()
    try:
        sweep = _sweep(team, storage, "sweep.name=scan")
        out, _ = sweep.communicate(timeout=900)
    finally:
        stop.set()
        sampler.join(timeout=10)
    assert sweep.returncode == 0, out[-3000:]
    assert not [s for s in SECRETS if s in out], "a secret in the sweep's output"
    leaks = {line[:300] for line in seen for s in SECRETS for f in _forms(s) if f.decode() in line}
    assert len(seen) > 100 and not leaks, f"a secret in ps: {leaks}"
    # the daemons get an allowlisted environment: no cloud key of the caller's; the server alone
    # gets its own two passwords (a process environment only its user can read, never argv)
    mlflow_server = psutil.Process(server.status(team["server"]).pid)
    for proc, allowed in [(mlflow_server, (ADMIN, DB)), *((p, ()) for p in cluster._processes(team["cluster"]))]:
        for p in (proc, *proc.children(recursive=True)):
            env = "\n".join(f"{k}={v}" for k, v in p.environ().items())
            leaked = [s for s in SECRETS if s in env and s not in allowed]
            assert not leaked, f"{leaked} in the environment of {p.cmdline()[:3]}"
    assert _files_with_secrets([*team["dirs"], storage]) == []
    client = MlflowClient()
    for run in _runs():
        text = repr(run.data.params) + repr(run.data.tags)
        assert not [s for s in SECRETS if s in text], f"a secret in the params or tags of run {run.info.run_id}"
    for mv in client.search_model_versions("name = 'nmt-de-en'"):
        assert not [s for s in SECRETS if s in repr(mv.tags)]
