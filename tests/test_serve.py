"""``mlflow models serve`` on the registry's champion: a real server process on 127.0.0.1.

The store holds one tiny model (a single optimizer step: its translations are garbage,
but they are strings, one per input). The server starts in ~10 s and is always stopped,
with its whole process group (mlflow starts uvicorn as a child).
"""

from __future__ import annotations

import json

import pytest

from nmt.components.translator import MAX_CHARS, MAX_SENTENCES
from nmt.pipeline.cli import main
from tests.conftest import TINY_RUN, module_home, post_json as _post, serving

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def store_uri(tmp_path_factory, multi30k_dir):
    """A store whose nmt-de-en@champion is one tiny model."""
    with module_home(tmp_path_factory, multi30k_dir, "serve") as (_, uri):
        assert main(["run", *TINY_RUN]) == 0
    return uri


@pytest.fixture(scope="module")
def server(store_uri, tmp_path_factory):
    """Base URL of ``mlflow models serve -m models:/nmt-de-en@champion`` (stopped afterwards)."""
    with serving(store_uri, tmp_path_factory.mktemp("serve-log") / "server.log") as base:
        yield base


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


def test_in_process_predict_takes_any_number_of_sentences(store_uri, monkeypatch):
    """The REST limit is the endpoint's; a loaded pyfunc translates 2,500 sentences in batches."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    model = mlflow.pyfunc.load_model("models:/nmt-de-en@champion")
    texts = [f"Ein Hund läuft {i}." for i in range(2500)]
    out = model.predict(texts, params={"beam_size": 1})
    assert len(out) == 2500 and all(isinstance(t, str) for t in out)
