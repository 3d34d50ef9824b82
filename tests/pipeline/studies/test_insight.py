"""Sweep insight: fANOVA importance and parallel coordinates under the sweep parent, from the
trial rows alone; system metrics; a failed run's one-line error as a tag."""

from __future__ import annotations

import json
import math
import random

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore
from nmt.pipeline.studies.sweep.insight import log_insight
from nmt.pipeline.studies.sweep.space import parse_space

SPACE = parse_space({"optim": {"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
                     "model": {"dropout": {"type": "uniform", "low": 0.0, "high": 0.5}},
                     "arch": {"type": "choice", "values": ["gru", "attention"]}})


def _rows(n: int = 24) -> list[dict]:
    """val/bleu driven by the learning rate alone: fANOVA must say so."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        lr, dropout, arch = 10 ** rng.uniform(-4, -2), rng.uniform(0, 0.5), rng.choice(["gru", "attention"])
        bleu = 30 - 40 * abs(math.log10(lr) + 3) ** 2 / 4 + rng.gauss(0, 0.05)
        rows.append({"params": {"optim.lr": lr, "model.dropout": dropout, "arch": arch}, "val_bleu": bleu})
    rows.append({"params": {"optim.lr": 1e-3, "model.dropout": 0.1, "arch": "gru"}, "val_bleu": float("nan")})
    return rows


def test_importance_finds_the_parameter_that_matters_and_logs_figures(nmt_home, tmp_path):
    client, run = MlflowClient(), RunStore.open(None, "insight").start("sweep")
    parent = run.run_id
    scores = log_insight(run, _rows(), SPACE)
    assert set(scores) == {"optim.lr", "model.dropout", "arch"}
    assert max(scores, key=scores.get) == "optim.lr" and scores["optim.lr"] > 0.8
    arts = {a.path for a in client.list_artifacts(parent, N.INSIGHT_DIR)}
    assert {f"{N.INSIGHT_DIR}/{n}" for n in (N.IMPORTANCE_JSON, N.IMPORTANCE_PNG, N.PARALLEL_PNG,
                                             N.IMPORTANCE_TABLE)} <= arts
    logged = json.loads(open(client.download_artifacts(parent, f"{N.INSIGHT_DIR}/{N.IMPORTANCE_JSON}", str(tmp_path))).read())
    assert logged == pytest.approx(scores)


def test_too_few_trials_says_why(nmt_home):
    run = RunStore.open(None, "insight").start("sweep")
    assert log_insight(run, _rows(1)[:1], SPACE) is None
    assert "fANOVA needs 2+" in MlflowClient().get_run(run.run_id).data.tags[N.TAG_INSIGHT]


def test_a_failed_stage_run_records_its_one_line_error(nmt_home):
    store = RunStore.open(None, "faults")
    with pytest.raises(ValueError):
        with store.run("train") as run:
            raise ValueError("model.d_model=7 must divide by num_heads=2\nsecond line of detail")
    got = MlflowClient().get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags[N.TAG_ERROR] == "ValueError: model.d_model=7 must divide by num_heads=2"
    assert mlflow.active_run() is None


def test_system_metrics_switch_logs_mlflows_system_metrics(nmt_home, monkeypatch):
    import time

    from nmt.pipeline.config import load_config
    from nmt.pipeline.stages.runner import Context
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.5")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    ctx = Context.create(load_config(["tracking.system_metrics=true"]))
    with ctx.store.run("train") as run:  # the store's monitor: no fluent switch to turn off
        time.sleep(3)
    keys = set(MlflowClient().get_run(run.run_id).data.metrics)
    assert any(k.startswith("system/cpu") for k in keys) and any(k.startswith("system/system_memory") for k in keys)
