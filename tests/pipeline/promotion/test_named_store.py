"""Every command reads the store it names (``--tracking-uri``, ``tracking.uri=``, else
``$MLFLOW_TRACKING_URI``, else ``$NMT_HOME``'s), ``models:/`` URIs included, and writes no
``mlflow.db`` into the folder it is run from. MLflow's in-process URI is reset to its
default first, as in a fresh ``nmt`` process (the other tests pin it to their store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking._model_registry import utils as registry_utils
from mlflow.tracking._tracking_service import utils as tracking_utils

from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import main

MODEL = "nmt-en-ar"


@pytest.fixture(scope="module")
def store_home(tmp_path_factory):
    """A store with one registered version that is not a translator (loading it fails after
    the registry found it); built once (making the tables takes seconds)."""
    home = tmp_path_factory.mktemp("named") / "home"
    home.mkdir()
    store = RunStore.open(f"sqlite:///{home / 'mlflow.db'}", "nmt")
    with store.run("train") as run:
        (home.parent / "MLmodel").write_text("flavors: {}\n")
        store.client.log_artifact(run.run_id, str(home.parent / "MLmodel"), "model")
    version = store.register(f"runs:/{run.run_id}/model", MODEL).version
    store.set_alias(MODEL, "champion", version)
    return home


@pytest.fixture
def home(store_home, tmp_path, monkeypatch):
    """The store, MLflow's in-process defaults, and an empty folder to run commands from."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(var, raising=False)
    # not the store, unless a case says so; beside the working folder, not in it (translate keeps
    # its copies of registered versions under the home)
    monkeypatch.setenv("NMT_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)  # MLflow's default: ./mlflow.db
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return store_home


def _ways(home):
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return {"flag": (["--tracking-uri", uri], {}), "override": ([f"tracking.uri={uri}"], {}),
            "NMT_HOME": ([], {"NMT_HOME": str(home)})}


@pytest.mark.parametrize("way", ["flag", "override", "NMT_HOME"])
def test_translate_loads_models_uri_from_the_named_store(home, way, monkeypatch, capsys):
    args, env = _ways(home)[way]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("Hallo.\n"))
    assert main(["translate", "--model-name", MODEL, *args]) == 2
    err = capsys.readouterr().err
    # found in the named store: the registry answered, and the version's files were read
    assert f"models:/{MODEL}@champion is not an nmt translator" in err, err[-2000:]
    assert list(Path.cwd().iterdir()) == []


def test_rollback_and_promote_use_the_named_store(home, monkeypatch, capsys):
    monkeypatch.setenv("NMT_HOME", str(home))
    assert main(["rollback", "--model-name", MODEL]) == 2
    assert f"{MODEL} has no @previous version" in capsys.readouterr().err
    assert main(["promote", "--model-name", MODEL, "--version", "1"]) == 2
    assert "has no upstream.prepare_run_id param" in capsys.readouterr().err  # found version 1 and its run
    assert main(["compare"]) == 2
    assert "no finished evaluate runs" in capsys.readouterr().err
    assert list(Path.cwd().iterdir()) == []


@pytest.mark.parametrize("command", [["rollback"], ["promote", "--version", "1"]])
def test_an_unknown_model_does_not_exist_and_the_registered_ones_are_listed(home, monkeypatch, capsys, command):
    monkeypatch.setenv("NMT_HOME", str(home))
    assert main([*command, "--model-name", "nmt-xx-yy"]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("nmt: error")]
    assert "registered model 'nmt-xx-yy' does not exist" in line and f"registered models: {MODEL}" in line
