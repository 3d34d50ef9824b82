"""Evaluate's hand-over: what an evaluate run wrote at ``hypotheses_path`` is what the
studies read back, with the run's scores."""

from __future__ import annotations

from nmt.components.tracking.store import RunStore
from nmt.pipeline.evaluated import EvaluateOutputs, hypotheses_path


def test_hypotheses_and_scores_read_back_from_the_run(nmt_home, tmp_path):
    store = RunStore.open(None, "nmt")
    with store.run("evaluate") as run:
        path = tmp_path / hypotheses_path("test_2016_flickr", "beam5")
        path.parent.mkdir()
        path.write_text("ein Hund .\nzwei Katzen .\n")
        run.log_artifacts(path.parent, path.parent.name)
        run.log_metrics({"test_2016_flickr/beam5/bleu": 12.5})
    got = EvaluateOutputs.load(store, run.run_id)
    assert got.scores == {"test_2016_flickr/beam5/bleu": 12.5}
    assert got.hypotheses(store, "test_2016_flickr", "beam5") == ["ein Hund .", "zwei Katzen ."]
