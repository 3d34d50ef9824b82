"""``kill -9`` of ``nmt run`` at several points: in prepare (its Arrow work files), in train
(after a checkpoint), in evaluate (its hypotheses) and in register (MLflow's copy of the
model). Nothing in the process can clean up after such a kill; the next run sweeps what the
killed one left, resumes, finishes, and leaves nothing but the runs' own records: no growth of
$TMPDIR, nor of the project home beyond the store, its artifacts and its caches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nmt.components.system.procs import owner
from nmt.components.system.scratch import scratch_root
from nmt.pipeline.cli import main
from tests.conftest import assert_no_run_running

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
ARGS = ["run", "data.train_limit=2000", "data.vocab_size=300", "data.val_limit=40", "data.test_limit=60",
        "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "trainer.max_epochs=2", "trainer.max_minutes=null",
        "trainer.batch_tokens=1024", "trainer.val_bleu_limit=20", "trainer.num_threads=1", "trainer.precision=32",
        "evaluate.beam_size=2", "evaluate.num_samples=2", "evaluate.attention_samples=0", "demo_sentences=0"]
# what a project home holds after runs: the store, its artifacts, and the caches that name what they keep
HOME_ENTRIES = {"mlflow.db", "mlartifacts", ".nmt"}
NMT_ENTRIES = {"multi30k", "import_graph.json", "cache", "checkpoints", "models", "configs"}  # configs: compose.py


def _kill_when(seen: Callable[[], object], env: dict[str, str], what: str) -> None:
    """Start ``nmt run``; SIGKILL it as soon as ``seen()`` finds something."""
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", *ARGS], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = None
        while proc.poll() is None and not found:
            found = seen()
            time.sleep(0.02)  # poll gently: two shared cores
        assert found, f"nmt run ended (code {proc.returncode}) before {what}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
        proc.wait()


def test_runs_killed_in_prepare_train_and_evaluate_leave_nothing_once_rerun(nmt_home, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    ckpts = nmt_home / ".nmt" / "checkpoints"

    _kill_when(lambda: next(iter(scratch_root().glob("prepare-*/*/*/*.arrow")), None), env, "prepare's first work file")
    assert list(tmp.glob("nmt-scratch-*/prepare-*")), "the killed prepare's work is there until the next run"
    _kill_when(lambda: next(iter(ckpts.glob("*/*.ckpt")), None), env, "train's first checkpoint")
    assert not list(tmp.glob("nmt-scratch-*/prepare-*")), "the next run swept the killed prepare's work"
    _kill_when(lambda: next(iter(scratch_root().glob("evaluate-*/work")), None), env, "evaluate's hypotheses folder")
    assert not list(ckpts.glob("*/*.ckpt")), "the resumed train removed its checkpoints when it finished"
    # MLflow's own copy of the model it logs is made with tempfile: in register's scratch, so swept too
    _kill_when(lambda: next(iter(scratch_root().glob("register-*/*/tmp*/model")), None), env,
               "register's model being logged")

    assert main(ARGS) == 0
    # torch's compile cache (torchinductor_<user>) is torch's to keep, shared by every run
    left = [str(p.relative_to(tmp)) for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]
    left = [x for x in left if x != f"nmt-scratch-{os.getuid()}"]
    left += [str(d) for d in scratch_root().iterdir() if (d / "owner").read_text() != owner()]  # ours: gone at exit
    assert left == [], "\n".join(left)
    assert {p.name for p in nmt_home.iterdir()} <= HOME_ENTRIES
    assert {p.name for p in (nmt_home / ".nmt").iterdir()} <= NMT_ENTRIES
    assert not ckpts.exists() or [str(p) for p in ckpts.rglob("*")] == [], "a finished train left checkpoints"
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("nmt").experiment_id], max_results=100)
    ids = {r.info.run_id for r in runs}
    assert {p.name for p in (nmt_home / ".nmt" / "cache").iterdir()} <= ids, "a cache of a run the store does not know"
    stages = {(r.data.tags.get("nmt.stage"), r.info.status) for r in runs}
    assert {("prepare", "FINISHED"), ("train", "FINISHED"), ("evaluate", "FINISHED"), ("register", "FINISHED")} <= stages
    assert [r for r in runs if r.data.tags.get("nmt.stage") == "train" and r.data.tags.get("resumed_from")]
    assert_no_run_running()
