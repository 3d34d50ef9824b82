import mlflow
import pytest

from nmt.components.tracking.store import RunStore
from nmt.components.tracking.uri import reuse_key, stage_tags


def test_reuse_key_changes_with_param_upstream_and_code():
    base = {"model.hidden_dim": "64", "upstream.prepare_run_id": "abc"}
    k = reuse_key("train", base, "v1")
    assert k == reuse_key("train", dict(reversed(list(base.items()))), "v1")  # order-free
    assert k != reuse_key("train", {**base, "model.hidden_dim": "65"}, "v1")
    assert k != reuse_key("train", {**base, "upstream.prepare_run_id": "abd"}, "v1")
    assert k != reuse_key("train", base, "v2")
    assert k != reuse_key("evaluate", base, "v1")
    # params compare as strings: an int and its string are the same parameter value
    assert reuse_key("train", {"a": 1}, "v1") == reuse_key("train", {"a": "1"}, "v1")


def test_find_reusable_only_matches_finished_runs_with_same_params(nmt_home):
    store = RunStore.open(f"sqlite:///{nmt_home / 'mlflow.db'}", "t")
    exp = store.experiment_id
    params = {"x": "1", "upstream.prepare_run_id": "p1"}

    tags = stage_tags("train", params, "c")
    with pytest.raises(RuntimeError), store.run("train", tags=tags, params=params):
        raise RuntimeError("boom")
    assert store.find_reusable("train", params, "c") is None  # FAILED runs are not reused
    with store.run("train", tags=tags, params=params) as run:
        pass
    found = store.find_reusable("train", params, "c")
    assert found is not None and found.id == run.run_id
    assert store.find_reusable("train", {**params, "upstream.prepare_run_id": "p2"}, "c") is None
    assert store.find_reusable("train", params, "other-code") is None
    statuses = {r.info.status for r in mlflow.search_runs([exp], output_format="list")}
    assert statuses == {"FAILED", "FINISHED"}
