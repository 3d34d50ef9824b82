"""Sweeps on a real multi-node Ray (``nmt cluster``: a head and two 1-CPU worker raylets on
127.0.0.2) tracked on a real server: trials spread over the nodes, a node killed with
SIGKILL mid-sweep, and the bad inputs that must fail before any trial."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from nmt.pipeline.services import cluster
from tests.conftest import (TINY, assert_no_run_running, assert_nothing_lost, free_port, module_home, ray_cluster,
                            tracking_server)

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def ray_on_server(tmp_path_factory, multi30k_dir, postgres):
    with tracking_server(tmp_path_factory.mktemp("cluster-server")) as (_, url):
        with module_home(tmp_path_factory, multi30k_dir, "cluster-home", uri=url) as (home, _):
            with ray_cluster(tmp_path_factory.mktemp("cluster")) as cfg:
                yield cfg, home


def _trials(parent_name: str) -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    parents = {r.info.run_id for r in runs if r.data.tags.get("nmt.sweep") == parent_name}
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") in parents
            and r.data.tags.get("nmt.stage") == "trial"]


def test_cluster_status_and_a_second_head_on_its_port(ray_on_server, capsys):
    cfg, _ = ray_on_server
    assert [n.name for n in cluster.nodes(cfg)] == ["head", "worker_1", "worker_2"]
    assert main(["cluster", "status", f"cluster.port={cfg.port}", f"cluster.state_dir={cfg.state_dir}"]) == 0
    assert "3 nodes at 127.0.0.2" in capsys.readouterr().out
    assert main(["cluster", "up", f"cluster.port={cfg.port}", f"cluster.state_dir={cfg.state_dir}"]) == 2
    assert "already runs" in capsys.readouterr().err


def test_trials_spread_over_nodes_and_survive_a_killed_node(ray_on_server, tmp_path):
    """Two trials start on the two workers; worker_2's raylet is killed with SIGKILL after its
    trial checkpointed an epoch; the trial resumes on worker_1 from that checkpoint."""
    cfg, _ = ray_on_server
    storage = tmp_path / "shared-storage"
    killed: list[str] = []

    def kill_worker_2_after_an_epoch():
        end = time.monotonic() + 240
        while time.monotonic() < end and not killed:
            for run in _trials("cluster-kill"):
                on_2 = run.data.tags.get("nmt.node") == "worker_2"
                if on_2 and MlflowClient().get_metric_history(run.info.run_id, "val/bleu"):
                    cluster.kill_node(cfg, "worker_2")
                    killed.append(run.data.tags["nmt.trial_id"])
                    return
            time.sleep(0.3)
    killer = threading.Thread(target=kill_worker_2_after_an_epoch, daemon=True)
    killer.start()
    args = [*TINY, "sweep=smoke", "sweep.name=cluster-kill", "sweep.num_samples=2", "sweep.scheduler.type=fifo",
            "data.train_limit=1500", "trainer.max_epochs=4", "sweep.max_failures=3",
            f"sweep.ray_address={cfg.address}", f"sweep.storage_path={storage}"]
    # the sweep in a process of its own, as `nmt sweep` is (Ray keeps per-process state)
    done = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", "sweep", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    killer.join(timeout=5)
    assert killed, "worker_2 was never killed: no trial of it reported an epoch"
    trials = {r.data.tags["nmt.trial_id"]: r for r in _trials("cluster-kill")}
    assert len(trials) == 2  # no trial duplicated by its retry
    moved = trials[killed[0]]
    assert moved.data.tags["nmt.nodes"] == "worker_2,worker_1"  # resumed on the surviving node
    (other,) = [r for t, r in trials.items() if t != killed[0]]
    assert other.data.tags["nmt.nodes"] == "worker_1"  # the two trials had started on different nodes
    for run in trials.values():
        assert_nothing_lost(run, epochs=4)
    assert list(storage.glob("cluster-kill/*/*/checkpoint_*/checkpoint.ckpt"))  # on the shared storage
    assert MlflowClient().get_model_version_by_alias("nmt-de-en", "champion").tags["train_run_id"] in \
        {r.info.run_id for r in trials.values()}
    assert_no_run_running()


def test_a_ray_address_where_nothing_listens(ray_on_server, capsys):
    assert main(["sweep", *TINY, "sweep=smoke", "sweep.name=nowhere", f"sweep.ray_address=127.0.0.2:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert "no Ray cluster answers there" in err and "nmt cluster up" in err
    assert _trials("nowhere") == []


def test_a_storage_path_that_is_not_writable(ray_on_server, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["sweep", *TINY, "sweep=smoke", "sweep.name=unwritable",
                 f"sweep.ray_address={ray_on_server[0].address}", f"sweep.storage_path={blocker}/ray"]) == 2
    err = capsys.readouterr().err
    assert f"sweep.storage_path={blocker}/ray is not writable" in err
    assert _trials("unwritable") == []
