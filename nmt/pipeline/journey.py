"""``nmt journey``: each arm (an architecture, or a rung of the ablation ladder) x each seed,
at one equal budget, under one parent run; then a report with each arm's pooled BLEU and
95% interval, every compared pair's difference with its interval and p-value (Holm-adjusted),
and learning curves against tokens, wall-clock and FLOPs drawn from the store alone.

The runs are ordinary pipeline runs (prepare -> train -> evaluate) nested under the journey's
parent: a journey that stopped part-way, run again, reuses every finished run (same config,
same seed, same code) and trains only what is missing.
"""

from __future__ import annotations

import dataclasses

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from nmt.components import names as N
from nmt.components.config import ConfigError, flatten, to_dict
from nmt.components.evalkey import PRIMARY, resolve_split
from nmt.components.significance import PairResult, SystemInterval, compare_pairs, system_interval
from nmt.components.tracking import error_line, owner
from nmt.pipeline.config import PipelineConfig, load_config
from nmt.pipeline.journey_report import curve_figures, write_report
from nmt.pipeline.orchestrate import run_pipeline
from nmt.pipeline.stages.common import Context
from nmt.pipeline.stages.evaluate import searches
from nmt.pipeline.upstream import download, test_split

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class JourneyOutputs:
    parent_run_id: str
    report: Path                            # journey.md (figures beside it)
    systems: dict[str, SystemInterval]
    pairs: list[PairResult]
    wall_s: float


def arm_configs(cfg: PipelineConfig, base_overrides: list[str]) -> dict[tuple[str, int], PipelineConfig]:
    """Every (arm, seed)'s config, composed before anything runs: a bad override fails here."""
    j, out = cfg.journey, {}
    budget = ([f"trainer.max_minutes={j.budget_minutes}"] if j.budget_minutes else []) + (
        [f"trainer.max_target_tokens={j.budget_tokens}"] if j.budget_tokens else [])
    budget += ["trainer.max_epochs=-1"] if budget else []  # the budget alone ends each run
    for arm, overrides in j.arms.items():
        for seed in j.seeds:
            try:
                out[arm, seed] = load_config([*base_overrides, *overrides, *budget, f"trainer.seed={seed}",
                                              f"evaluate.splits=[{j.split}]"])
            except ConfigError as err:
                raise ConfigError(f"journey.arms.{arm}: {err}") from None
    return out


def pairs_to_test(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """journey.pairs: all | baseline (each arm against the first) | [[a, b], ...] by arm name."""
    arms, pairs = list(cfg.journey.arms), cfg.journey.pairs
    if pairs == "baseline":
        return [(arms[0], b) for b in arms[1:]]
    if pairs == "all":
        return [(a, b) for i, a in enumerate(arms) for b in arms[i + 1:]]
    ok = isinstance(pairs, (list, tuple)) and pairs and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and set(p) <= set(arms) for p in pairs)
    if not ok:
        raise ConfigError(f"journey.pairs must be all, baseline or a list of [arm, arm] pairs of {', '.join(arms)}; "
                          f"got {pairs!r}")
    return [(str(a), str(b)) for a, b in pairs]


def _parent(ctx: Context, cfg: PipelineConfig) -> str:
    client = MlflowClient()
    run = client.create_run(ctx.experiment_id, run_name=f"journey {cfg.journey.name}",
                            tags={N.TAG_STAGE: "journey", N.TAG_JOURNEY: cfg.journey.name,
                                  N.TAG_CODE_VERSION: ctx.code, N.TAG_OWNER: owner()})
    params = flatten(to_dict(cfg.journey), "journey.")
    client.log_batch(run.info.run_id, params=[mlflow.entities.Param(k, v[:6000]) for k, v in params.items()])
    return run.info.run_id


def _train_all(configs: dict[tuple[str, int], PipelineConfig], parent: str) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(arm, seed) -> (prepare, train, evaluate) run ids; each run tagged with its arm and seed."""
    client, runs = MlflowClient(), {}
    for i, ((arm, seed), c) in enumerate(configs.items()):
        log.info("journey: %s seed %d (%d of %d)", arm, seed, i + 1, len(configs))
        out = run_pipeline(c, until="evaluate", parent_run_id=parent)
        runs[arm, seed] = (out.prepare.run_id, out.train.run_id, out.evaluate.run_id)
        for run_id in runs[arm, seed][1:]:
            client.set_tag(run_id, N.TAG_ARM, arm)
            client.set_tag(run_id, N.TAG_SEED, str(seed))
    return runs


def _hypotheses(evaluate_run_id: str, split: str, search: str) -> list[str]:
    return download(evaluate_run_id, f"{N.HYPOTHESES_DIR}/{split}.{search}.txt").read_text().splitlines()


def _analyse(cfg: PipelineConfig, configs: dict, runs: dict) -> tuple[dict, list[PairResult], str]:
    j = cfg.journey
    any_cfg = next(iter(configs.values()))
    search = searches(any_cfg.evaluate.beam_size)[-1][0]  # the beam when there is one
    _, refs = test_split(next(iter(runs.values()))[0], j.split, any_cfg.data.test_limit)
    hyps = {arm: [_hypotheses(runs[arm, s][2], j.split, search) for s in j.seeds] for arm in j.arms}
    systems = {arm: system_interval(h, refs, n_samples=j.resamples, seed=j.seed) for arm, h in hyps.items()}
    pairs = compare_pairs(hyps, refs, pairs_to_test(cfg), n_samples=j.resamples, seed=j.seed)
    return systems, pairs, search


def run_journey(cfg: PipelineConfig, base_overrides: list[str]) -> JourneyOutputs:
    pairs_to_test(cfg)  # a bad pair fails before anything runs
    split = resolve_split(cfg.journey.split, cfg.data.primary)
    if split not in cfg.data.test_splits():
        raise ConfigError(f"journey.split={split!r}: the data has {', '.join(cfg.data.test_splits())} (or {PRIMARY})")
    cfg = dataclasses.replace(cfg, journey=dataclasses.replace(cfg.journey, split=split))
    configs = arm_configs(cfg, base_overrides)
    ctx = Context.create(cfg, command=__name__)  # the parent run is tagged with this module's code version
    parent, start, status = _parent(ctx, cfg), time.perf_counter(), "FAILED"
    client = MlflowClient()
    try:
        runs = _train_all(configs, parent)
        systems, pairs, search = _analyse(cfg, configs, runs)
        wall = time.perf_counter() - start
        out = Path(tempfile.mkdtemp(prefix="journey-"))
        train_runs = {arm: [runs[arm, s][1] for s in cfg.journey.seeds] for arm in cfg.journey.arms}
        figures = curve_figures(client, train_runs, out)
        report = write_report(cfg, systems, pairs, search, wall, figures, out, runs)
        client.log_batch(parent, metrics=[mlflow.entities.Metric(f"{N.JOURNEY_BLEU}/{arm}", s.bleu,
                                                                 int(time.time() * 1000), 0)
                                          for arm, s in systems.items()])
        client.log_artifacts(parent, str(out), N.JOURNEY_DIR)
        status = "FINISHED"
        return JourneyOutputs(parent, report, systems, pairs, wall)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException as err:
        client.set_tag(parent, N.TAG_ERROR, error_line(err))
        raise
    finally:
        client.set_terminated(parent, status)
