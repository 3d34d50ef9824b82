"""prepare: a data source (Multi30k, local files, a HuggingFace dataset) -> cleaned pairs ->
subword tokenizer -> tokenized DatasetDict, streamed through Arrow on disk.

Produces, under the prepare run: ``data/`` (DatasetDict, Arrow), ``tokenizer/src.json``
and ``tokenizer/tgt.json``, ``data_stats.json`` (every cleaning count, pairs per training
corpus); logs dataset lineage (one dataset input per split, with the source's identity)
and the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.components.tracking import names as N
from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.data.build import Built, build
from nmt.components.data.plans import plan_for
from nmt.components.data.sources import Plan
from nmt.components.tracking.run import RunLog, RunRecord
from nmt.pipeline.stages.runner import Context, execute
from nmt.pipeline.upstream import PreparedData
from nmt.components.system.scratch import scratch

if TYPE_CHECKING:  # annotations only: the config loader is not code this stage runs
    from nmt.pipeline.config import PipelineConfig


@dataclass(frozen=True)
class PrepareOutputs:
    run_id: str


def prepare_inputs(cfg: PipelineConfig) -> tuple[Plan, dict[str, str]]:
    """Check the data source before any run starts; returns its plan and the reuse-key params
    (the config plus the source's identity: files' checksums, or a dataset's name, revision
    and fingerprint)."""
    plan = plan_for(cfg.data)
    params = flatten(to_dict(cfg.data), "data.")
    params.update(plan.identity)
    return plan, params


def build_dataset(cfg: PipelineConfig, work: Path) -> Built:
    """prepare without MLflow (tests, benchmarks): the tokenized splits, Arrow files under ``work``."""
    plan, _ = prepare_inputs(cfg)
    work.mkdir(parents=True, exist_ok=True)
    return build(plan, cfg.data, work)


def log_lineage(run: RunLog, cfg: PipelineConfig, plan: Plan, built: Built) -> None:
    """One dataset input per split, named by the source and carrying its identity."""
    d = cfg.data
    tags = {k.removeprefix("data."): v[:250] for k, v in plan.identity.items()}
    for split, dset in built.data.items():
        # MLflow would infer the schema from 10,000 rows per split (~2 s each); 20 rows show the columns
        run.log_dataset(dset, path=plan.lineage_path, name=f"{d.label}-{d.src_lang}-{d.tgt_lang}-{split}",
                        context="training" if split == "train" else split,
                        schema_of=dset.select(range(min(len(dset), 20))), tags=tags)


def run_prepare(cfg: PipelineConfig, ctx: Context) -> PrepareOutputs:
    plan, params = prepare_inputs(cfg)

    def body(run: RunLog) -> None:
        with scratch("prepare") as tmp:  # removed on any exit; swept by the next run after kill -9
            work = Path(tmp) / "work"
            work.mkdir()
            built = build(plan, cfg.data, work)
            run.log_metrics({k: float(v) for k, v in built.stats.items()})
            run.set_tag(N.TAG_PRIMARY_SPLIT, cfg.data.primary)
            log_lineage(run, cfg, plan, built)
            out = Path(tmp) / "out"
            out.mkdir()
            PreparedData.publish(run, built, out)

    return prepare_outputs(execute("prepare", ctx, cfg, params, body))


def prepare_outputs(run: RunRecord) -> PrepareOutputs:
    return PrepareOutputs(run.id)
