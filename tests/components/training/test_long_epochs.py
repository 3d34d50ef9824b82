"""Training when an epoch is long: validation (so checkpoints and early stopping) every N
steps or M minutes as well as at epoch ends, gradient accumulation, and a run killed in
the middle of an epoch that resumes with neither a replayed nor a skipped batch."""

from __future__ import annotations

import glob
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from tests.conftest import metric_steps, module_home

pytestmark = pytest.mark.slow

# ~9 batches an epoch: enough room for validations inside it
SMALL = ["data.train_limit=120", "data.val_limit=16", "data.test_limit=8", "data.vocab_size=300",
         "model=gru", "model.emb_dim=16", "model.hidden_dim=24", "model.dropout=0.0",
         "trainer.max_minutes=null", "trainer.batch_tokens=384", "trainer.val_bleu_limit=16",
         "trainer.log_every_n_steps=1", "trainer.precision=32", "trainer.patience=100", "trainer.num_threads=1"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "long_epochs") as (path, _uri):
        yield path


def _train(*args: str):
    assert main(["train", *SMALL, *args]) == 0
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("nmt").experiment_id], "tags.`nmt.stage` = 'train'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0]


def _batches(path: Path) -> list[dict]:
    """The batch log; a line cut short by a kill is no batch."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_validation_every_n_steps_as_well_as_at_the_epoch_end(home, tmp_path):
    run = _train("trainer.max_epochs=1", "trainer.val_every_steps=4", f"trainer.batch_log={tmp_path / 'b.jsonl'}")
    steps = int(run.data.metrics["steps"])
    assert steps == len(_batches(tmp_path / "b.jsonl")) > 8
    # a validation's row carries the index of the step it follows: 4, 8, ... and the epoch's last
    expected = sorted({*range(3, steps, 4), steps - 1})
    assert metric_steps(run.info.run_id, "val/bleu") == expected


def test_early_stopping_counts_validations_inside_an_epoch(home):
    # lr 0: the weights never change, so val/bleu never improves after the first validation
    run = _train("trainer.max_epochs=3", "trainer.val_every_steps=2", "trainer.patience=1", "optim.lr=0.0")
    assert metric_steps(run.info.run_id, "val/bleu") == [1, 3]  # validated at steps 2 and 4, then stopped
    assert int(run.data.metrics["steps"]) == 4  # inside the first epoch (it has more than 8 batches)


def test_validation_every_m_minutes(home):
    # a microsecond: due after every optimizer step, the epoch's last one validating only once
    run = _train("trainer.max_epochs=1", "trainer.val_every_minutes=0.00000001")
    steps = int(run.data.metrics["steps"])
    assert metric_steps(run.info.run_id, "val/bleu") == list(range(steps))


def test_accumulate_grad_batches_steps_once_per_k_batches(home, tmp_path):
    run = _train("trainer.max_epochs=1", "trainer.accumulate_grad_batches=3", f"trainer.batch_log={tmp_path / 'b.jsonl'}")
    batches = _batches(tmp_path / "b.jsonl")
    assert len(batches) > 6
    assert int(run.data.metrics["steps"]) == math.ceil(len(batches) / 3)
    # the optimizer steps after batches 3, 6, ... and the epoch's last (Lightning steps on it)
    assert [b["step"] for b in batches] == [i // 3 for i in range(len(batches))]
    assert run.data.params["trainer.accumulate_grad_batches"] == "3"


def test_killed_mid_epoch_resumes_without_replaying_or_skipping_a_batch(home, tmp_path):
    """SIGKILL after a validation in the middle of an epoch; the rerun goes on from that
    validation's checkpoint: its step rows continue the killed run's, and over the two
    runs each epoch trains every pair exactly once."""
    log, first = tmp_path / "batches.jsonl", tmp_path / "killed.jsonl"
    args = [*SMALL, "trainer.max_epochs=2", "trainer.val_every_steps=3", f"trainer.batch_log={log}"]
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "train", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    pattern = str(home / ".nmt" / "checkpoints" / "*" / "last.ckpt")
    end = time.time() + 300
    while not glob.glob(pattern) and time.time() < end and proc.poll() is None:
        time.sleep(0.05)
    assert glob.glob(pattern), "no last.ckpt appeared"
    seen = len(_batches(log))
    while len(_batches(log)) < seen + 1 and proc.poll() is None:  # into the steps after that validation
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    log.rename(first)  # the rerun (same command, so the same checkpoint folder) logs afresh
    (ckpt_path,) = glob.glob(pattern)
    k = torch.load(ckpt_path, map_location="cpu", weights_only=False)["global_step"]
    assert k % 3 == 0 and k > 0

    resumed = _train("trainer.max_epochs=2", "trainer.val_every_steps=3", f"trainer.batch_log={log}")
    done = [b for b in _batches(first) if b["step"] < k]
    again = _batches(log)
    assert again[0]["step"] == k  # on from the checkpoint: nothing replayed, nothing skipped
    by_epoch: dict[int, list[int]] = {}
    for b in done + again:
        by_epoch.setdefault(b["epoch"], []).extend(b["idx"])
    assert sorted(by_epoch) == [0, 1]
    for epoch, ids in by_epoch.items():
        assert sorted(ids) == list(range(120)), f"epoch {epoch}: a pair replayed or skipped"
    per_epoch = sum(1 for b in done + again if b["epoch"] == 0)
    assert k % per_epoch != 0, "the checkpoint must be one taken in the middle of an epoch"
    # MLflow: the resumed run's step rows continue at the checkpoint, one per step, to the end
    steps = metric_steps(resumed.info.run_id, "train/loss_step")
    assert steps == list(range(k, int(resumed.data.metrics["steps"])))
    client = MlflowClient()
    killed = [r for r in client.search_runs([resumed.info.experiment_id], "tags.`nmt.stage` = 'train'")
              if r.info.run_id != resumed.info.run_id and r.data.params.get("trainer.batch_log") == str(log)]
    assert [r.info.status for r in killed] == ["FAILED"]  # the orphan, ended by the rerun
    before = metric_steps(killed[0].info.run_id, "train/loss_step")
    assert set(range(k)) <= set(before) and len(before) == len(set(before))  # rows up to k all there, once
