"""A later stage's bad folder is answered before the first stage runs (the stage table's
``check``), not after prepare and train have run for minutes: one line, no run made."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from tests.conftest import TINY_RUN


@pytest.mark.parametrize("command, override, message", [
    ("run", "evaluate.alignment_gold={tmp}/no-gold", "evaluate.alignment_gold: no folder {tmp}/no-gold"),
    ("evaluate", "evaluate.alignment_gold={tmp}", "evaluate.alignment_gold: {tmp} holds 0 *.talp files"),
    ("train", "trainer.batch_log={tmp}/no-folder/batches.jsonl", "trainer.batch_log={tmp}/no-folder/batches.jsonl: "
                                                                   "there is no folder {tmp}/no-folder"),
    # Lightning's launcher would re-run the command in a second process that waits forever on
    # the first's checkpoint folder: more than one device is a sweep's (Ray Train DDP)
    ("train", "trainer.devices=2", "trainer.devices=2: more than one device trains in a sweep's trials only"),
    ("run", "trainer.devices=3", "trainer.devices=3: more than one device trains in a sweep's trials only"),
])
def test_a_later_stages_bad_folder_fails_before_any_run(nmt_home, tmp_path, capsys, command, override, message):
    assert main([command, *TINY_RUN, override.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nmt: error: {message.format(tmp=tmp_path)}") and len(err.strip().splitlines()) == 1
    exp = MlflowClient().get_experiment_by_name("nmt")
    assert exp is None or not MlflowClient().search_runs([exp.experiment_id])  # not even prepare ran


def test_the_same_folder_check_passes_a_good_one(nmt_home, tmp_path):
    """The checks above can pass: an existing folder for the batch log is accepted and written."""
    log = tmp_path / "batches.jsonl"
    assert main(["train", *TINY_RUN, f"trainer.batch_log={log}"]) == 0
    assert log.read_text().count("\n") >= 1


def test_a_journey_checks_every_arms_folders_before_its_first_run(nmt_home, tmp_path, capsys):
    """The last arm's bad batch log is answered before the first arm trains."""
    arm = f"journey.arms.transformer=['model=transformer_tiny','trainer.batch_log={tmp_path}/none/b.jsonl']"
    assert main(["journey", "journey=smoke", arm]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nmt: error: journey.arms.transformer: trainer.batch_log={tmp_path}/none/b.jsonl: there is "
                          f"no folder {tmp_path}/none") and len(err.strip().splitlines()) == 1
    exp = MlflowClient().get_experiment_by_name("nmt")
    assert exp is None or not MlflowClient().search_runs([exp.experiment_id])
