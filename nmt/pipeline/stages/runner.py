"""``run_pipeline``: the stages of :data:`nmt.pipeline.stages.table.STAGES` in order, each
reusing a finished identical run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nmt.components.training import startup
from nmt.components.system.typed_config import ConfigError
from nmt.components.tracking.store import RunStore
from nmt.pipeline.stages import table as stage_table
from nmt.pipeline.config import PipelineConfig
from nmt.pipeline.stages.common import Context
from nmt.pipeline.stages.prepare import prepare_outputs
from nmt.pipeline.stages.train import existing_train

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class PipelineOutputs:
    """Each stage's outputs by name, in the order they ran (each has a ``run_id``)."""

    parent_run_id: str | None
    store: RunStore
    runs: Mapping[str, Any] = field(default_factory=dict)
    reused: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:  # out.train, out.evaluate: None where it did not run
        if name == "runs" or name not in {s.name for s in stage_table.STAGES}:  # "runs": not yet set (copies)
            raise AttributeError(name)
        return self.runs.get(name)


def run_pipeline(cfg: PipelineConfig, until: str = "register", parent_run_id: str | None = None) -> PipelineOutputs:
    """Run the stages up to and including ``until``; each reuses a finished identical run.
    The pipeline parent run ends FAILED (or KILLED) if any stage does."""
    stages = stage_table.upto(until)
    given = cfg.evaluate.train_run_id
    if given and until != "evaluate":
        raise ConfigError(f"evaluate.train_run_id is for `nmt evaluate`, not the stages up to {until}; to register "
                          f"a trained model: nmt promote --run {given}")
    startup.begin_pipeline()
    ctx = Context.create(cfg, parent_run_id)
    startup.mark("tracking store")  # the store, the experiment, orphaned runs
    out: dict[str, Any] = {}
    with ctx:
        if given:  # evaluate a model trained earlier, on the data its own prepare run made
            train, prepare_run_id = existing_train(ctx.store, given)
            out["prepare"], out["train"] = prepare_outputs(ctx.store.get_run(prepare_run_id)), train
        for s in stages:
            if s.name not in out:
                out[s.name] = s.function()(cfg, ctx, **{f"{n}_run_id": out[n].run_id for n in s.needs})
                startup.mark(s.name)
    return PipelineOutputs(ctx.parent_run_id if ctx.owns_parent else None, ctx.store, out, tuple(ctx.reused))
