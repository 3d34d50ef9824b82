"""``run_pipeline``: prepare -> train -> evaluate -> register, reusing finished stages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nmt.components import startup
from nmt.components.config import ConfigError
from nmt.pipeline.config import PipelineConfig
from nmt.pipeline.stages.common import Context
from nmt.pipeline.stages.prepare import PrepareOutputs, prepare_outputs, run_prepare
from nmt.pipeline.stages.train import TrainOutputs, existing_train, run_train

if TYPE_CHECKING:  # imported when they run: `nmt train` needs neither (mlflow.pyfunc, figures)
    from nmt.pipeline.stages.evaluate import EvaluateOutputs
    from nmt.pipeline.stages.register import RegisterOutputs

log = logging.getLogger("nmt")
STAGES = ("prepare", "train", "evaluate", "register")


@dataclass(frozen=True)
class PipelineOutputs:
    parent_run_id: str | None
    prepare: PrepareOutputs | None = None
    train: TrainOutputs | None = None
    evaluate: EvaluateOutputs | None = None
    register: RegisterOutputs | None = None
    reused: tuple[str, ...] = ()


def run_pipeline(cfg: PipelineConfig, until: str = "register", parent_run_id: str | None = None) -> PipelineOutputs:
    """Run the stages up to and including ``until``; each reuses a finished identical run.
    The pipeline parent run ends FAILED (or KILLED) if any stage does."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; valid: {', '.join(STAGES)}")
    given = cfg.evaluate.train_run_id
    if given and until != "evaluate":
        raise ConfigError(f"evaluate.train_run_id is for `nmt evaluate`, not the stages up to {until}; to register "
                          f"a trained model: nmt promote --run {given}")
    startup.begin_pipeline()
    ctx = Context.create(cfg, parent_run_id)
    startup.mark("tracking store")  # the store, the experiment, orphaned runs
    upto = STAGES.index(until)
    out: dict = {}
    try:
        if given:  # evaluate a model trained earlier, on the data its own prepare run made
            t, prepare_run_id = existing_train(ctx.store, given)
            out["train"] = t
            out["prepare"] = p = prepare_outputs(ctx.store.get_run(prepare_run_id))
        else:
            out["prepare"] = p = run_prepare(cfg, ctx)
            startup.mark("prepare")
            if upto >= 1:
                out["train"] = t = run_train(cfg, ctx, p.run_id)
        if upto >= 2:
            from nmt.pipeline.stages.evaluate import run_evaluate
            out["evaluate"] = e = run_evaluate(cfg, ctx, p.run_id, t.run_id)
        if upto >= 3:
            from nmt.pipeline.stages.register import run_register
            out["register"] = run_register(cfg, ctx, p.run_id, t.run_id, e.run_id)
    except (KeyboardInterrupt, SystemExit):
        ctx.close("KILLED")
        raise
    except BaseException:
        ctx.close("FAILED")
        raise
    ctx.close("FINISHED")
    return PipelineOutputs(ctx.parent_run_id if ctx.owns_parent else None, reused=tuple(ctx.reused), **out)
