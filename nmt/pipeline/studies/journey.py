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
import time
from dataclasses import dataclass
from pathlib import Path

from nmt.components.tracking import names as N
from nmt.components.system.paths import CONF_DIR
from nmt.components.tracking.uri import project_home
from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.system.errors import ConfigError
from nmt.components.evaluation.evalkey import PRIMARY, resolve_split
from nmt.components.tracking.run import RunLog
from nmt.components.evaluation.significance import PairResult, SystemInterval, compare_pairs, system_interval
from nmt.components.tracking.store import RunStore
from nmt.pipeline.config import PipelineConfig, load_config
from nmt.pipeline.override_line import expand_overrides
from nmt.pipeline.studies.journey_report import curve_figures, recipe_rows, verdict, write_report
from nmt.pipeline.stages.runner import Context, check_stages, run_pipeline
from nmt.pipeline.stages.evaluate import searches
from nmt.pipeline.evaluated import EvaluateOutputs
from nmt.pipeline.upstream import test_split

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class JourneyOutputs:
    parent_run_id: str
    report: Path                            # journey.md (figures beside it)
    systems: dict[str, SystemInterval]
    pairs: list[PairResult]
    wall_s: float


def arm_recipe(cfg: PipelineConfig, overrides: list[str]) -> list[str]:
    """The recipe an arm trains at: with journey.recipe=own its architecture's tuned one
    (``conf/recipe/<model>.yaml``, the model group the arm's overrides choose), with shared the
    one shared recipe; none added when the arm chooses its own ``recipe=``."""
    keys = {o.split("=", 1)[0].lstrip("+~"): o.split("=", 1)[-1] for o in overrides}
    if "recipe" in keys:
        return []
    if cfg.journey.recipe == "shared":
        return ["recipe=shared"]
    model = keys.get("model") or _default_model()
    if not (CONF_DIR / "recipe" / f"{model}.yaml").is_file():
        raise ConfigError(f"journey.recipe=own: model {model!r} has no tuned recipe conf/recipe/{model}.yaml; tune "
                          f"one (nmt sweep sweep=recipe profile=recipe model={model}, then write its winner there), "
                          "give the arm a recipe=..., or run journey.recipe=shared")
    return [f"recipe={model}"]


def _default_model() -> str:
    """The model group conf/config.yaml chooses when no override does."""
    from omegaconf import OmegaConf
    entries = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml").defaults)
    return next(str(e["model"]) for e in entries if isinstance(e, dict) and "model" in e)


def arm_configs(cfg: PipelineConfig, base_overrides: list[str]) -> dict[tuple[str, int], PipelineConfig]:
    """Every (arm, seed)'s config, composed before anything runs: a bad override fails here."""
    j, out = cfg.journey, {}
    # the budget alone ends each run: a profile's own limit (quick: 6 minutes) must not cut a
    # token budget short, nor a stray max_target_tokens a budget in minutes
    budget = [f"trainer.max_minutes={j.budget_minutes or 'null'}", f"trainer.max_target_tokens={j.budget_tokens or 'null'}",
              "trainer.max_epochs=-1"] if (j.budget_minutes or j.budget_tokens) else []
    for arm, overrides in j.arms.items():
        for seed in j.seeds:
            try:
                recipe = arm_recipe(cfg, [*base_overrides, *overrides])
                out[arm, seed] = load_config([*base_overrides, *overrides, *recipe, *budget, f"trainer.seed={seed}",
                                              f"evaluate.splits=[{j.split}]"])
                check_stages(out[arm, seed], until="evaluate")  # the last arm's folders, before the first arm trains
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


def _train_all(store: RunStore, configs: dict[tuple[str, int], PipelineConfig],
               parent: str) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(arm, seed) -> (prepare, train, evaluate) run ids; each run tagged with its arm and seed."""
    runs = {}
    for i, ((arm, seed), c) in enumerate(configs.items()):
        log.info("journey: %s seed %d (%d of %d)", arm, seed, i + 1, len(configs))
        out = run_pipeline(c, until="evaluate", parent_run_id=parent)
        runs[arm, seed] = (out.prepare.run_id, out.train.run_id, out.evaluate.run_id)
        for run_id in runs[arm, seed][1:]:
            store.log(run_id, tags={N.TAG_ARM: arm, N.TAG_SEED: seed})
    return runs


def _hypotheses(store: RunStore, evaluate_run_id: str, split: str, search: str) -> list[str]:
    return EvaluateOutputs(evaluate_run_id, {}).hypotheses(store, split, search)


def _analyse(store: RunStore, cfg: PipelineConfig, configs: dict, runs: dict) -> tuple[dict, list[PairResult], str]:
    j = cfg.journey
    any_cfg = next(iter(configs.values()))
    search = searches(any_cfg.evaluate.beam_size)[-1][0]  # the beam when there is one
    _, refs = test_split(store, next(iter(runs.values()))[0], j.split, any_cfg.data.test_limit)
    hyps = {arm: [_hypotheses(store, runs[arm, s][2], j.split, search) for s in j.seeds] for arm in j.arms}
    tok = any_cfg.evaluate.metric(any_cfg.data).tokenize  # BLEU tokenized for the target language
    systems = {arm: system_interval(h, refs, n_samples=j.resamples, seed=j.seed, tokenize=tok)
               for arm, h in hyps.items()}
    pairs = compare_pairs(hyps, refs, pairs_to_test(cfg), n_samples=j.resamples, seed=j.seed, tokenize=tok)
    return systems, pairs, search


def _journey(cfg: PipelineConfig, configs: dict, run: RunLog) -> JourneyOutputs:
    """Every arm x seed under ``run``, then the analysis, the report and its figures logged to it."""
    store, start = run.store, time.perf_counter()
    runs = _train_all(store, configs, run.run_id)
    systems, pairs, search = _analyse(store, cfg, configs, runs)
    wall = time.perf_counter() - start
    out = project_home() / "reports" / f"journey-{run.run_id}"  # the user's to read, like compare's
    out.mkdir(parents=True, exist_ok=True)
    train_runs = {arm: [runs[arm, s][1] for s in cfg.journey.seeds] for arm in cfg.journey.arms}
    figures = curve_figures(store, train_runs, out)
    recipes = recipe_rows(store, configs, runs)
    report = write_report(store, cfg, systems, pairs, search, wall, figures, out, runs, recipes)
    run.log_metrics({f"{N.JOURNEY_BLEU}/{arm}": s.bleu for arm, s in systems.items()})
    run.log_artifacts(out, N.JOURNEY_DIR)
    return JourneyOutputs(run.run_id, report, systems, pairs, wall)


def run_journey(cfg: PipelineConfig, base_overrides: list[str]) -> JourneyOutputs:
    """The journey under one parent run, which ends FINISHED, or FAILED with the error that
    stopped it (KILLED on Ctrl-C), like every run the store starts."""
    pairs_to_test(cfg)  # a bad pair fails before anything runs
    split = resolve_split(cfg.journey.split, cfg.data.primary)
    if split not in cfg.data.test_splits():
        raise ConfigError(f"journey.split={split!r}: the data has {', '.join(cfg.data.test_splits())} (or {PRIMARY})")
    cfg = dataclasses.replace(cfg, journey=dataclasses.replace(cfg.journey, split=split))
    configs = arm_configs(cfg, base_overrides)
    ctx = Context.create(cfg, command=__name__)  # the parent run is tagged with this module's code version
    tags = {N.TAG_STAGE: "journey", N.TAG_JOURNEY: cfg.journey.name, N.TAG_CODE_VERSION: ctx.code}
    params = flatten(to_dict(cfg.journey), "journey.")  # the store cuts a long value
    with ctx.store.run(f"journey {cfg.journey.name}", tags=tags, params=params) as run:
        return _journey(cfg, configs, run)


def cmd_journey(args, cfg: PipelineConfig, _pinned: bool) -> int:
    out = run_journey(cfg, expand_overrides(args))
    for arm, s in out.systems.items():
        print(f"{arm:20s} BLEU {s.bleu:6.2f}  95% [{s.mean - s.ci:.2f}, {s.mean + s.ci:.2f}]  seeds "
              + ", ".join(f"{b:.2f}" for b in s.seeds))
    for p in out.pairs:
        print(f"{p.b} - {p.a}: {p.delta:+.2f} +- {p.delta_ci:.2f}; " + verdict(p, cfg.journey.alpha).replace("**", ""))
    print(f"report: {out.report}\njourney run {out.parent_run_id} ({out.wall_s / 60:.1f} min)")
    return 0
