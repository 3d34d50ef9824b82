"""An interrupted training run resumes from its last checkpoint."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main

pytestmark = pytest.mark.slow


def test_interrupted_train_resumes_from_last_checkpoint(nmt_home, tiny):
    args = [*tiny, "trainer.max_epochs=6", "trainer.patience=100"]
    # A shell's background jobs (a CI runner's, say) start with SIGINT ignored, and children
    # inherit that: give ours the default handler, as a terminal's foreground job has.
    proc = subprocess.Popen([sys.executable, "-m", "nmt.pipeline.cli", "train", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pattern = str(nmt_home / ".nmt" / "checkpoints" / "*" / "last.ckpt")
    end = time.time() + 180
    while not glob.glob(pattern) and time.time() < end and proc.poll() is None:
        time.sleep(0.2)
    assert glob.glob(pattern), "no last.ckpt appeared"
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=60) != 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    first = client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'train'")
    assert [r.info.status for r in first] == ["KILLED"]
    assert glob.glob(pattern), "the checkpoint must survive the interruption"

    assert main(["train", *args]) == 0
    runs = client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'train'", order_by=["attributes.start_time DESC"])
    resumed = runs[0]
    assert resumed.info.status == "FINISHED" and resumed.data.tags["resumed_from"].endswith("last.ckpt")
    # epochs finished before the interruption are not trained again
    assert len(client.get_metric_history(resumed.info.run_id, "val/bleu")) < 6
    assert resumed.data.metrics["epochs"] == 6
    assert not glob.glob(pattern)  # a finished run cleans up its local checkpoints
