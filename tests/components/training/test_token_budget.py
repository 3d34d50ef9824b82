"""trainer.max_target_tokens: a budget in target tokens (train/tokens_seen), the same work on
a busy machine as on an idle one. A run stops at the first optimizer step that reaches it, and a
run resumed from a checkpoint goes on counting from the checkpoint's tokens, to the same total."""

from __future__ import annotations

import pytest
import torch
from mlflow.tracking import MlflowClient
from pytorch_lightning.callbacks import Callback

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.train import fit
from nmt.components.tracking.store import RunStore
from nmt.pipeline.upstream import PreparedData
from tests.conftest import module_home

pytestmark = pytest.mark.slow

# ~9 batches an epoch of ~300 target tokens each: a budget of 4000 ends inside the second epoch
SMALL = ["data.train_limit=120", "data.val_limit=16", "data.test_limit=8", "data.vocab_size=300",
         "model=gru", "model.emb_dim=16", "model.hidden_dim=24", "model.dropout=0.0",
         "trainer.max_minutes=null", "trainer.batch_tokens=384", "trainer.val_bleu_limit=16",
         "trainer.log_every_n_steps=1", "trainer.precision=32", "trainer.patience=100", "trainer.num_threads=1"]
BUDGET = ["trainer.max_epochs=-1", "trainer.max_target_tokens=4000"]


@pytest.fixture(scope="module")
def home(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "token_budget") as (path, _uri):
        yield path


def _latest(stage: str):
    client = MlflowClient()
    return client.search_runs([client.get_experiment_by_name("nmt").experiment_id], f"tags.`nmt.stage` = '{stage}'",
                              order_by=["attributes.start_time DESC"], max_results=1)[0]


def test_a_run_stops_at_the_first_step_that_reaches_the_budget(home):
    assert main(["train", *SMALL, *BUDGET]) == 0
    run = _latest("train")
    seen = [m.value for m in sorted(MlflowClient().get_metric_history(run.info.run_id, N.TOKENS_SEEN),
                                    key=lambda m: m.step)]
    assert len(seen) == int(run.data.metrics["steps"]) > 9  # one row a step, past the first epoch
    assert seen[-2] < 4000 <= seen[-1]  # at most one batch's tokens past the budget
    assert run.data.params["trainer.max_target_tokens"] == "4000"


class StopAt(Callback):
    """Stops the run at optimizer step ``step``: Lightning validates and checkpoints there, as
    at any stop (an interrupted run leaves that ``last.ckpt``)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_a_resumed_run_counts_on_from_its_checkpoint_to_the_same_total(home, tmp_path):
    assert main(["prepare", *SMALL]) == 0
    data = PreparedData.load(RunStore.open(None, "nmt"), _latest("prepare").info.run_id)
    data_dir, codec = data.data_dir, data.codec
    cfg = load_config([*SMALL, *BUDGET])
    whole, module, _ = fit(cfg, None, None, data_dir, codec, tmp_path / "whole")

    fit(cfg, None, None, data_dir, codec, tmp_path / "cut", callbacks=[StopAt(4)])
    ckpt = tmp_path / "cut" / N.LAST_CKPT
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 4 and 0 < saved["tokens_seen"] < 4000
    resumed, again, _ = fit(cfg, None, None, data_dir, codec, tmp_path / "resumed", resume_from=ckpt)
    assert again.tokens_seen == module.tokens_seen >= 4000
    assert resumed.global_step == whole.global_step
    # resumed from a checkpoint taken at the budget (a run killed just after it): nothing more to train
    whole.save_checkpoint(tmp_path / "at_budget.ckpt")
    done, at_budget, _ = fit(cfg, None, None, data_dir, codec, tmp_path / "done", resume_from=tmp_path / "at_budget.ckpt")
    assert (done.global_step, at_budget.tokens_seen) == (whole.global_step, module.tokens_seen)


class Validations(Callback):
    """The optimizer step of each validation."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_validation_end(self, trainer, *args) -> None:
        self.steps.append(trainer.global_step)


def test_a_step_budget_inside_an_epoch_is_validated_at_its_last_step(home, tmp_path):
    """Lightning alone leaves the loop at max_steps without validating: the steps after the
    last epoch's end would be trained and never scored nor kept."""
    assert main(["prepare", *SMALL]) == 0
    data = PreparedData.load(RunStore.open(None, "nmt"), _latest("prepare").info.run_id)
    cfg = load_config([*SMALL, "trainer.max_epochs=-1", "trainer.max_steps=18"])
    seen = Validations()
    trainer, _module, _ = fit(cfg, None, None, data.data_dir, data.codec, tmp_path, callbacks=[seen])
    assert trainer.num_training_batches < 18 < 2 * trainer.num_training_batches  # the budget ends in epoch 2
    # validated at the stop, so the best checkpoint (and averaging) can take the last steps' model
    assert seen.steps == [trainer.num_training_batches, 18] and trainer.global_step == 18
    # and what a resume starts from is that validation's state, whether or not it improved
    assert torch.load(tmp_path / N.LAST_CKPT, map_location="cpu", weights_only=True)["global_step"] == 18


def test_a_budget_must_be_positive():
    with pytest.raises(ConfigError, match="trainer.max_target_tokens must be > 0"):
        load_config(["trainer.max_target_tokens=0"])


def test_a_trial_checkpoint_at_the_budget_is_complete_and_one_before_it_is_not(tmp_path):
    from nmt.components.data.datamodule import TranslationDataModule
    from nmt.pipeline.studies.sweep.trainable import _completed
    path = tmp_path / "c.ckpt"
    # an epoch's end, 2700 tokens in: a retried trial with a larger budget (or no epoch limit) trains on
    torch.save({"global_step": 9, "epoch": 0, "tokens_seen": 2700,
                TranslationDataModule.__qualname__: {"consumed": 9, "batches": 9}}, path)
    assert not _completed(path, max_epochs=-1, max_tokens=4000)
    assert _completed(path, max_epochs=-1, max_tokens=2700)
    assert _completed(path, max_epochs=1, max_tokens=4000)  # the epoch limit came first
