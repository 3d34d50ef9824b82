"""Shared fixtures: the real Multi30k files, a throw-away project home with its own SQLite
MLflow store, and one shrunken config that tests copy and extend."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[1]

# A run small enough for CI: 200 training pairs, tiny GRU, one epoch.
TINY = [
    "data.train_limit=200", "data.val_limit=40", "data.test_limit=30", "data.vocab_size=300",
    "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "model.dropout=0.0",
    "trainer.max_epochs=1", "trainer.max_minutes=null", "trainer.batch_tokens=1024",
    "trainer.val_bleu_limit=40", "trainer.log_every_n_steps=1", "evaluate.beam_size=2",
    "evaluate.num_samples=5", "demo_sentences=2",
]


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    raw = os.environ.get("MULTI30K_DIR") or str(ROOT.parent / "shared" / "data" / "multi30k")
    path = Path(raw)
    if not (path / "train.de.gz").is_file():
        pytest.fail(f"Multi30k not found at {path}: set MULTI30K_DIR to the raw task-1 files")
    return path


@pytest.fixture
def nmt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multi30k_dir: Path) -> Path:
    """A fresh project home: store, artifacts and caches under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("NMT_HOME", str(home))
    monkeypatch.setenv("MULTI30K_DIR", str(multi30k_dir))
    uri = f"sqlite:///{home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)  # MLflow keeps the last URI set in-process: never a stale store
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(var, raising=False)
    yield home
    while mlflow.active_run():
        mlflow.end_run("FAILED")


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)
