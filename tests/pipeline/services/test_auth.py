"""``nmt server up server.auth=true``: MLflow's basic auth on the real server. An anonymous
write gets 401, a READ-only user's registration 403 (in one readable line), a wrong
password fails before any run, and the admin's ``nmt run`` goes through end to end."""

from __future__ import annotations

import base64
import json
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from tests.conftest import TINY_RUN, module_home, post_json, tracking_server

pytestmark = [pytest.mark.slow, pytest.mark.services]

ADMIN_PASSWORD = "s3cret-admin-pw"
READER, READER_PASSWORD = "reader", "reader-pw-123"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def secured(tmp_path_factory, multi30k_dir, postgres):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NMT_SERVER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        with tracking_server(tmp_path_factory.mktemp("auth-server"), "server.auth=true") as (cfg, url):
            mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
            mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
            with module_home(tmp_path_factory, multi30k_dir, "auth-home", uri=url) as (home, _):
                yield url, mp


def test_auth_needs_an_admin_password_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("NMT_SERVER_ADMIN_PASSWORD", raising=False)
    assert main(["server", "up", "server.auth=true", f"server.state_dir={tmp_path}", "server.port=1"]) == 2
    assert "needs the admin password in $NMT_SERVER_ADMIN_PASSWORD" in capsys.readouterr().err


def test_an_unauthenticated_write_is_refused_with_401(secured):
    url, _ = secured
    status, _ = post_json(f"{url}/api/2.0/mlflow/experiments/create", json.dumps({"name": "anon"}).encode())
    assert status == 401
    assert (post_json(f"{url}/api/2.0/mlflow/experiments/create", json.dumps({"name": "admin-made"}).encode(),
                      auth=_basic("admin", ADMIN_PASSWORD))[0]) == 200


def test_the_admin_runs_the_pipeline_and_a_reader_may_not_register(secured, capsys):
    url, mp = secured
    assert main(["run", *TINY_RUN]) == 0  # authenticated nmt run, end to end
    assert main(["train", *TINY_RUN, "trainer.seed=9"]) == 0  # a model not registered yet
    client = MlflowClient()
    assert client.get_model_version_by_alias("nmt-de-en", "champion").version == "1"
    train = client.search_runs([client.get_experiment_by_name("nmt").experiment_id],
                               "tags.`nmt.stage` = 'train' and params.`trainer.seed` = '9'")[0].info.run_id
    body = json.dumps({"username": READER, "password": READER_PASSWORD}).encode()
    assert post_json(f"{url}/api/2.0/mlflow/users/create", body, auth=_basic("admin", ADMIN_PASSWORD))[0] == 200
    mp.setenv("MLFLOW_TRACKING_USERNAME", READER)
    mp.setenv("MLFLOW_TRACKING_PASSWORD", READER_PASSWORD)
    capsys.readouterr()
    try:
        assert main(["promote", "--run", train, "--force", "--limit", "3", "--beam", "1"]) == 2
    finally:
        mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 403" in err[0] and "'reader'" in err[0] and "permission" in err[0]
    assert [v.version for v in MlflowClient().search_model_versions("name = 'nmt-de-en'")] == ["1"]


def test_a_wrong_password_fails_before_any_run(secured, monkeypatch, capsys):
    url, _ = secured
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    assert main(["run", *TINY_RUN, "trainer.seed=5"]) == 2
    err = capsys.readouterr().err
    assert f"the tracking server {url} refused user 'admin' (from MLFLOW_TRACKING_USERNAME/PASSWORD) (HTTP 401)" in err
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/runs/search", data=b'{"experiment_ids": ["1"]}',
                                 headers={"Content-Type": "application/json",
                                          "Authorization": _basic("admin", ADMIN_PASSWORD)})
    with urllib.request.urlopen(req) as resp:
        runs = json.loads(resp.read()).get("runs", [])
    assert not any(p.get("value") == "5" for r in runs for p in r["data"].get("params", [])
                   if p["key"] == "trainer.seed")


def test_mlflow_s_own_credentials_file_logs_in_and_a_refusal_names_the_source(secured, tmp_path, monkeypatch, capsys):
    """A plain MlflowClient logs in with ~/.mlflow/credentials alone: so does nmt."""
    url, _ = secured
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    creds = tmp_path / ".mlflow" / "credentials"
    creds.parent.mkdir()
    argv = ["compare", "--experiment", "from-file", "--tracking-uri", url]
    for password, expected in [(ADMIN_PASSWORD, "no finished evaluate runs to compare in experiment 'from-file'"),
                               ("wrong", f"refused user 'admin' (from {creds}) (HTTP 401)")]:
        creds.write_text(f"[mlflow]\nmlflow_tracking_username = admin\nmlflow_tracking_password = {password}\n")
        assert main(argv) == 2
        assert expected in capsys.readouterr().err
    creds.unlink()
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-token")
    assert main(argv) == 2
    assert "the token in MLFLOW_TRACKING_TOKEN (HTTP" in capsys.readouterr().err  # basic auth has no tokens
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    assert main(argv) == 2
    assert f"refused no credentials (none in MLFLOW_TRACKING_USERNAME/PASSWORD, {creds} or" in capsys.readouterr().err
