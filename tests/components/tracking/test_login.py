"""nmt logs in to a tracking server as MLflow's own client does, in its order: the
environment, then ~/.mlflow/credentials, then a token; and says which source it used."""

from __future__ import annotations

import pytest

from nmt.components.tracking.login import credentials

URI = "http://127.0.0.1:5999"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mlflow").mkdir()
    return tmp_path


def test_the_environment_then_the_file_then_a_token(home, monkeypatch):
    creds = home / ".mlflow" / "credentials"
    assert credentials(URI) == (None, None, f"no credentials (none in MLFLOW_TRACKING_USERNAME/PASSWORD, {creds} "
                                            "or MLFLOW_TRACKING_TOKEN)")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    assert credentials(URI) == (None, "tok", "the token in MLFLOW_TRACKING_TOKEN")
    creds.write_text("[mlflow]\nmlflow_tracking_username = ann\nmlflow_tracking_password = pw-file\n")
    assert credentials(URI) == (("ann", "pw-file"), None, f"user 'ann' (from {creds})")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-env")
    assert credentials(URI) == (("bob", "pw-env"), None, "user 'bob' (from MLFLOW_TRACKING_USERNAME/PASSWORD)")
