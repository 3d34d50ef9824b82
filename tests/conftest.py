"""Shared fixtures: the real Multi30k files, a throw-away project home with its own SQLite
MLflow store, and one shrunken config that tests copy and extend."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# A run small enough for CI: 200 training pairs, tiny GRU, one epoch.
TINY = [
    "data.train_limit=200", "data.val_limit=40", "data.test_limit=30", "data.vocab_size=300",
    "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "model.dropout=0.0",
    "trainer.max_epochs=1", "trainer.max_minutes=null", "trainer.batch_tokens=1024",
    "trainer.val_bleu_limit=40", "trainer.log_every_n_steps=1", "evaluate.beam_size=2",
    "evaluate.num_samples=5", "demo_sentences=2",
]

# One training step: enough for a registry whose champion answers (serve, translate).
TINY_RUN = [
    "data.train_limit=200", "data.val_limit=20", "data.test_limit=10", "data.vocab_size=300",
    "model=gru", "model.emb_dim=24", "model.hidden_dim=40", "model.dropout=0.0",
    "trainer.max_epochs=1", "trainer.max_steps=1", "trainer.max_minutes=null", "trainer.num_threads=1",
    "trainer.precision=32", "evaluate.beam_size=1", "evaluate.num_samples=2", "evaluate.attention_samples=0",
    "demo_sentences=0",
]


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    raw = os.environ.get("MULTI30K_DIR") or str(ROOT.parent / "shared" / "data" / "multi30k")
    path = Path(raw)
    if not (path / "train.de.gz").is_file():
        pytest.fail(f"Multi30k not found at {path}: set MULTI30K_DIR to the raw task-1 files")
    return path


def _use_home(mp: pytest.MonkeyPatch, home: Path, multi30k_dir: Path) -> str:
    """Point the project (env and MLflow's in-process URI) at ``home``; returns the store URI."""
    home.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{home / 'mlflow.db'}"
    for var, value in {"NMT_HOME": str(home), "MULTI30K_DIR": str(multi30k_dir), "MLFLOW_TRACKING_URI": uri,
                       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}.items():
        mp.setenv(var, value)
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "SACREBLEU_SEED"):
        mp.delenv(var, raising=False)
    mlflow.set_tracking_uri(uri)  # MLflow keeps the last URI set in-process: never a stale store
    return uri


def _end_active_runs() -> None:
    while mlflow.active_run():
        mlflow.end_run("FAILED")


@pytest.fixture
def nmt_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, multi30k_dir: Path) -> Path:
    """A fresh project home: store, artifacts and caches under tmp_path."""
    _use_home(monkeypatch, tmp_path / "home", multi30k_dir)
    yield tmp_path / "home"
    _end_active_runs()


@contextlib.contextmanager
def module_home(tmp_path_factory: pytest.TempPathFactory, multi30k_dir: Path, name: str
                ) -> Iterator[tuple[Path, str]]:
    """A project home shared by one test module (build a store once, test it many times);
    the environment and torch's thread count are restored on exit."""
    home = tmp_path_factory.mktemp(name) / "home"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        uri = _use_home(mp, home, multi30k_dir)
        try:
            yield home, uri
        finally:
            _end_active_runs()
    torch.set_num_threads(threads)  # fit() may have set fewer threads for the whole process


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` run where CUDA is visible and are skipped elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
