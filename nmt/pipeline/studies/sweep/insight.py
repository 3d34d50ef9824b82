"""What a finished sweep says about its hyperparameters, logged under the sweep parent:
fANOVA importance (Hutter et al. 2014, through ``optuna.importance``) as a table and a bar
plot, and a parallel-coordinates figure of every trial (both drawn by Optuna's own
matplotlib plots from a study rebuilt out of the trial rows; no trial is re-run)."""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from nmt.components.tracking import names as N
from nmt.components.tracking.run import RunLog
from nmt.components.system.scratch import scratch

log = logging.getLogger("nmt")


def _distribution(spec: dict[str, Any]) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    kind = spec["type"]
    if kind == "choice":
        return CategoricalDistribution(list(spec["values"]))
    if kind == "randint":  # Tune's randint excludes high
        return IntDistribution(int(spec["low"]), int(spec["high"]) - 1)
    return FloatDistribution(float(spec["low"]), float(spec["high"]), log=kind == "loguniform")


def study_of(rows: list[dict[str, Any]], space: dict[str, dict[str, Any]]) -> Any:
    """An Optuna study holding each trial that reported val/bleu, with the space's distributions."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    dists = {k: _distribution(s) for k, s in space.items()}
    for r in rows:
        if math.isnan(r["val_bleu"]):
            continue
        params = {k: r["params"][k] for k in dists if k in r["params"]}
        study.add_trial(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                  value=r["val_bleu"]))
    return study


def importance(study: Any, seed: int = 0) -> dict[str, float]:
    """fANOVA: the share of val/bleu's variance each hyperparameter explains (sums to 1)."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    return dict(get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed)))


def log_insight(parent: RunLog, rows: list[dict[str, Any]], space: dict[str, dict[str, Any]],
                seed: int = 0) -> dict[str, float] | None:
    """Log importance.json/.png and parallel_coordinates.png under ``insight/`` of the sweep
    parent; None (with a tag saying why) when fewer than two trials finished or only one
    parameter varies."""
    study = study_of(rows, space)
    if len(study.trials) < 2:
        parent.set_tag(N.TAG_INSIGHT, f"skipped: {len(study.trials)} trial(s) reported val/bleu, fANOVA needs 2+")
        return None
    from optuna.visualization.matplotlib import plot_param_importances, plot_parallel_coordinate
    scores = importance(study, seed)
    with scratch("sweep-insight") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
        out = Path(tmp)
        (out / N.IMPORTANCE_JSON).write_text(json.dumps(scores, indent=2))
        for name, draw in ((N.IMPORTANCE_PNG, lambda: plot_param_importances(study)),
                           (N.PARALLEL_PNG, lambda: plot_parallel_coordinate(study))):
            ax = draw()
            ax.figure.set_size_inches(8, 4.5)
            ax.figure.tight_layout()
            ax.figure.savefig(out / name, dpi=100)
            plt.close(ax.figure)
        parent.log_artifacts(tmp, N.INSIGHT_DIR)
    parent.log_table({"hyperparameter": list(scores), "fanova_importance": list(scores.values())},
                     f"{N.INSIGHT_DIR}/{N.IMPORTANCE_TABLE}")
    return scores
