"""Register's hand-over: the version, model URI and champion flag a register run publishes
are what ``RegisterOutputs.of`` reads back from the finished (or a reused) run."""

from __future__ import annotations

from nmt.components.tracking.store import RunStore
from nmt.pipeline.stages.register import RegisterOutputs


def test_register_outputs_read_back_from_the_run(nmt_home):
    store = RunStore.open(None, "nmt")
    with store.run("register") as run:
        RegisterOutputs(run.run_id, "nmt-de-en", "3", "models:/m-abc", True).publish(run)
    got = RegisterOutputs.of(store.get_run(run.run_id), "nmt-de-en")
    assert got == RegisterOutputs(run.run_id, "nmt-de-en", "3", "models:/m-abc", True)
    with store.run("register") as other:
        RegisterOutputs(other.run_id, "nmt-de-en", "4", "models:/m-def", False).publish(other)
    assert RegisterOutputs.of(store.get_run(other.run_id), "nmt-de-en").champion is False
