"""What the MLflow UI shows: the experiment opens as a model-training ("Machine learning")
experiment, and every registered version says what it is and what made it."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import main
from tests.conftest import TINY_RUN


def test_an_experiment_made_elsewhere_is_marked_on_first_use(nmt_home):
    uri = f"sqlite:///{nmt_home / 'mlflow.db'}"
    client = MlflowClient(uri)
    by_hand = client.create_experiment("by-hand")
    assert N.TAG_EXPERIMENT_KIND not in client.get_experiment(by_hand).tags
    assert RunStore.open(uri, "by-hand").experiment_id == by_hand
    assert client.get_experiment(by_hand).tags[N.TAG_EXPERIMENT_KIND] == "custom_model_development"


def test_run_and_promote_register_versions_that_describe_themselves(nmt_home):
    assert main(["run", *TINY_RUN]) == 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    assert exp.tags[N.TAG_EXPERIMENT_KIND] == "custom_model_development"  # MLflow's "Machine learning" kind

    v1 = client.get_model_version("nmt-de-en", "1")
    text = v1.description
    assert text.startswith("seq2seq-gru on multi30k (de-en).")
    assert f"validation {float(v1.tags[N.VTAG_VAL_BLEU]):.2f}" in text
    assert f"test_2016_flickr greedy {float(v1.tags['test_2016_flickr/greedy/bleu']):.2f}" in text
    assert "Made by: nmt run data.train_limit=200" in text and v1.tags[N.VTAG_TRAIN_RUN] in text

    other = [*(o for o in TINY_RUN if not o.startswith("model")), "trainer.seed=7", "model=attention", "model.emb_dim=16",
             "model.enc_hidden_dim=12", "model.dec_hidden_dim=24", "model.attn_dim=16"]
    assert main(["train", *other]) == 0
    train = client.search_runs([exp.experiment_id], f"tags.`{N.TAG_STAGE}` = 'train'", order_by=["start_time DESC"])[0]
    assert main(["promote", "--run", train.info.run_id, "--force", "--limit", "5", "--beam", "1",
                 "--resamples", "10"]) == 0
    v2 = client.get_model_version("nmt-de-en", "2")
    assert v2.description.startswith("attention on multi30k (de-en).")
    assert f"Made by: nmt promote --run {train.info.run_id} --force" in v2.description
    assert "test_2016_flickr" not in v2.description  # promote registers a train run: no evaluation yet
