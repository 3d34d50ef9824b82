"""The pipeline parent run: made only when a stage runs, inside the store's one run
lifecycle, and ended by the ``with ctx:`` block whatever leaves it."""

from __future__ import annotations

import pytest

from nmt.components.tracking import names as N
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.runner import Context


@pytest.mark.slow  # three Contexts, each opening the store and recovering orphans
def test_the_parent_is_made_once_when_needed_and_ended_by_the_block(nmt_home):
    with Context.create(load_config([])) as idle:
        pass
    assert idle.parent_run_id is None and not idle.store.find(tags={N.TAG_PIPELINE: "true"})
    with Context.create(load_config([])) as ctx:
        parent = ctx.parent()
        assert ctx.parent() == parent
    assert ctx.store.get_run(parent).status == "FINISHED"
    with pytest.raises(RuntimeError), Context.create(load_config([])) as failing:
        failing.parent()
        failing.reused["prepare"] = "p1"
        raise RuntimeError("a stage failed")
    got = failing.store.get_run(failing.parent_run_id)
    assert got.status == "FAILED" and got.tags["reused.prepare"] == "p1"
    assert got.tags[N.TAG_ERROR] == "RuntimeError: a stage failed"
