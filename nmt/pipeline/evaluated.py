"""Evaluate's typed hand-over: an evaluate run's scores and its hypotheses, one file per test
split and search, whose path is built here alone (:func:`hypotheses_path`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nmt.components.tracking import names as N
from nmt.components.system.scratch import scratch

if TYPE_CHECKING:  # annotations only
    from nmt.components.tracking.store import RunStore


def hypotheses_path(split: str, search: str) -> str:
    """An evaluate run's artifact: ``split`` decoded by ``search`` (``greedy``, ``beam5``),
    detokenized, one sentence a line, in corpus order."""
    return f"{N.HYPOTHESES_DIR}/{split}.{search}.txt"


@dataclass(frozen=True)
class EvaluateOutputs:
    """What an evaluate run hands on: its scores by ``<split>/<search>/<metric>`` (0-100) and,
    through :meth:`hypotheses`, what it decoded."""
    run_id: str
    scores: dict[str, float]

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> EvaluateOutputs:
        return cls(run_id, dict(store.get_run(run_id).metrics))

    def hypotheses(self, store: RunStore, split: str, search: str) -> list[str]:
        with scratch(N.HYPOTHESES_DIR) as tmp:  # a server's copy: read, then gone
            return store.download(self.run_id, hypotheses_path(split, search), tmp).read_text().splitlines()
