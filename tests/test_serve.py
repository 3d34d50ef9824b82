"""``mlflow models serve`` on the registry's champion: a real server process on 127.0.0.1.

The store holds one tiny model (a single optimizer step: its translations are garbage,
but they are strings, one per input). The server starts in ~10 s and is always stopped,
with its whole process group (mlflow starts uvicorn as a child).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from components.translator import MAX_CHARS, MAX_SENTENCES
from pipeline.cli import main
from tests.conftest import TINY_RUN, module_home

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory, multi30k_dir):
    """A store whose nmt-de-en@champion is one tiny model."""
    with module_home(tmp_path_factory, multi30k_dir, "serve") as (_, uri):
        assert main(["run", *TINY_RUN]) == 0
    return uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def server(store_uri, tmp_path_factory):
    """Base URL of ``mlflow models serve -m models:/nmt-de-en@champion`` (stopped afterwards)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    cmd = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", "models:/nmt-de-en@champion",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not up after {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (mlflow + uvicorn), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_serves_translations(server):
    status, body = _post(f"{server}/invocations",
                         json.dumps({"inputs": ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball."],
                                     "params": {"beam_size": 1}}).encode())
    assert status == 200, body
    assert list(body) == ["predictions"]
    assert len(body["predictions"]) == 2 and all(isinstance(p, str) for p in body["predictions"])


@pytest.mark.parametrize("payload, message", [
    ({"inputs": "Ein Hund läuft."}, "Expected list, but got str"),
    ({"inputs": [1, 2]}, "Expected type str, but got int"),
    ({"inputs": ["Ein Hund.", None]}, "Expected type str, but got NoneType"),
    ({"inputs": [["Ein", "Hund"]]}, "Expected type str, but got list"),
    ({"inputs": {"text": "Ein Hund."}}, "Expected list, but got dict"),
    ({"inputs": []}, "inputs is an empty list"),
    ({"inputs": ["Hund"] * (MAX_SENTENCES + 1)}, f"at most {MAX_SENTENCES}"),
    ({"inputs": ["Hund " * MAX_CHARS]}, f"at most {MAX_CHARS}"),
    ({"inputs": ["Ein Hund."], "params": {"beam_size": 0}}, "beam_size must be >= 1"),
    ({"inputs": ["Ein Hund."], "params": {"beam_size": "wide"}}, "beam_size"),
    ({"instances": ["Ein Hund."]}, "'inputs' key"),
    ("not json", "valid JSON"),
])
def test_malformed_payload_is_a_4xx_with_a_message(server, payload, message):
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    status, answer = _post(f"{server}/invocations", body)
    assert 400 <= status < 500, (status, answer)
    assert message in answer.get("message", ""), answer
    # and the server is still there
    assert _post(f"{server}/invocations", b'{"inputs": ["Hallo."], "params": {"beam_size": 1}}')[0] == 200
