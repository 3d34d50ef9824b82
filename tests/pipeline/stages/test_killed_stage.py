"""``kill -9`` in the middle of ``nmt prepare`` leaves its work files behind (nothing in the
process can remove them); the next run sweeps them, finishes, and leaves nothing either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nmt.components.system.scratch import scratch_root
from nmt.pipeline.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
ARGS = ["prepare", "data.train_limit=3000", "data.vocab_size=300", "data.val_limit=40", "data.test_limit=30"]


def test_a_prepare_killed_mid_stage_is_swept_by_the_next(nmt_home, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", *ARGS], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        work = None
        while proc.poll() is None and work is None:  # until prepare has written its first work file
            work = next(iter(scratch_root().glob("prepare-*/work/*/*.arrow")), None)
            time.sleep(0.02)  # poll gently: two shared cores
        assert work is not None, f"prepare ended (code {proc.returncode}) before writing a work file"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    assert list(tmp.glob("nmt-scratch-*/prepare-*")), "the killed prepare's work is there until the next run"
    assert main(ARGS) == 0
    assert list(tmp.glob("nmt-scratch-*/*")) == [], "the next run swept the killed run's work and removed its own"
