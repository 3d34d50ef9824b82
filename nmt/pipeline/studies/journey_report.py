"""The journey's report: journey.md + journey.json, and learning curves drawn from the store.

Curves read only what train runs logged: ``val/bleu`` per validation (its step and wall-clock
timestamp), ``train/tokens_seen`` beside the training steps, ``num_params``. Training FLOPs
are estimated as 6 N D (Kaplan et al. 2020: forward 2 N D + backward 4 N D) with N the
parameters and D the target tokens seen: a rough common yardstick, which leaves out the
attention's own S x T term and the source side.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from nmt.components.tracking import names as N
from nmt.components.evaluation.aer import aer_key
from nmt.components.evaluation.plots import band_plot
from nmt.components.evaluation.significance import PairResult, SystemInterval
from nmt.components.tracking.store import RunStore
from nmt.pipeline.config import PipelineConfig

FLOPS_PER_PARAM_TOKEN = 6  # forward 2 + backward 4 multiply-adds counted as FLOPs


def _history(store: RunStore, run_id: str, key: str) -> list:
    return sorted(store.metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))


def run_curves(store: RunStore, run_id: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One train run's val BLEU against target tokens, minutes and FLOPs (each x, y)."""
    run = store.get_run(run_id)
    bleu = _history(store, run_id, N.VAL_BLEU)
    if not bleu:
        return {}
    seen = _history(store, run_id, N.TOKENS_SEEN)
    steps, y = np.array([m.step for m in bleu], float), np.array([m.value for m in bleu])
    if seen:  # tokens at each validation step: interpolated between logged steps, extrapolated at the
        # rate so far past the last one (Lightning logs step metrics every log_every_n_steps)
        s, t = np.array([0.0] + [m.step for m in seen]), np.array([0.0] + [m.value for m in seen])
        rate = t[-1] / max(s[-1], 1.0)
        tokens = np.where(steps <= s[-1], np.interp(steps, s, t), t[-1] + (steps - s[-1]) * rate)
    else:
        tokens = np.full_like(y, np.nan)
    minutes = np.array([(m.timestamp - run.start_time) / 60000 for m in bleu])
    params = run.metrics.get(N.NUM_PARAMS, float("nan"))
    return {"tokens": (tokens, y), "time": (minutes, y), "flops": (FLOPS_PER_PARAM_TOKEN * params * tokens, y)}


def curve_figures(store: RunStore, train_runs: dict[str, list[str]], out: Path) -> dict[str, Path]:
    """The three curve figures, arms overlaid with seed bands, saved under ``out``."""
    curves = {arm: [run_curves(store, r) for r in ids] for arm, ids in train_runs.items()}
    figs = {}
    for kind, name, xlabel, logx in (("tokens", N.CURVES_TOKENS, "target tokens seen", False),
                                     ("time", N.CURVES_TIME, "wall-clock (minutes)", False),
                                     ("flops", N.CURVES_FLOPS, "estimated training FLOPs (6 N D)", True)):
        data = {arm: [c[kind] for c in cs if kind in c and np.isfinite(c[kind][0]).all()] for arm, cs in curves.items()}
        fig = band_plot(data, xlabel, f"val BLEU against {xlabel}: mean of seeds, band = lowest to highest",
                        logx=logx)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        figs[name] = out / name
    return figs


SHORTFALL = 1.0  # val BLEU below the recipe's reference by more than this flags the arm (seed noise is ~0.5)


def at_tokens(curve: tuple[np.ndarray, np.ndarray], tokens: int) -> float | None:
    """val BLEU at the first validation that had seen ``tokens`` target tokens (None: never)."""
    x, y = curve
    hit = np.nonzero(x >= tokens * 0.99)[0]  # the last validation lands a few batches short of it
    return float(y[hit[0]]) if hit.size else None


def recipe_rows(store: RunStore, configs: dict, runs: dict) -> list[dict]:
    """Each arm's recipe, its tuning budget and reference, and the arm's own val BLEU at that
    budget (mean over seeds) with a flag when it falls short: an arm below what its recipe
    reached when tuned is handicapped by something other than its architecture."""
    rows = {}
    for (arm, seed), c in configs.items():
        r, o = c.recipe, c.optim
        schedule = o.schedule + (f", cooldown {o.cooldown:g}" if o.cooldown else "")
        row = rows.setdefault(arm, {"arm": arm, "recipe": r.name if r else "(none)", "lr": c.optim.lr,
                                    "schedule": schedule, "warmup": c.optim.warmup_steps,
                                    "label_smoothing": c.optim.label_smoothing,
                                    "dropout": getattr(c.model, "dropout", None),
                                    "batch_tokens": c.trainer.batch_tokens,
                                    "tuned_by": r.tuned_by if r else "", "budget_tokens": r.budget_tokens if r else None,
                                    "reference": r.reference_val_bleu if r else None, "at_budget": []})
        if row["budget_tokens"]:
            v = at_tokens(run_curves(store, runs[arm, seed][1]).get("tokens", (np.array([]), np.array([]))),
                          row["budget_tokens"])
            if v is not None:
                row["at_budget"].append(v)
    for row in rows.values():
        got = row.pop("at_budget")
        row["val_bleu_at_budget"] = float(np.mean(got)) if got else None
        row["short"] = bool(got) and row["reference"] is not None and row["val_bleu_at_budget"] < row["reference"] - SHORTFALL
    return list(rows.values())


def _recipe_table(rows: list[dict]) -> list[str]:
    md = ["## Recipes", "",
          "| arm | recipe | lr | schedule | warm-up | label smoothing | dropout | batch tokens | tuning budget | "
          "recipe's val BLEU there | this arm's there | |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        budget = f"{r['budget_tokens']:,} tokens" if r["budget_tokens"] else "untuned"
        ref = f"{r['reference']:.2f}" if r["reference"] is not None else "-"
        got = f"{r['val_bleu_at_budget']:.2f}" if r["val_bleu_at_budget"] is not None else "not reached"
        flag = f"**below its recipe's reference by > {SHORTFALL:g}**" if r["short"] else ""
        md.append(f"| {r['arm']} | {r['recipe']} | {r['lr']:g} | {r['schedule']} | {r['warmup']} | "
                  f"{r['label_smoothing']:g} | {r['dropout'] if r['dropout'] is not None else '-'} | {r['batch_tokens']} | "
                  f"{budget} | {ref} | {got} | {flag} |")
    md += ["", "Each recipe is `conf/recipe/<name>.yaml`; where it came from: "
           + "; ".join(f"{r['recipe']}: {r['tuned_by']}" for r in {r['recipe']: r for r in rows}.values()), ""]
    return md


def verdict(p: PairResult, alpha: float) -> str:
    """What the report may claim about a pair: an ordering only where the Holm p is below
    ``alpha`` *and* the paired interval of the difference excludes 0 (sacreBLEU's test alone
    calls two identical outputs significant: p = 1 / (n + 1) when every resample ties)."""
    if p.p_holm >= alpha or abs(p.delta) <= p.delta_ci:
        return f"not significant at {alpha:g} (Holm p = {p.p_holm:.3g})"
    better, worse = (p.b, p.a) if p.delta > 0 else (p.a, p.b)
    return f"**{better} > {worse}**, Holm p = {p.p_holm:.3g}"


def aer_by_arm(store: RunStore, runs: dict) -> dict[str, dict]:
    """Arm -> its evaluate runs' AER against ``evaluate.alignment_gold`` (the default readout,
    one per seed, and their mean); arms whose evaluate had no gold set are left out."""
    out: dict[str, dict] = {}
    for (arm, _seed), (_, _, evaluate_id) in runs.items():
        data = store.get_run(evaluate_id)  # its RunRecord: tags, metrics
        readout = data.tags.get(N.TAG_ALIGN_READOUT)
        if readout and aer_key(readout) in data.metrics:
            got = out.setdefault(arm, {"readout": readout, "seeds": []})
            got["seeds"].append(data.metrics[aer_key(readout)])
    for got in out.values():
        got["mean"] = float(np.mean(got["seeds"]))
    return out


def _tables(cfg: PipelineConfig, systems: dict[str, SystemInterval], pairs: list[PairResult], search: str,
            aer: dict[str, dict] | None = None) -> list[str]:
    j, aer = cfg.journey, aer or {}
    cell = lambda arm: f" {aer[arm]['mean']:.2f} ({aer[arm]['readout']}) |" if arm in aer else " - |"  # noqa: E731
    md = [f"## Test BLEU, {j.split}, {search} ({len(j.seeds)} seeds each)", "",
          "| arm | overrides | each seed | pooled BLEU | 95% interval |" + (" AER (readout) |" if aer else ""),
          "|---|---|---|---|---|" + ("---|" if aer else "")]
    for arm, s in systems.items():
        md.append(f"| {arm} | {' '.join(j.arms[arm])} | {', '.join(f'{b:.2f}' for b in s.seeds)} | {s.bleu:.2f} | "
                  f"[{s.mean - s.ci:.2f}, {s.mean + s.ci:.2f}] |" + (cell(arm) if aer else ""))
    if aer:
        md += ["", "*AER*: word alignment error against evaluate.alignment_gold (0-100, lower is better), the mean "
               "over seeds of the readout named, by forced decoding on the gold references."]
    head = {"baseline": "against the baseline", "all": "every pair"}.get(str(j.pairs), "the pairs asked for")
    md += ["", f"## Differences, {head}", "",
           "| A | B | B - A | 95% interval of B - A | p | Holm p | verdict |", "|---|---|---|---|---|---|---|"]
    for p in pairs:
        md.append(f"| {p.a} | {p.b} | {p.delta:+.2f} | [{p.delta - p.delta_ci:+.2f}, {p.delta + p.delta_ci:+.2f}] | "
                  f"{p.p_value:.3g} | {p.p_holm:.3g} | {verdict(p, j.alpha)} |")
    return md


HOW_TO_READ = [
    "## How to read this", "",
    "- *pooled BLEU*: the corpus BLEU of all seeds' outputs together (the test set once per seed).",
    "- *95% interval*: a two-level bootstrap: each of the resamples draws the test sentences with replacement and, "
    "independently, the seeds with replacement; the interval holds the middle 95% of the resampled BLEU "
    "(sacreBLEU's convention, mean +- half-width). Seed-to-seed variance enters through the seed draw; with one "
    "seed the interval is exactly `sacrebleu --confidence`.",
    "- *B - A*: the same resamples for both arms (paired), so the difference's interval is narrower than the two "
    "intervals side by side suggest. An interval that excludes 0 is a gap these seeds and sentences support.",
    "- *p*: sacreBLEU's paired bootstrap (`--paired-bs`) on the pooled outputs, seed i of A beside seed i of B: "
    "the chance of a gap this large from sentence sampling alone. *Holm p*: adjusted over every pair in the table "
    "(Holm 1979), so the whole table's family-wise error stays below the level; an ordering is claimed only where "
    "the Holm p is below it and the interval of B - A excludes 0; otherwise the row says *not significant*.",
]


def budget_line(store: RunStore, cfg: PipelineConfig, runs: dict) -> str:
    """Which equal budget the runs had; for a token budget, how many train runs reached it
    (read from the store: each one's last ``train/tokens_seen``)."""
    j, parts = cfg.journey, []
    if j.budget_tokens:
        reached = sum(store.get_run(r[1]).metrics.get(N.TOKENS_SEEN, 0) >= j.budget_tokens for r in runs.values())
        parts.append(f"{j.budget_tokens:,} target tokens per run (trainer.max_target_tokens: the same work however "
                     f"busy the machine; {reached} of {len(runs)} runs reached it)")
    if j.budget_minutes:
        parts.append(f"{j.budget_minutes:g} minutes wall clock per run (trainer.max_minutes)")
    if not parts:
        return "each run's own trainer limits (no journey budget)"
    return " or ".join(parts) + (", whichever came first" if len(parts) > 1 else "")


def write_report(store: RunStore, cfg: PipelineConfig, systems: dict[str, SystemInterval], pairs: list[PairResult],
                 search: str, wall_s: float, figures: dict[str, Path], out: Path, runs: dict,
                 recipes: list[dict]) -> Path:
    """journey.md (figures beside it) and journey.json (every number, and the runs) under ``out``;
    ``store``: where the budget line reads how far each train run got."""
    j = cfg.journey
    budget, aer = budget_line(store, cfg, runs), aer_by_arm(store, runs)
    md = [f"# The journey, measured: {j.name}", "",
          f"{len(j.arms)} arms x {len(j.seeds)} seeds; budget: {budget}; whole journey {wall_s / 60:.1f} minutes wall time.",
          ""] + _tables(cfg, systems, pairs, search, aer) + [""] + _recipe_table(recipes)
    md += HOW_TO_READ + ["", "## Learning curves", ""]
    md += [f"![{name}]({name})" for name in figures] + [""]
    (out / N.JOURNEY_MD).write_text("\n".join(md) + "\n")
    data = {"name": j.name, "split": j.split, "search": search, "wall_s": wall_s, "alpha": j.alpha, "budget": budget,
            "systems": {a: s._asdict() for a, s in systems.items()}, "pairs": [p._asdict() for p in pairs],
            "recipe": j.recipe, "recipes": recipes, "aer": aer,
            "runs": [{"arm": a, "seed": s, "prepare": r[0], "train": r[1], "evaluate": r[2]}
                     for (a, s), r in runs.items()]}
    (out / N.JOURNEY_JSON).write_text(json.dumps(data, indent=2))
    return out / N.JOURNEY_MD
