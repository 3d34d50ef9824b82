"""A tracking URI the project cannot keep its runs in is one line naming it and what to give,
before MLflow is asked: MLflow answers a folder, a hosted store or a missing driver with a
traceback, and retries an SQLite folder or a missing database for about 100 s first."""

from __future__ import annotations

import importlib.util
import time

import pytest

from nmt.components.system.errors import ConfigError, ServiceError
from nmt.components.tracking.uri import check_uri, resolve_tracking_uri
from nmt.pipeline.cli import main


@pytest.mark.parametrize("uri, message", [
    ("file:///srv/mlruns", "a folder is MLflow's retired file store; give sqlite:///<path>.db, http(s)://"),
    ("mlruns", "a folder is MLflow's retired file store"),
    ("databricks", "not a store this project can use"),
    ("uc://catalog", "not a store this project can use"),
    ("nosuchdialect://host/db", "not a store this project can use"),
    ("http://", "no host; give sqlite:///<path>.db"),
    ("sqlite:///{tmp}", "{tmp} is a folder; name the database file in it"),
    ("sqlite:///{tmp}/a-file/mlflow.db", "{tmp}/a-file is a file, not a folder"),
    ("sqlite://", "the runs would live in this process's memory; give sqlite:///<path>.db"),
    ("sqlite:///:memory:", "the runs would live in this process's memory"),
])
def test_a_store_that_cannot_be_used_is_one_line(tmp_path, uri, message):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError) as err:
        check_uri(resolve_tracking_uri(uri.format(tmp=tmp_path)))  # as RunStore.open gives it
    text = str(err.value)
    assert text.startswith(f"tracking store {uri.format(tmp=tmp_path)} (tracking.uri / $MLFLOW_TRACKING_URI): ")
    assert message.format(tmp=tmp_path) in text and "\n" not in text


@pytest.mark.parametrize("uri", ["sqlite:///{tmp}/mlflow.db", "sqlite:///{tmp}/new/folders/mlflow.db",
                                 "http://127.0.0.1:5000", "https://user:pw@mlflow.example.org"])
def test_the_stores_in_use_pass(tmp_path, uri):
    check_uri(resolve_tracking_uri(uri.format(tmp=tmp_path)))  # MLflow makes an SQLite file's missing folders


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is not None, reason="MySQL's driver is installed here")
def test_a_database_without_its_driver_names_the_driver():
    with pytest.raises(ConfigError, match=r"the database driver for mysql:// is not installed \(MySQLdb\); install it"):
        check_uri("mysql://nmt@127.0.0.1:3306/mlflow")


@pytest.mark.services
def test_a_database_that_is_not_there_is_said_at_once(postgres):
    start = time.monotonic()
    with pytest.raises(ServiceError, match=r'cannot connect \(.*database "nmt_no_such_db" does not exist\); check'):
        check_uri("postgresql+psycopg2://postgres@127.0.0.1:5432/nmt_no_such_db")
    assert time.monotonic() - start < 30  # MLflow's own retries took ~100 s


def test_a_command_given_an_unusable_store_exits_2_with_one_line(nmt_home, capsys):
    assert main(["compare", "--tracking-uri", "file:///srv/mlruns"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("nmt: error: tracking store file:///srv/mlruns (tracking.uri / $MLFLOW_TRACKING_URI): ")
