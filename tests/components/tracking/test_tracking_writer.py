"""The retrying metric writer against real MLflow stores: batching past log_batch's limit,
re-sent rows that the store drops, and a server that never answers."""

from __future__ import annotations

import time

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from nmt.components.tracking.retry import is_transient, retrying
from nmt.components.tracking.writer import MetricWriter
from nmt.components.system.errors import TrackingUnavailable
from tests.conftest import free_port


@pytest.fixture
def run_id(nmt_home) -> str:
    client = MlflowClient()
    exp = client.create_experiment("writer-test")
    return client.create_run(exp).info.run_id


def _rows(n: int, key: str = "train/loss", ts: int = 1_700_000_000_000) -> list[Metric]:
    return [Metric(key, float(i) / 7, ts + i, i) for i in range(n)]


def test_more_rows_than_one_batch_all_arrive_in_order(nmt_home, run_id):
    uri = MlflowClient().tracking_uri
    writer = MetricWriter(uri, run_id, deadline_s=30, capacity=10_000)
    writer.add(_rows(2500))
    writer.close()
    history = MlflowClient().get_metric_history(run_id, "train/loss")
    assert [m.step for m in history] == list(range(2500)) and writer.sent == 2500
    assert writer.unsent() == []


def test_a_row_sent_twice_is_stored_once(nmt_home, run_id):
    """What lets a retry after a lost answer, or a checkpoint's pending rows, be re-sent."""
    uri = MlflowClient().tracking_uri
    writer = MetricWriter(uri, run_id, deadline_s=30)
    writer.add(_rows(300))
    writer.flush()
    writer.add(_rows(300)[100:])  # the same rows again: same key, timestamp, step and value
    writer.close()
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 300


def test_a_server_that_never_answers_fails_the_writer_after_its_deadline(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = f"http://127.0.0.1:{free_port()}"
    writer = MetricWriter(dead, "0" * 32, deadline_s=2, capacity=5)
    start = time.monotonic()
    writer.add(_rows(5))
    with pytest.raises(TrackingUnavailable, match=r"did not answer for 2 s \(tracking.outage_deadline_s\)"):
        while time.monotonic() - start < 30:
            writer.add(_rows(1, key="more"))  # blocks on the full buffer, then raises
    assert 2 <= time.monotonic() - start < 30
    assert len(writer.unsent()) >= 5  # nothing was dropped silently: the rows are still there
    writer.close(flush=False)


def test_permanent_errors_are_not_retried(nmt_home):
    calls = []

    def missing_run():
        calls.append(1)
        return MlflowClient().get_run("f" * 32)
    with pytest.raises(Exception) as info:
        retrying(missing_run, "read a run", deadline_s=30)
    assert not is_transient(info.value) and len(calls) == 1
