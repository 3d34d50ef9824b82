"""The GPU check's one table, read back from the MLflow store that gpu_check.sh filled.

    python -m benchmarks.gpu_report --tests <pytest summary line> [--budget-s 45]
"""

from __future__ import annotations

import argparse

from mlflow.tracking import MlflowClient

from benchmarks.common import machine
from nmt.components.tracking import names as N


def _history_s(client: MlflowClient, run, key: str) -> list[tuple[float, float]]:
    """(seconds after the run started, value) for each row of ``key``."""
    return [((m.timestamp - run.info.start_time) / 1000, m.value)
            for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.timestamp)]


def _process_start_ms(client: MlflowClient, run) -> float | None:
    """When the process that trained ``run`` started: its first-step row's time minus the
    seconds from the process's start that the row holds."""
    rows = client.get_metric_history(run.info.run_id, N.TO_FIRST_STEP)
    return rows[0].timestamp - rows[0].value * 1000 if rows else None


def time_to_bleu(client: MlflowClient, run, evaluate) -> str:
    """``val BLEU 6.1 @ 21 s, 15.3 @ 38 s, ...; test beam 5 @ 75 s``: seconds from the
    process's start (imports and prepare included) to each validation and to the test score."""
    start = _process_start_ms(client, run)
    if start is None:
        return "time to BLEU: no first-step row"
    vals = sorted(client.get_metric_history(run.info.run_id, N.VAL_BLEU), key=lambda m: m.timestamp)
    text = "val BLEU " + (", ".join(f"{m.value:.1f} @ {(m.timestamp - start) / 1000:.0f} s" for m in vals) or "-")
    if evaluate is not None and evaluate.info.end_time:
        text += f"; test scored @ {(evaluate.info.end_time - start) / 1000:.0f} s"
    return text


def _mean(rows: list[tuple[float, float]]) -> float:
    return sum(v for _, v in rows) / len(rows) if rows else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tests", default="?")
    args = ap.parse_args()
    from nmt.components.tracking.uri import resolve_tracking_uri
    client = MlflowClient(resolve_tracking_uri(None))  # the store the nmt commands used ($NMT_HOME)
    exp = client.get_experiment_by_name("nmt")
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    print(f"# GPU check\n# {machine()}\n\n| what | figure |\n|---|---|\n| GPU tests | {args.tests} |")
    for r in runs:
        if r.data.tags.get("nmt.stage") == "train":
            m = r.data.metrics
            ev = [e for e in runs if e.data.tags.get("nmt.stage") == "evaluate"
                  and e.data.params.get("upstream.train_run_id") == r.info.run_id]
            test = ev[0].data.metrics.get("test_2016_flickr/beam5/bleu") if ev else None
            print(f"| single run ({r.data.params.get('model.arch')} d={r.data.params.get('model.d_model')}, "
                  f"{r.data.params.get('trainer.max_minutes')} min budget, {r.data.tags.get('nmt.precision')}) | "
                  f"start-up {m.get(N.TO_FIRST_STEP, float('nan')):.1f} s (train stage "
                  f"{m.get(N.STAGE_TO_FIRST_STEP, float('nan')):.1f} s); train {m.get(N.TRAIN_TIME, 0):.0f} s, "
                  f"{_mean(_history_s(client, r, 'train/tokens_per_s')):,.0f} tokens/s; best val BLEU "
                  f"{m.get('best/val_bleu', float('nan')):.2f}; test_2016_flickr beam 5: "
                  f"{test if test is None else round(test, 2)}; {time_to_bleu(client, r, ev[0] if ev else None)} |")
    for name in ("pack", "alone"):
        trials = [r for r in runs if r.data.tags.get("nmt.stage") == "trial"
                  and any(p.data.tags.get("nmt.sweep") == name and p.info.run_id == r.data.tags.get("mlflow.parentRunId")
                          for p in runs)]
        if not trials:
            continue
        rates = [_mean(_history_s(client, t, "train/tokens_per_s")) for t in trials]
        best = [max((v for _, v in _history_s(client, t, "val/bleu")), default=float("nan")) for t in trials]
        peak = [t.data.metrics.get("gpu/peak_mem_mb", float("nan")) for t in trials]
        print(f"| sweep `{name}`: {len(trials)} trial(s), {trials[0].data.tags.get('nmt.resources')} each | "
              f"aggregate {sum(rates):,.0f} tokens/s (per trial {min(rates):,.0f}-{max(rates):,.0f}); "
              f"best val BLEU per trial {min(best):.1f}-{max(best):.1f}; peak memory {max(peak):,.0f} MB |")


if __name__ == "__main__":
    main()
