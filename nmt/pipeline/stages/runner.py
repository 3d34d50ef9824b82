"""``run_pipeline``: the stages of :data:`nmt.pipeline.stages.table.STAGES` in order, each
reusing a finished identical run; and ``nmt <stage>`` / ``nmt run``, which print what it ran."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nmt.components.training import startup
from nmt.components.system.typed_config import ConfigError
from nmt.components.tracking.store import RunStore
from nmt.components.evaluation.evalkey import EvalKey
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


def last_stage(command: str) -> str:
    """``nmt <stage>`` runs up to that stage; ``nmt run``, the whole table."""
    return stage_table.STAGES[-1].name if command == "run" else command


def _adopt_mlflow_run_env() -> str | None:
    """Under ``mlflow run``, MLFLOW_RUN_ID names a run made for us: it becomes the parent
    (left to ``mlflow run`` to end), and is removed so our own start_run calls aren't hijacked."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return os.environ.pop("MLFLOW_RUN_ID", None)


def cmd_stage(args: argparse.Namespace, cfg: PipelineConfig, _pinned: bool) -> int:
    """``nmt <stage>`` and ``nmt run``: the stages, then each run id, the scores, the version."""
    startup.mark("imports")
    command = args.command
    out = run_pipeline(cfg, until=last_stage(command), parent_run_id=_adopt_mlflow_run_env())
    for stage, o in out.runs.items():
        print(f"{stage:9s} run {o.run_id}{'  (reused)' if stage in out.reused else ''}")
    if out.evaluate:
        for k, v in sorted(out.evaluate.scores.items()):
            if EvalKey.is_key(k):
                print(f"  {k} = {v:.2f}")
    if out.register:
        r = out.register
        print(f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    if command == "run" and cfg.demo_sentences > 0:
        show_champion(cfg, out.store, out.prepare.run_id, cfg.demo_sentences)
    return 0


def show_champion(cfg: PipelineConfig, store: RunStore, prepare_run_id: str, n: int) -> None:
    """Translate the first ``n`` sentences of the primary test split with the registry's champion."""
    from nmt.pipeline.promotion.loading import load_translator
    from nmt.pipeline.upstream import test_split

    sources, refs = test_split(store, prepare_run_id, cfg.data.primary, n)
    uri = f"models:/{cfg.model_name}@{cfg.register.alias}"
    hyps = load_translator(store, uri).predict(sources)
    print(f"\nTranslations by {uri}:")
    for src, ref, hyp in zip(sources, refs, hyps):
        print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}\n")
