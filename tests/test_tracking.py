from pathlib import Path

import mlflow
import pytest

from nmt.components.tracking import code_version, find_reusable, reuse_key, setup_tracking, stage_run


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


def test_code_version_follows_source_edits_only(tmp_path):
    import shutil
    root = Path(__file__).resolve().parents[1]
    for d in ("nmt", "tests"):
        shutil.copytree(root / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "README.md", tmp_path / "README.md")
    before = code_version(tmp_path)
    assert before == code_version(root) and len(before) == 16  # the same sources hash the same anywhere
    for doc in (tmp_path / "README.md", tmp_path / "tests" / "test_tracking.py"):
        doc.write_text(doc.read_text() + "\n# an edit\n")
    assert code_version(tmp_path) == before  # tests and docs are not the code
    source = tmp_path / "nmt" / "components" / "decoding.py"
    source.write_text(source.read_text().replace("def ", "def  ", 1))
    edited = code_version(tmp_path)
    assert edited != before
    (tmp_path / "nmt" / "pipeline" / "new_module.py").write_text("X = 1\n")
    assert code_version(tmp_path) not in (before, edited)  # a new source file counts too


def test_find_reusable_only_matches_finished_runs_with_same_params(nmt_home):
    exp = setup_tracking(f"sqlite:///{nmt_home / 'mlflow.db'}", "t")
    params = {"x": "1", "upstream.prepare_run_id": "p1"}
    with pytest.raises(RuntimeError):
        with stage_run("train", experiment_id=exp, params=params, code="c"):
            raise RuntimeError("boom")
    assert find_reusable(exp, "train", params, "c") is None  # FAILED runs are not reused
    with stage_run("train", experiment_id=exp, params=params, code="c") as run:
        pass
    found = find_reusable(exp, "train", params, "c")
    assert found is not None and found.info.run_id == run.info.run_id
    assert find_reusable(exp, "train", {**params, "upstream.prepare_run_id": "p2"}, "c") is None
    assert find_reusable(exp, "train", params, "other-code") is None
    statuses = {r.info.status for r in mlflow.search_runs([exp], output_format="list")}
    assert statuses == {"FAILED", "FINISHED"}
