"""``nmt server`` on the real PostgreSQL, and every command against it (no SQLite, no local
artifacts): run, stage reuse, sweep, promote, rollback, translate, compare, serve, and a
second project home that knows nothing but the server's URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.services import server
from tests.conftest import TINY, TINY_RUN, free_port, module_home, post_json, serving, tracking_server

pytestmark = [pytest.mark.slow, pytest.mark.services]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def served(tmp_path_factory, multi30k_dir, postgres):
    """A server, and a project home pointed at it holding two registered versions."""
    state = tmp_path_factory.mktemp("server")
    with tracking_server(state) as (cfg, url):
        with module_home(tmp_path_factory, multi30k_dir, "server-home", uri=url) as (home, _):
            assert main(["run", *TINY_RUN]) == 0
            assert main(["run", *TINY_RUN, "trainer.seed=7"]) == 0
            yield cfg, url, home, state


def _runs() -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    return client.search_runs([exp.experiment_id], max_results=1000)


def test_status_and_a_second_server_on_a_taken_port(served, tmp_path, capsys):
    cfg, url, _, state = served
    assert main(["server", "status", f"server.port={cfg.port}", f"server.state_dir={state}"]) == 0
    assert f"up: {url}" in capsys.readouterr().out
    assert (state / "server.pid").is_file() and "backend-store-uri postgresql" in (state / "server.log").read_text()
    taken = [f"server.port={cfg.port}", f"server.state_dir={tmp_path}", "server.database=nmt_unused"]
    assert main(["server", "up", *taken]) == 2
    assert f"port {cfg.port} on 127.0.0.1 is taken" in capsys.readouterr().err
    assert main(["server", "status", *taken]) == 3


def test_a_second_server_of_the_same_user_is_stopped_alone(served, tmp_path):
    """Two real `mlflow server`s of one user, each with its own record: `nmt server down` of
    the second stops the second (its port free again) and leaves the first serving."""
    cfg, url, _, state = served
    with tracking_server(tmp_path / "second") as (second, second_url):
        assert server.status(second).healthy and server.status(cfg).healthy
        assert main(["server", "down", f"server.port={second.port}", f"server.state_dir={second.state_dir}"]) == 0
        assert server.status(second).pid is None and not server._port_taken(second.host, second.port)
        first = server.status(cfg)
        assert first.pid is not None and first.healthy, "the first server was stopped too"


def test_postgres_not_answering_says_how_to_start_it(tmp_path, capsys):
    assert main(["server", "up", f"server.pg_port={free_port()}", f"server.state_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "PostgreSQL does not answer" in err and "pg_ctlcluster --skip-systemctl-redirect" in err
    assert not (tmp_path / "server.pid").exists()


@pytest.mark.parametrize("dest, message", [
    ("{tmp}/a-file", "server.artifacts_destination={tmp}/a-file is a file; give a folder (made if missing)"),
    ("{tmp}/a-file/arts", "server.artifacts_destination={tmp}/a-file/arts: {tmp}/a-file is a file, not a folder"),
    ("/proc/nmt-artifacts", "server.artifacts_destination=/proc/nmt-artifacts: cannot write in /proc"),
])
def test_an_artifacts_destination_that_cannot_be_a_folder_is_refused_before_anything(tmp_path, capsys, dest, message):
    """Else the server starts, and every artifact upload fails later."""
    (tmp_path / "a-file").write_text("x")
    argv = ["server", "up", f"server.port={free_port()}", f"server.state_dir={tmp_path / 'state'}",
            f"server.artifacts_destination={dest.format(tmp=tmp_path)}"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"nmt: error: {message.format(tmp=tmp_path)}"), line
    assert not (tmp_path / "state").exists()  # nothing made: no state folder, no database


def test_runs_artifacts_and_reuse_go_through_the_server(served):
    _, _, home, state = served
    runs = _runs()
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/") for r in runs)  # proxied
    assert not (home / "mlartifacts").exists() and not (home / "mlflow.db").exists()
    assert any((state / "artifacts").rglob("best.ckpt")), "artifacts reach the server's destination"
    before = len(runs)
    assert main(["run", *TINY_RUN]) == 0  # every stage reused: nothing new is logged
    assert len(_runs()) == before


def test_promote_rollback_translate_compare_and_serve(served, tmp_path, capsys):
    _, url, _, _ = served
    gate = ["--limit", "5", "--beam", "1", "--resamples", "50"]
    assert main(["promote", "--version", "2", "--force", *gate]) == 0
    client = MlflowClient()
    assert client.get_model_version_by_alias("nmt-de-en", "champion").version == "2"
    assert main(["rollback"]) == 0
    assert client.get_model_version_by_alias("nmt-de-en", "champion").version == "1"
    src = tmp_path / "in.de"
    src.write_text("Ein Hund läuft.\n\nZwei Männer spielen.\n")
    capsys.readouterr()
    assert main(["translate", "--file", str(src), "--beam", "1"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert len(out) == 4 and out[1] == "" and out[0] and out[2]
    assert main(["compare", "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.html").stat().st_size > 1000
    with serving(url, tmp_path / "serve.log") as base:
        status, body = post_json(f"{base}/invocations", json.dumps({"inputs": ["Ein Hund läuft."]}).encode())
    assert status == 200 and len(body["predictions"]) == 1


def test_commands_on_the_server_leave_no_download_behind(served, tmp_path):
    """A server's artifact downloaded without a destination lands, by MLflow, in a temp folder
    that nothing removes: compare (every run's samples and plots) leaves nothing in $TMPDIR."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", "compare", "--out", str(tmp_path / "report")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").is_file()
    assert [str(p.relative_to(tmp)) for p in tmp.rglob("*") if not p.is_dir()] == []


def test_a_fresh_home_loads_the_champion_and_promotes_from_the_server_alone(served, tmp_path, monkeypatch):
    _, url, _, _ = served
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    monkeypatch.setenv("NMT_HOME", str(fresh))
    monkeypatch.chdir(fresh)
    (tmp_path / "champion").mkdir()
    model = mlflow.pyfunc.load_model("models:/nmt-de-en@champion", dst_path=str(tmp_path / "champion"))
    assert len(model.predict(["Ein Hund läuft.", "Ein Mann."])) == 2
    assert main(["promote", "--version", "2", "--force", "--limit", "5", "--beam", "1"]) == 0
    assert MlflowClient().get_model_version_by_alias("nmt-de-en", "champion").version == "2"
    assert not (fresh / "mlartifacts").exists() and not (fresh / "mlflow.db").exists()


def test_a_sweep_on_the_server_logs_every_step_of_each_trial(served):
    args = [*TINY, "sweep=smoke", "sweep.num_samples=2", "sweep.scheduler.type=fifo", "trainer.max_epochs=2"]
    assert main(["sweep", *args]) == 0
    client = MlflowClient()
    trials = [r for r in _runs() if r.data.tags.get("nmt.stage") == "trial"]
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}
    for r in trials:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "train/loss_step")]
        epochs = [m.step for m in client.get_metric_history(r.info.run_id, "val/bleu")]
        assert len(steps) == len(set(steps)) > 0 and sorted(steps) == list(range(len(steps)))
        assert sorted(epochs) == [1, 2]


def test_a_silent_tracking_uri_fails_before_any_run(nmt_home, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    assert main(["run", *TINY_RUN]) == 2
    err = capsys.readouterr().err
    assert f"the tracking server {dead} does not answer" in err and "nmt server up" in err
    assert load_config().tracking.uri is None and not Path(nmt_home / ".nmt" / "cache").exists()


# database and connection errors (not any traceback: Ray prints one when it stops a finished
# trial's worker with SIGTERM, which says nothing of the store)
ERRORS = ("database is locked", "OperationalError", "IntegrityError", "psycopg2", "sqlalchemy.exc",
          "Connection refused", "ConnectionError", "ConnectionResetError", "RemoteDisconnected",
          "Max retries exceeded", "tracking store unreachable", "500 Internal", " 503 ")


def test_load_eight_concurrent_trials_log_every_step_with_nothing_lost(served, capfd):
    """8 trials at once, each writing a row per step through the server: 0 rows lost, and
    no database or connection error in the client's output or the server's log."""
    _, _, _, state = served
    log = state / "server.log"
    offset = log.stat().st_size
    args = [*TINY, "sweep=smoke", "sweep.name=load", "sweep.num_samples=8", "sweep.max_concurrent_trials=8",
            "sweep.resources.cpu=0.25", "sweep.scheduler.type=fifo", "trainer.max_epochs=2"]
    capfd.readouterr()
    assert main(["sweep", *args]) == 0
    client_out = "\n".join(capfd.readouterr())
    server_out = log.read_bytes()[offset:].decode(errors="replace")
    client = MlflowClient()
    parent = next(r for r in _runs() if r.data.tags.get("nmt.sweep") == "load")
    trials = [r for r in _runs() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
              and r.data.tags.get("nmt.stage") == "trial"]
    assert len(trials) == 8 and len({r.data.tags["nmt.trial_id"] for r in trials}) == 8
    for r in trials:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "train/loss_step")]
        assert sorted(steps) == list(range(len(steps))) and len(steps) > 0, "a step row was lost or doubled"
        assert sorted(m.step for m in client.get_metric_history(r.info.run_id, "val/bleu")) == [1, 2]
    for text, where in ((client_out, "client output"), (server_out, "server log")):
        found = [e for e in ERRORS if e in text]
        at = text.find(found[0]) if found else 0
        assert not found, f"{found} in the {where}:\n{text[max(0, at - 1500):at + 1500]}"
