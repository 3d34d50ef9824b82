"""``nmt cluster down`` stops only what ``up`` recorded: pid, start time and the whole argv,
compared whole. A process that merely names the same port (another user's Ray head on another
address), or our own address without a record, is not ours. Real processes, no Ray needed."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from nmt.components.system.procs import ProcessId
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.services import cluster
from tests.conftest import free_port

CHILD = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
         "time.sleep(300)")


def _proc(*argv: str, code: str = "import time; time.sleep(300)") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *argv], start_new_session=True)


@pytest.fixture
def cfg(tmp_path):
    return load_config([f"cluster.port={free_port('127.0.0.2')}", f"cluster.state_dir={tmp_path}"]).cluster


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        p.kill()
        p.wait()


def test_another_head_on_our_port_is_not_ours(cfg, procs, capsys, tmp_path):
    """Another Ray head's GCS on our port of another address, and one of our address that
    ``up`` never recorded: ``down`` leaves both running."""
    procs += [_proc(f"--gcs_server_port={cfg.port}", "--node-ip-address=10.0.0.5"),
              _proc(f"--gcs_server_port={cfg.port}", f"--node-ip-address={cfg.host}")]
    time.sleep(0.3)
    assert main(["cluster", "down", f"cluster.port={cfg.port}", f"cluster.state_dir={tmp_path}"]) == 0
    assert capsys.readouterr().out.strip() == "no cluster was running"
    assert [p.poll() for p in procs] == [None, None], "nmt cluster down stopped a process it did not start"


def test_the_gcs_of_another_address_is_not_recorded_as_ours(cfg, procs):
    procs += [_proc(f"--gcs_server_port={cfg.port}", "--node-ip-address=10.0.0.5"),
              _proc(f"--gcs_server_port={cfg.port}", f"--node-ip-address={cfg.host}")]
    time.sleep(0.3)
    cluster._record(cfg)  # what `up` records once its nodes are up
    recorded = {r["pid"] for r in json.loads((cluster.state_dir(cfg) / "processes.json").read_text())}
    assert recorded == {procs[1].pid}


def test_a_record_proves_a_process_only_when_it_matches_whole(cfg, procs):
    ours = _proc(f"--gcs-address={cfg.address}", code=CHILD)
    procs.append(ours)
    time.sleep(0.5)
    me = ProcessId.of(ours.pid)
    record = cluster.state_dir(cfg) / "processes.json"
    for wrong in ({"argv": [*me.argv[:-1], me.argv[-1] + "0"]},  # one argument differs
                  {"argv": []},                                  # no argv recorded: no proof
                  {"start": me.start - 5}):                      # the pid now names a later process
        record.write_text(json.dumps([{"pid": me.pid, "start": me.start, "argv": list(me.argv), **wrong}]))
        assert cluster.down(cfg) == 0 and ours.poll() is None
    cluster._record(cfg)
    child = psutil.Process(ours.pid).children()[0]
    assert cluster.down(cfg) == 2  # the recorded daemon and its child
    assert ours.wait(timeout=30) is not None and not child.is_running()
    assert not record.exists()
