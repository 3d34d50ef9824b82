"""The run store: the one module over MLflow (with the registry's), one run lifecycle, and no
process-global tracking state."""

import ast
import os
import pickle
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore

ROOT = Path(__file__).resolve().parents[3]
# model packaging (loaded inside `mlflow models serve`) and the server's own auth database
MAY_IMPORT_MLFLOW = {"nmt/components/tracking/store.py", "nmt/components/tracking/registry.py",
                     "nmt/components/tracking/retry.py",  # MLflow's exception, to tell a 4xx from an outage
                     "nmt/components/tracking/login.py",  # MLflow's own credentials reader
                     "nmt/components/serving/translator.py",  # and a request error as MLflow answers it
                     "nmt/components/serving/translator_model.py",
                     "nmt/components/serving/requests.py", "nmt/components/serving/rest.py",
                     "nmt/pipeline/services/server.py"}


def _imports_mlflow(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
            return True
    return False


def test_only_the_store_and_model_packaging_import_mlflow():
    found = {str(p.relative_to(ROOT)) for p in (ROOT / "nmt").rglob("*.py") if _imports_mlflow(p)}
    assert found <= MAY_IMPORT_MLFLOW, f"MLflow imported outside the run store: {sorted(found - MAY_IMPORT_MLFLOW)}"
    assert {"nmt/components/tracking/store.py", "nmt/components/tracking/registry.py"} <= found  # the check sees imports


def test_the_store_sets_no_global_tracking_uri(nmt_home, tmp_path):
    before, env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    store = RunStore.open(other, "elsewhere")
    with store.run("stage", params={"a": 1}) as run:
        run.log_metrics({"m": 2.0})
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == (before, env)
    assert MlflowClient(before).get_experiment_by_name("elsewhere") is None  # nothing went to the global store
    got = MlflowClient(other).get_run(run.run_id)
    assert (got.data.params, got.data.metrics, got.info.status) == ({"a": "1"}, {"m": 2.0}, "FINISHED")


@pytest.mark.parametrize("raised, status", [(RuntimeError("disk full\nmore"), "FAILED"),
                                            (KeyboardInterrupt(), "KILLED"), (SystemExit(1), "KILLED")])
def test_a_run_never_stays_running(nmt_home, raised, status):
    store = RunStore.open(None, "nmt")
    with pytest.raises(type(raised)), store.run("stage", tags={"k": "v"}) as run:
        raise raised
    got = store.get_run(run.run_id)
    assert got.status == status and got.tags["k"] == "v" and N.TAG_OWNER in got.tags
    assert got.tags.get(N.TAG_ERROR) == ("RuntimeError: disk full" if status == "FAILED" else None)


def test_a_resumed_run_is_running_and_ours_again_then_ends_by_its_block(nmt_home):
    store = RunStore.open(None, "nmt")
    with pytest.raises(RuntimeError), store.run("sweep") as first:
        raise RuntimeError("the driver died")
    store.set_tag(first.run_id, N.TAG_OWNER, "another-host:1")
    with store.run("ignored", resume=first.run_id, patient=True) as again:
        got = store.get_run(again.run_id)
        assert again.run_id == first.run_id and got.status == "RUNNING"
        assert got.tags[N.TAG_OWNER] != "another-host:1"
    assert store.get_run(first.run_id).status == "FINISHED"


def test_runs_nest_and_batches_split_at_the_stores_limits(nmt_home):
    store = RunStore.open(None, "nmt")
    parent = store.start("parent")
    child = store.start("child", parent=parent.run_id, params={f"p{i}": i for i in range(250)})
    child.set_tags({f"t{i}": i for i in range(150)})
    child.log_metrics({f"m{i}": float(i) for i in range(1200)})
    store.end(child.run_id, "FINISHED")
    store.end(parent.run_id, "FINISHED")
    got = store.get_run(child.run_id)
    assert got.tags[N.TAG_PARENT] == parent.run_id
    assert (len(got.params), len(got.metrics)) == (250, 1200)
    assert sum(k.startswith("t") for k in got.tags) == 150


def test_a_pickled_store_reconnects_where_it_lands(nmt_home):
    store = RunStore.open(None, "nmt")
    run = store.start("trial")
    copy = pickle.loads(pickle.dumps(store))
    assert copy._client is None and (copy.uri, copy.experiment_id) == (store.uri, store.experiment_id)
    copy.end(run.run_id, "FINISHED")
    assert store.get_run(run.run_id).status == "FINISHED"
