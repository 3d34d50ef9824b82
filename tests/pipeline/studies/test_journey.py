"""`nmt journey journey=smoke` end to end on tiny models and data: every arm x seed nested
under one parent, the report's numbers equal to sacreBLEU's on the logged hypotheses, curves
drawn from the store, and a second run reusing every finished run."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.evaluation.significance import system_interval
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.journey import arm_configs
from nmt.components.tracking.store import RunStore
from nmt.pipeline.evaluated import hypotheses_path
from nmt.pipeline.upstream import test_split
from tests.conftest import TINY

pytestmark = pytest.mark.slow

BASE = [o for o in TINY if not o.startswith(("model", "data.", "trainer.val_bleu_limit"))] + [
    "data.train_limit=120", "data.val_limit=12", "data.test_limit=15", "data.vocab_size=200", "trainer.val_bleu_limit=12",
    "journey=smoke", "trainer.max_epochs=2", "trainer.num_threads=1", "trainer.precision=32",
    "evaluate.attention_samples=1", "evaluate.beam_size=1"]

TOKENS = ["journey.budget_tokens=3000"]  # about an epoch and a half of the 120 pairs, in place of the epochs


def _journey(client, exp):
    runs = client.search_runs([exp], f"tags.`{N.TAG_STAGE}` = 'journey'", order_by=["attributes.start_time DESC"])
    return runs[0]


def test_journey_smoke_end_to_end_and_resumable(nmt_home, capsys):
    assert main(["journey", *BASE, *TOKENS]) == 0
    printed = capsys.readouterr().out
    assert "gru" in printed and "transformer - attention" in printed
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    parent = _journey(client, exp)
    store = RunStore.open(None, "nmt")
    assert parent.info.status == "FINISHED" and set(parent.data.metrics) == {
        f"{N.JOURNEY_BLEU}/{a}" for a in ("gru", "attention", "transformer")}
    report = json.loads(store.download(parent.info.run_id, f"{N.JOURNEY_DIR}/{N.JOURNEY_JSON}").read_text())
    assert len(report["runs"]) == 6 and len(report["pairs"]) == 3  # 3 arms x 2 seeds; 3 pairs
    trains = client.search_runs([exp], f"tags.`{N.TAG_STAGE}` = 'train' and tags.`{N.TAG_PARENT}` = "
                                f"'{parent.info.run_id}'")
    assert sorted((r.data.tags[N.TAG_ARM], r.data.tags[N.TAG_SEED]) for r in trains) == sorted(
        (a, s) for a in ("gru", "attention", "transformer") for s in ("1", "2"))
    own = {"gru": "gru", "attention": "attention", "transformer": "transformer_tiny"}
    for r in trains:  # each arm trained at its own architecture's tuned recipe, as its params record
        recipe = load_config([f"recipe={own[r.data.tags[N.TAG_ARM]]}"])
        assert r.data.params[N.PARAM_RECIPE] == own[r.data.tags[N.TAG_ARM]]
        assert float(r.data.params["optim.lr"]) == recipe.optim.lr
        assert r.data.params["optim.schedule"] == recipe.optim.schedule
    seen = [m.value for m in client.get_metric_history(trains[0].info.run_id, N.TOKENS_SEEN)]
    assert len(seen) > 2 and seen == sorted(seen) and seen[0] > 0  # counted beside the steps
    for r in trains:  # each run trained to the token budget and stopped there (not at an epoch's end)
        seen = sorted(client.get_metric_history(r.info.run_id, N.TOKENS_SEEN), key=lambda m: m.step)
        assert seen[-2].value < 3000 <= seen[-1].value and r.data.params["trainer.max_epochs"] == "-1"
    assert report["budget"].startswith("3,000 target tokens per run") and "6 of 6 runs reached it" in report["budget"]
    # the report's interval is the one recomputed from the logged hypotheses
    gru = next(r for r in report["runs"] if r["arm"] == "gru" and r["seed"] == 1)
    _, refs = test_split(store, gru["prepare"], "test_2016_flickr", 15)
    hyps = [store.download(r["evaluate"], hypotheses_path("test_2016_flickr", "greedy")).read_text().splitlines()
            for r in report["runs"] if r["arm"] == "gru"]
    again = system_interval(hyps, refs, n_samples=200, seed=12345)
    assert report["systems"]["gru"]["ci"] == pytest.approx(again.ci) and again.bleu == pytest.approx(
        parent.data.metrics[f"{N.JOURNEY_BLEU}/gru"])
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, N.JOURNEY_DIR)}
    assert {f"{N.JOURNEY_DIR}/{n}" for n in (N.JOURNEY_MD, N.CURVES_TOKENS, N.CURVES_TIME, N.CURVES_FLOPS)} <= arts
    md = store.download(parent.info.run_id, f"{N.JOURNEY_DIR}/{N.JOURNEY_MD}").read_text()
    assert "Holm" in md and md.count("| ") > 10 and "budget: 3,000 target tokens" in md
    assert "## Recipes" in md and "| transformer | transformer_tiny |" in md and "not reached" in md
    assert [r["recipe"] for r in report["recipes"]] == ["gru", "attention", "transformer_tiny"]
    # run again: every finished run is reused, nothing trains
    assert main(["journey", *BASE, *TOKENS]) == 0
    second = _journey(client, exp)
    assert second.info.run_id != parent.info.run_id
    assert not client.search_runs([exp], f"tags.`{N.TAG_PARENT}` = '{second.info.run_id}'")


def test_bad_arm_override_names_the_arm(nmt_home, capsys):
    assert main(["journey", *BASE, "journey.arms.gru=['model.nope=1']"]) == 2
    err = capsys.readouterr().err
    assert "journey.arms.gru" in err and "model.nope" in err
    exp = MlflowClient().get_experiment_by_name("nmt")
    assert exp is None or not MlflowClient().search_runs([exp.experiment_id])  # nothing ran


@pytest.mark.parametrize("budget, limits", [
    (["journey.budget_minutes=null", "journey.budget_tokens=5000"], (None, 5000)),
    (["journey.budget_minutes=2", "trainer.max_target_tokens=9"], (2.0, None)),
    (["journey.budget_minutes=2", "journey.budget_tokens=5000"], (2.0, 5000)),  # whichever comes first
])
def test_the_journeys_budget_is_the_only_limit_of_its_runs(budget, limits):
    """The quick profile's own 6 minutes must not cut a token budget short (nor a stray
    max_target_tokens a budget in minutes), and no epoch count ends a run first."""
    base = ["journey=ablation", *budget]
    cfg = load_config(base)
    assert cfg.trainer.max_minutes == 6  # the quick profile's, which the journey replaces
    configs = arm_configs(cfg, base)
    assert len(configs) == len(cfg.journey.arms) * len(cfg.journey.seeds)
    for c in configs.values():
        assert (c.trainer.max_minutes, c.trainer.max_target_tokens, c.trainer.max_epochs) == (*limits, -1)
