"""The registered translator is MLflow "models from code": no pickle in it, its code under
the one top-level name ``nmt``, so loading it inside an application with its own
``components`` package leaves that package alone. ``nmt translate/promote`` read only its
files into today's code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest
import yaml

from nmt.pipeline.cli import main
from nmt.components.tracking.store import RunStore
from nmt.pipeline.promotion.loading import load_translator
from tests.conftest import TINY_RUN, module_home

pytestmark = pytest.mark.slow
CHAMPION = "models:/nmt-de-en@champion"
SENTENCES = ["Ein Hund läuft im Park.", "Zwei Männer spielen."]


@pytest.fixture(scope="module")
def store(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "model-code") as (home, uri):
        assert main(["run", *TINY_RUN]) == 0
        yield home, uri


def test_the_logged_model_is_code_not_a_pickle(store, tmp_path):
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=CHAMPION, dst_path=str(tmp_path)))
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor.get("model_code_path", "").endswith("translator_model.py") and "python_model" not in flavor
    assert not list(local.rglob("*.pkl")) and (local / "code" / "nmt" / "components" / "serving" / "translator.py").is_file()
    assert not (local / "code" / "components").exists()  # no top-level name a host app may also use


def test_an_application_with_its_own_components_package_keeps_it(store, tmp_path):
    _, uri = store
    app = tmp_path / "app"
    (app / "components").mkdir(parents=True)
    (app / "components" / "__init__.py").write_text("")
    (app / "components" / "widgets.py").write_text("BUTTON = 'the app own widget'\n")
    script = textwrap.dedent(f"""
        import components
        import mlflow
        model = mlflow.pyfunc.load_model({CHAMPION!r}, dst_path={str(tmp_path)!r})
        print(len(model.predict({SENTENCES!r})))
        import components.widgets
        assert components.widgets.BUTTON == 'the app own widget', components.__file__
        print('widgets ok')
    """)
    env = {**os.environ, "PYTHONPATH": str(app), "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([sys.executable, "-c", script], cwd=app, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["2", "widgets", "ok"]
    assert "CloudPickle" not in done.stderr and "cloudpickle" not in done.stderr.lower()


def test_our_commands_load_the_files_into_today_s_code(store, tmp_path):
    ours = load_translator(RunStore.open(None, "nmt"), CHAMPION).predict(SENTENCES, params={"beam_size": 2})
    shipped = mlflow.pyfunc.load_model(CHAMPION, dst_path=str(tmp_path)).predict(SENTENCES, params={"beam_size": 2})
    assert ours == shipped and len(ours) == 2
