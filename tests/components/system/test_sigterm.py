"""SIGTERM (kill, timeout, a scheduler's stop) ends a command as Ctrl-C does: its runs KILLED,
its scratch folders removed, instead of dying with both left for the next command to find."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[3]

HOLD = """
import sys, time
from nmt.components.system.procs import Terminated, sigterm_interrupts
from nmt.components.system.scratch import scratch
from nmt.components.tracking.store import RunStore
store = RunStore.open(sys.argv[1], "nmt")
try:
    with sigterm_interrupts(), store.run("prepare") as run, scratch("prepare") as work:
        print(run.run_id, work, flush=True)
        time.sleep(120)
except Terminated:
    sys.exit(143)
"""


def test_sigterm_ends_the_run_killed_and_removes_the_scratch_folder(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "NMT_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, uri], stdout=subprocess.PIPE, text=True, env=env)
    try:
        run_id, work = proc.stdout.readline().split()
        assert Path(work).is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert MlflowClient(uri).get_run(run_id).info.status == "KILLED"
    assert not Path(work).exists() and not Path(work).parent.exists()


def test_the_handler_before_is_back_after_the_block():
    from nmt.components.system.procs import sigterm_interrupts
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_interrupts():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
