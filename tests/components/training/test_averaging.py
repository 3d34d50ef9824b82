"""Checkpoint averaging: the mean of the weights, and the train stage's use of it."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient

from nmt.components.training.lit_module import average_checkpoints, average_state_dicts
from nmt.pipeline.cli import main


def test_the_average_is_the_mean_of_the_weights_and_buffers_keep_the_newest():
    torch.manual_seed(0)
    states = [{"w": torch.randn(3, 5), "b": torch.randn(5).to(torch.bfloat16), "n": torch.tensor(i)}
              for i in range(4)]
    avg = average_state_dicts(states)
    assert torch.allclose(avg["w"], sum(s["w"] for s in states) / 4, atol=1e-6)
    assert avg["b"].dtype == torch.bfloat16
    assert torch.allclose(avg["b"].float(), torch.stack([s["b"].double() for s in states]).mean(0).float(), atol=1e-2)
    assert avg["n"].item() == 3  # an integer buffer is not averaged: the newest one's is kept
    with pytest.raises(ValueError, match="other parameters"):
        average_state_dicts([{"w": torch.zeros(1)}, {"v": torch.zeros(1)}])


def test_average_checkpoints_writes_a_loadable_checkpoint(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"epoch{i:03d}.ckpt"
        torch.save({"state_dict": {"model.w": torch.full((2,), float(i))}, "epoch": i}, p)
        paths.append(p)
    out = torch.load(average_checkpoints(paths, tmp_path / "avg.ckpt"), weights_only=False)
    assert out["state_dict"]["model.w"].tolist() == [1.0, 1.0] and out["epoch"] == 2
    assert out["averaged_from"] == ["epoch000.ckpt", "epoch001.ckpt", "epoch002.ckpt"]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["last", "best"])
def test_train_averages_k_epochs_and_records_it(nmt_home, tiny, which):
    assert main(["train", *tiny, "trainer.max_epochs=3", "trainer.average_checkpoints=2",
                 f"trainer.average_of={which}"]) == 0
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("nmt").experiment_id], "tags.`nmt.stage` = 'train'")
    assert run.data.params["trainer.average_checkpoints"] == "2" and run.data.params["trainer.average_of"] == which
    assert "val/bleu_averaged" in run.data.metrics
    tag = run.data.tags["nmt.checkpoint"]
    if tag.startswith("average"):
        assert tag == f"average of 2 {which} epochs"
        assert run.data.metrics["best/val_bleu"] == run.data.metrics["val/bleu_averaged"]
    else:
        assert run.data.metrics["val/bleu_averaged"] < run.data.metrics["best/val_bleu"]
