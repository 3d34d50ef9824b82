"""``run_sweep``: prepare (reused) -> Ray Tune trials -> evaluate + register the winner.

The sweep parent run holds one child run per trial (written by the driver), the prepare,
evaluate and register stage runs, and tags naming the winning trial."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from nmt.components.tracking import names as N
from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.system.errors import ConfigError
from nmt.components.system.errors import SweepError
from nmt.components.tracking.run import RunLog
from nmt.components.tracking.store import metric_rows
from nmt.components.tracking.uri import error_line
from nmt.pipeline.config import PipelineConfig, load_config
from nmt.pipeline.stages.runner import Context
from nmt.pipeline.stages.evaluate import run_evaluate
from nmt.pipeline.stages.prepare import run_prepare
from nmt.pipeline.stages.register import run_register
from nmt.pipeline.upstream import PreparedData
from nmt.pipeline.trained import TrainedModel, model_spec
from nmt.pipeline.studies.sweep.insight import log_insight
from nmt.pipeline.studies.sweep.packing import guard_packing
from nmt.pipeline.studies.sweep.credentials import remove, write_for_trials
from nmt.pipeline.studies.sweep.ray_setup import init_ray, storage_root, trial_resources
from nmt.pipeline.studies.sweep.space import ARCH_KEY, corner_samples, parse_space, to_overrides, to_tune
from nmt.pipeline.studies.sweep.tune_metrics import TUNE_METRIC, TUNE_TOKENS, find_trial_run
from nmt.components.system import progress
from nmt.pipeline.studies.sweep.trial_runs import MlflowTrialLogger, RecordingASHA, TrialBar
from nmt.pipeline.studies.sweep.trainable import CHECKPOINT_FILE, train_trial

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class SweepOutputs:
    parent_run_id: str
    best_trial_run_id: str
    best_val_bleu: float
    rows: list[dict[str, Any]]
    register: Any


def validate_sweep(cfg: PipelineConfig, base_overrides: list[str]) -> dict[str, dict[str, Any]]:
    """Compose a trial config for every architecture and choice in the space: an unknown
    key or a value the model rejects fails here, before Ray starts."""
    if cfg.sweep.scheduler.time_attr == "tokens" and not cfg.trainer.max_target_tokens:
        raise ConfigError("sweep.scheduler.time_attr=tokens: set trainer.max_target_tokens, each trial's budget "
                          "(ASHA's last rung), e.g. profile=recipe")
    space = parse_space(cfg.sweep.space)
    corners = []
    for sample in corner_samples(space):
        try:
            corners.append(load_config([*base_overrides, *to_overrides(sample)], groups=("sweep",)))
        except ConfigError as err:
            raise ConfigError(f"sweep.space: {err}") from None
    guard_packing(cfg, corners)
    return space


MAX_REPORTS = 10**9  # a trial bounded by time alone: no bound on its validations


def max_reports(cfg: PipelineConfig, train_pairs: int) -> int:
    """ASHA's ``max_t``: the most reports (validations) a trial can make. A trial reports at
    each validation, so rungs count validations: at epoch ends by default, and also every
    ``trainer.val_every_steps`` steps or ``trainer.val_every_minutes`` minutes. An upper bound
    is enough: ASHA's rungs below it stay where they are, but a bound set too low would stop
    every trial at it (an epoch has at most ``train_pairs`` batches)."""
    t = cfg.trainer
    if not (t.val_every_steps or t.val_every_minutes):
        return t.max_epochs if t.max_epochs > 0 else MAX_REPORTS
    per_epoch = math.ceil(train_pairs / t.accumulate_grad_batches)
    steps = min(t.max_steps if t.max_steps > 0 else MAX_REPORTS,
                t.max_epochs * per_epoch if t.max_epochs > 0 else MAX_REPORTS)
    epochs = t.max_epochs if t.max_epochs > 0 else steps
    by_steps = steps // t.val_every_steps if t.val_every_steps else 0
    by_time = 0
    if t.val_every_minutes:  # with no time limit: at most one validation a step
        by_time = math.ceil(t.max_minutes / t.val_every_minutes) if t.max_minutes else steps
    return int(min(MAX_REPORTS, epochs + by_steps + by_time))


def _scheduler(cfg: PipelineConfig, data_dir: Path) -> RecordingASHA | None:
    s = cfg.sweep.scheduler
    if s.type == "fifo":
        return None
    if s.time_attr == "tokens":  # rungs at target tokens: the same work for every trial, however busy the machine
        return RecordingASHA(time_attr=TUNE_TOKENS, max_t=cfg.trainer.max_target_tokens,
                             grace_period=s.grace_period, reduction_factor=s.reduction_factor)
    from datasets import load_from_disk  # memory-mapped: the length is metadata
    pairs = len(load_from_disk(str(data_dir))["train"])
    return RecordingASHA(time_attr="training_iteration", max_t=max_reports(cfg, pairs),
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor)


def _searcher(cfg: PipelineConfig) -> Any:
    """The search, seeded by ``sweep.search.seed``: the same seed and space, the same draws."""
    if cfg.sweep.search.algorithm == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=cfg.sweep.search.seed))
    from ray.tune.search.basic_variant import BasicVariantGenerator
    return BasicVariantGenerator(random_state=cfg.sweep.search.seed)


def _resumable(ctx: Context, cfg: PipelineConfig, storage: str) -> tuple[str, str]:
    """``sweep.resume``: the newest unfinished parent of this sweep name under this storage,
    and its folder."""
    for run in ctx.store.find(tags={N.TAG_SWEEP: cfg.sweep.name}, not_status="FINISHED"):
        folder = run.tags.get(N.TAG_SWEEP_DIR, "")
        if folder.startswith(f"{storage}/{cfg.sweep.name}/") and tune.Tuner.can_restore(folder):
            return run.id, folder
    raise ConfigError(f"sweep.resume=true but no unfinished sweep {cfg.sweep.name!r} can be resumed "
                      f"from {storage}/{cfg.sweep.name}; start it afresh (sweep.resume=false)")


@contextlib.contextmanager
def _parent_run(ctx: Context, cfg: PipelineConfig, storage: str, resumed: tuple[str, str] | None
                ) -> Iterator[tuple[str, str]]:
    """The sweep parent and its folder ``<storage>/<name>/<parent run id>``: this sweep's
    alone, so a second sweep of the same name never touches it. The resumed one when resuming.
    Its end waits out a store outage (``patient``): hours of trials hang on it."""
    tags = {N.TAG_SWEEP: cfg.sweep.name, N.TAG_CODE_VERSION: ctx.code}
    with ctx.store.run(f"sweep {cfg.sweep.name}", tags=tags, resume=resumed and resumed[0], patient=True) as run:
        if resumed is None:
            sweep_dir = f"{storage}/{cfg.sweep.name}/{run.run_id}"
            ctx.store.log(run.run_id, params=flatten(to_dict(cfg.sweep), "sweep."), tags={N.TAG_SWEEP_DIR: sweep_dir})
        yield run.run_id, resumed[1] if resumed else sweep_dir


def _arch(base: PipelineConfig, params: dict[str, Any]) -> str:
    """The architecture a trial trains: the sampled ``model`` group, else the base config's."""
    return str(params.get(ARCH_KEY, base.model.label))


def _tuner(cfg: PipelineConfig, base_overrides: list[str], space: dict, ctx: Context, parent: str,
           prepare_run_id: str, data_dir: Path, sweep_dir: str, secrets: str | None) -> tune.Tuner:
    """A new Tuner for this sweep, or the saved one when resuming."""
    scheduler = _scheduler(cfg, data_dir)
    logger = MlflowTrialLogger(store=ctx.store, parent_run_id=parent, default_arch=cfg.model.label,
                               scheduler=scheduler, base_params={N.PARAM_PREPARE_RUN: prepare_run_id})
    tracking = {"uri": ctx.tracking_uri, "experiment_id": ctx.experiment_id, "parent_run_id": parent,
                "credentials": secrets}  # a path: the secrets stay out of Ray's records
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, base_overrides=list(base_overrides), data_dir=str(data_dir),
                             tokenizer_dir=str(data_dir.parent / N.TOKENIZER_DIR), tracking=tracking),
        trial_resources(cfg))
    if cfg.sweep.resume:  # the Tuner's pickled state brings back its scheduler and our trial logger
        return tune.Tuner.restore(sweep_dir, trainable, resume_unfinished=True, resume_errored=True)
    # a terminal gets a bar of finished trials; logs and CI Tune's status tables; --quiet neither
    run_config = tune.RunConfig(
        name=Path(sweep_dir).name, storage_path=sweep_dir.rsplit("/", 1)[0],
        callbacks=[logger, TrialBar(cfg.sweep.num_samples)], verbose=int(progress.mode() == progress.LINES),
        failure_config=tune.FailureConfig(max_failures=cfg.sweep.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=TUNE_METRIC,
                                                checkpoint_score_order="max"))
    return tune.Tuner(trainable, param_space=to_tune(space), run_config=run_config,
                      tune_config=tune.TuneConfig(metric=TUNE_METRIC, mode="max", num_samples=cfg.sweep.num_samples,
                                                  max_concurrent_trials=cfg.sweep.max_concurrent_trials,
                                                  scheduler=scheduler, search_alg=_searcher(cfg)))


def run_sweep(cfg: PipelineConfig, base_overrides: list[str]) -> SweepOutputs:
    """Checks that need no run, then Ray, then the parent run around the sweep. Nothing is
    deleted: a fresh sweep gets a folder of its own."""
    space = validate_sweep(cfg, base_overrides)
    ctx = Context.create(cfg, command=__name__)  # the parent run is tagged with this module's code version
    storage = storage_root(cfg)  # fails before any run exists when it is not writable
    resumed = _resumable(ctx, cfg, storage) if cfg.sweep.resume else None
    secrets = None
    try:
        init_ray(cfg)  # resource checks fail here, before any run or trial exists
        with _parent_run(ctx, cfg, storage, resumed) as (parent, sweep_dir):
            ctx.parent_run_id = parent
            try:
                secrets = write_for_trials(sweep_dir)
                return _sweep(cfg, base_overrides, space, ctx, sweep_dir, secrets)
            finally:
                remove(secrets)  # a resume writes them again
    finally:
        ray.shutdown()


def _sweep(cfg: PipelineConfig, base_overrides: list[str], space: dict, ctx: Context, sweep_dir: str,
           secrets: str | None) -> SweepOutputs:
    """Prepare (reused), the trials, then the winner evaluated and registered as a train run would be."""
    parent = ctx.parent()
    prep = run_prepare(cfg, ctx)
    data = PreparedData.load(ctx.store, prep.run_id)
    results = _tuner(cfg, base_overrides, space, ctx, parent, prep.run_id, data.data_dir, sweep_dir, secrets).fit()
    rows, best = _summarise(cfg, results, ctx, parent)
    _insight(RunLog(ctx.store, parent), rows, space, cfg.sweep.search.seed)
    if best is None:
        raise SweepError(f"no trial reported {N.VAL_BLEU}; see the trial runs for errors")
    best_cfg = load_config([*base_overrides, *to_overrides(best["params"])])
    with best["checkpoint"].as_directory() as d:  # the winner hands on what a train run does
        TrainedModel.publish(ctx.store, best["run_id"], model_spec(best_cfg, data.codec), Path(d) / CHECKPOINT_FILE,
                             best["val_bleu"])
    ev = run_evaluate(best_cfg, ctx, prep.run_id, best["run_id"])
    reg = run_register(best_cfg, ctx, prep.run_id, best["run_id"], ev.run_id)
    ctx.store.log(parent, metrics=metric_rows({N.BEST_VAL_BLEU: best["val_bleu"]}, 0),
                  tags={"best_trial_id": best["trial_id"], N.TAG_BEST_TRIAL: best["run_id"]})
    return SweepOutputs(parent, best["run_id"], best["val_bleu"], rows, reg)


def _insight(parent: RunLog, rows: list[dict[str, Any]], space: dict, seed: int) -> None:
    """Hyperparameter importance and parallel coordinates: a failure here never fails the sweep."""
    try:
        log_insight(parent, rows, space, seed)
    except Exception as err:  # noqa: BLE001 - e.g. fANOVA on a space of one value
        log.warning("sweep: no hyperparameter importance (%s)", error_line(err))
        parent.set_tag(N.TAG_INSIGHT, f"failed: {error_line(err)}")


def _summarise(cfg: PipelineConfig, results: Any, ctx: Context, parent: str
               ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows, best = [], None
    for r in results:
        trial_id = r.metrics.get("trial_id") if r.metrics else None
        if trial_id is None:
            trial_id = Path(r.path).name.split("_")[-2] if r.path else "?"
        df = r.metrics_dataframe
        bleu = float(df[TUNE_METRIC].max()) if df is not None and TUNE_METRIC in df else float("nan")
        row = {"trial_id": trial_id, "arch": _arch(cfg, r.config), "params": dict(r.config),
               "val_bleu": bleu, "validations": int(df["training_iteration"].max()) if df is not None and len(df) else 0,
               "asha_stopped": False, "error": r.error is not None,
               "run_id": find_trial_run(ctx.store, parent, trial_id),
               "checkpoint": _best_checkpoint(r, df)}
        if row["run_id"]:
            tags = ctx.store.get_run(row["run_id"]).tags
            row["asha_stopped"] = tags.get(N.TAG_STOPPED) == "asha"
        rows.append(row)
        if row["checkpoint"] is not None and not math.isnan(bleu) and (best is None or bleu > best["val_bleu"]):
            best = row
    return rows, best


def _best_checkpoint(result: Any, df: Any) -> Any:
    """The trial's best checkpoint: Tune's own, or (DDP trials) the Ray Train checkpoint
    whose path rank 0 reported beside its metrics."""
    if df is None or not len(df):
        return None
    try:
        found = result.get_best_checkpoint(TUNE_METRIC, "max")
    except RuntimeError:  # "No checkpoint exists in the trial directory": a DDP trial
        found = None
    if found is None and "checkpoint_path" in df:
        best = df.loc[df[TUNE_METRIC].idxmax()]
        found = tune.Checkpoint(best["checkpoint_path"]) if isinstance(best["checkpoint_path"], str) else None
    return found


def format_summary(rows: list[dict[str, Any]]) -> str:
    keys = sorted({k for r in rows for k in r["params"] if k != ARCH_KEY})
    head = ["trial", "arch", *keys, "best val/bleu", "validations", "stopped by ASHA"]
    lines = [head]
    for r in sorted(rows, key=lambda r: -(-1 if math.isnan(r["val_bleu"]) else r["val_bleu"])):
        vals = [f"{r['params'].get(k):.4g}" if isinstance(r["params"].get(k), float) else str(r["params"].get(k))
                for k in keys]
        lines.append([r["trial_id"], r["arch"], *vals, f"{r['val_bleu']:.2f}", str(r["validations"]),
                      "yes" if r["asha_stopped"] else ("error" if r["error"] else "no")])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in lines)
