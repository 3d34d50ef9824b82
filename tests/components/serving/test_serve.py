"""``mlflow models serve`` on the registry's champion: a real server process on 127.0.0.1.

The store's champion is a tiny Transformer (max_positions 128; its translations are
garbage, but they are strings, one per input). The server starts in ~10 s and is always
stopped, with its whole process group (mlflow starts uvicorn as a child).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nmt.components.serving.bounds import MAX_BEAM
from nmt.components.serving.requests import MAX_CHARS, MAX_SENTENCES
from tests.conftest import ROOT, post_json as _post, serving

pytestmark = pytest.mark.slow



NAME = "Erika Mustermann"  # a person's name in a request: never in an answer or a log line
LONG = ("EIN MANN IN EINEM BLAUEN HEMD STEHT AUF EINER LEITER UND PUTZT EIN FENSTER. " * 30)[:1920]


@pytest.fixture(scope="module")
def store_uri(transformer_store):
    return transformer_store


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-log") / "server.log"


@pytest.fixture(scope="module")
def server(store_uri, server_log):
    """Base URL of ``mlflow models serve -m models:/nmt-de-en@champion`` (stopped afterwards)."""
    with serving(store_uri, server_log) as base:
        yield base


def alive(server: str) -> bool:
    with urllib.request.urlopen(f"{server}/ping", timeout=30) as resp:
        ok = resp.status == 200
    return ok and _post(f"{server}/invocations", b'{"inputs": ["Hallo."], "params": {"beam_size": 1}}')[0] == 200


def test_serves_translations(server):
    status, body = _post(f"{server}/invocations",
                         json.dumps({"inputs": ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball."],
                                     "params": {"beam_size": 1}}).encode())
    assert status == 200, body
    assert list(body) == ["predictions"]
    assert len(body["predictions"]) == 2 and all(isinstance(p, str) for p in body["predictions"])


def test_the_align_param_gives_pharaoh_links(server, store_uri, monkeypatch, tmp_path):
    """REST and in-process predict: ``align`` (declared in the signature) adds ``||| i-j ...``,
    on the words of the input and of the translation; anything but a boolean is a 400."""
    texts = ["Ein Hund läuft im Park.", "", "Zwei Männer spielen Fußball."]
    status, body = _post(f"{server}/invocations", json.dumps({"inputs": texts,
                                                               "params": {"beam_size": 2, "align": True}}).encode())
    assert status == 200, body
    plain = _post(f"{server}/invocations", json.dumps({"inputs": texts, "params": {"beam_size": 2}}).encode())[1]
    for line, text, hyp in zip(body["predictions"], texts, plain["predictions"]):
        out, links = line.split(" ||| ")
        pairs = [tuple(map(int, link.split("-"))) for link in links.split()]
        assert out == hyp and sorted(j for _, j in pairs) == list(range(len(hyp.split())))
        assert all(i < len(text.split()) for i, _ in pairs)
    status, body = _post(f"{server}/invocations", json.dumps({"inputs": texts, "params": {"align": "yes"}}).encode())
    assert status == 400 and body["field"] == "params.align" and "true or false" in body["message"]
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    assert _champion(store_uri, monkeypatch, tmp_path).predict(texts[1:2], params={"align": True}) == [" ||| "]


@pytest.mark.parametrize("payload, message", [
    ({"inputs": "Ein Hund läuft."}, "inputs must be a list of strings, got str"),
    ({"inputs": [1, 2]}, "inputs[0] is int, not a string"),
    ({"inputs": ["Ein Hund.", None]}, "inputs[1] is NoneType, not a string"),
    ({"inputs": [["Ein", "Hund"]]}, "inputs[0] is list, not a string"),
    ({"inputs": {"text": "Ein Hund."}}, "inputs must be a list of strings, got dict"),
    ({"inputs": None}, "inputs must be a list of strings, got NoneType"),
    ({"inputs": []}, "inputs is an empty list"),
    ({"inputs": ["Hund"] * (MAX_SENTENCES + 1)}, f"at most {MAX_SENTENCES}"),
    ({"inputs": ["Hund " * MAX_CHARS]}, f"at most {MAX_CHARS}"),
    ({"inputs": ["Ein Hund."], "params": {"beam_size": 0}}, "params.beam_size=0 is out of bounds: 1 <= beam_size"),
    ({"inputs": ["Ein Hund."], "params": {"beam_size": 2.5}}, "params.beam_size must be a whole number"),
    ({"inputs": ["Ein Hund."], "params": {"beam_size": "wide"}}, "beam_size"),
    ({"instances": ["Ein Hund."]}, "instances is not accepted"),
    ("not json", "valid JSON"),
])
def test_malformed_payload_is_a_4xx_with_a_message(server, payload, message):
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    status, answer = _post(f"{server}/invocations", body)
    assert 400 <= status < 500, (status, answer)
    assert message in answer.get("message", ""), answer
    assert "stack_trace" not in answer
    assert alive(server)  # and the server is still there


@pytest.mark.parametrize("params, field, bound", [
    ({"beam_size": 100000}, "params.beam_size", f"1 <= beam_size <= {MAX_BEAM}"),
    ({"max_len_ratio": -3}, "params.max_len_ratio", "0 < max_len_ratio <= 4"),
    ({"length_penalty": -1}, "params.length_penalty", "0 <= length_penalty <= 10"),
    ({"max_len_ratio": 1e6}, "params.max_len_ratio", "0 < max_len_ratio <= 4"),
    ({"beam_size": 17}, "params.beam_size", f"1 <= beam_size <= {MAX_BEAM}"),
])
def test_params_out_of_bounds_are_a_400_naming_field_and_bound(server, params, field, bound):
    status, answer = _post(f"{server}/invocations", json.dumps({"inputs": [f"{NAME} wohnt in Berlin."],
                                                                "params": params}).encode())
    assert status == 400 and answer["field"] == field and bound in answer["message"], answer
    assert NAME not in json.dumps(answer) and "stack_trace" not in answer
    assert alive(server)


def test_a_long_line_within_the_rest_limit_does_not_kill_the_batch(server, store_uri):
    status, answer = _post(f"{server}/invocations", json.dumps({"inputs": ["Ein Hund.", LONG, "Ein Hund."],
                                                                "params": {"beam_size": 2}}).encode())
    assert status == 200, answer
    first, long, last = answer["predictions"]
    assert first == last and first and long


def test_no_answer_and_no_log_line_holds_the_request_s_text(server, server_log):
    texts = [f"{NAME} wohnt in Berlin.", f"Das ist {NAME}s Hund."]
    requests = [{"inputs": texts, "params": {"beam_size": 100000}},
                {"inputs": texts, "params": {"length_penalty": -1}},
                {"inputs": [*texts, 5]},
                {"inputs": texts[0]},
                {"inputs": {"text": texts[0]}},
                {"inputs": [texts]},
                {"inputs": [*texts, NAME * 200]},
                {"inputs": texts * (MAX_SENTENCES // 2 + 1)},
                {"inputs": texts + [LONG], "params": {"beam_size": 1}},
                {"inputs": texts, "params": {"beam_size": 1, "beam": 3}}]
    for body in requests:
        status, answer = _post(f"{server}/invocations", json.dumps(body).encode())
        assert NAME not in json.dumps(answer) and "stack_trace" not in answer, answer
    assert server_log.read_text().count("POST /invocations") >= len(requests)  # the log is the right one
    assert NAME not in server_log.read_text() and "Mustermann" not in server_log.read_text()


def _post_raw(url: str, body: bytes, content_type: str | None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


JSON = "application/json"
SENT = [f"{NAME} wohnt in Berlin."]


@pytest.mark.parametrize("body, content_type, field, expected", [
    # params MLflow's own check refused, echoing the inputs; an unknown name it dropped silently
    ({"inputs": SENT, "params": {"beam_size": "wide"}}, JSON, "params.beam_size", "must be a whole number"),
    ({"inputs": SENT, "params": {"beam_size": True}}, JSON, "params.beam_size", "must be a whole number"),
    ({"inputs": SENT, "params": {"beam_size": [2, 3]}}, JSON, "params.beam_size", "must be a whole number"),
    ({"inputs": SENT, "params": {"length_penalty": {"x": 1}}}, JSON, "params.length_penalty", "a finite number"),
    ({"inputs": SENT, "params": {"beam": 3}}, JSON, "params.beam", "unknown; valid: beam_size"),
    ({"inputs": SENT, "params": [5]}, JSON, "params", "params must be a JSON object"),
    ({"inputs": SENT, "params": "beam_size=5"}, JSON, "params", "params must be a JSON object"),
    # MLflow's other input formats, and keys it does not know
    ({"dataframe_split": {"columns": ["text"], "data": [SENT]}}, JSON, "dataframe_split", "send the sentences as"),
    ({"dataframe_records": [{"text": SENT[0]}]}, JSON, "dataframe_records", "send the sentences as"),
    ({"instances": SENT}, JSON, "instances", "send the sentences as"),
    ({"inputs": SENT, "text": 1}, JSON, "body.text", "unknown; valid keys: inputs, params"),
    ({"inputs": SENT, f"{NAME} wohnt in Berlin und arbeitet in Hamburg.": 1}, JSON, "body", "unknown"),
    ({"params": {"beam_size": 1}}, JSON, "inputs", "inputs is missing"),
    # bodies that are not a JSON object, and Content-Types that are not JSON
    (f"{NAME} wohnt in Berlin.".encode(), JSON, "body", "not valid JSON (Expecting value"),
    (f'{{"inputs": ["{NAME} wohnt'.encode(), JSON, "body", "not valid JSON (Unterminated string"),
    (b"", JSON, "body", "the request body is empty"),
    (f"{NAME} wohnt".encode("latin-1") + b"\xe4", JSON, "body", "not UTF-8"),
    (json.dumps(SENT).encode(), JSON, "body", "must be a JSON object"),
    (b"[" * 100_000, JSON, "body", "JSON this server does not read"),
    ({"inputs": SENT}, "text/csv", "Content-Type", "must be application/json"),
    (f"text\n{NAME}\n".encode(), "text/csv", "Content-Type", "must be application/json"),
    ({"inputs": SENT}, "text/plain", "Content-Type", "must be application/json"),
    ({"inputs": SENT}, None, "Content-Type", "must be application/json"),
    ({"inputs": SENT}, "application/json; charset=latin-1", "Content-Type", "must be application/json"),
])
def test_every_malformed_request_is_our_400_without_the_text(server, server_log, body, content_type, field, expected):
    """Each shape MLflow's scoring server would answer in its own words (repeating the
    request, or with a stack trace): our 400, the field, what it expects, none of the text."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, text = _post_raw(f"{server}/invocations", raw, content_type)
    answer = json.loads(text)
    assert status == 400 and answer["field"] == field and expected in answer["message"], answer
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in answer
    assert "Mustermann" not in answer["message"] and "Berlin" not in text
    assert alive(server)
    assert "Mustermann wohnt" not in server_log.read_text()


def test_a_request_over_the_work_bound_is_refused_before_decoding(server):
    """Time is bounded like memory: a request whose estimated decoding outlasts the server's
    request timeout is a 400 naming the bound, answered at once (no decoding started)."""
    started = time.monotonic()
    status, answer = _post(f"{server}/invocations", json.dumps({
        "inputs": [LONG] * 200, "params": {"beam_size": MAX_BEAM, "max_len_ratio": 4}}).encode())
    assert status == 400 and answer["field"] == "inputs", answer
    assert "units of decoding work; at most 16.2M per request ($NMT_SERVE_MAX_WORK" in answer["message"], answer
    assert time.monotonic() - started < 20
    status, answer = _post(f"{server}/invocations", json.dumps({
        "inputs": [LONG] * 2, "params": {"beam_size": 2, "max_len_ratio": 1}}).encode())
    assert status == 200 and len(answer["predictions"]) == 2


def test_the_readme_error_body_is_what_the_server_answers(server):
    readme = (ROOT / "README.md").read_text()
    request = json.loads(re.search(r"-d '(\{\"inputs\".*?beam_size\": 100000.*?)'", readme).group(1))
    example = json.loads(re.search(r"^(\{\"error_code\".*\})$", readme, re.M).group(1))
    status, answer = _post(f"{server}/invocations", json.dumps(request).encode())
    assert status == 400 and answer == example

def _champion(store_uri, monkeypatch, dst):
    """The champion of this module's store, whatever store an earlier test made current
    (``mlflow.set_tracking_uri`` is process-global and wins over the environment)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store_uri)
    try:
        return mlflow.pyfunc.load_model("models:/nmt-de-en@champion", dst_path=str(dst))  # not a temp folder left behind
    finally:
        mlflow.set_tracking_uri(previous)


def test_in_process_predict_takes_any_number_of_sentences(store_uri, monkeypatch, tmp_path):
    """The REST limit is the endpoint's; a loaded pyfunc translates 2,500 sentences in batches."""
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", raising=False)
    model = _champion(store_uri, monkeypatch, tmp_path)
    texts = [f"Ein Hund läuft {i}." for i in range(2500)]
    out = model.predict(texts, params={"beam_size": 1})
    assert len(out) == 2500 and all(isinstance(t, str) for t in out)


def test_the_signature_is_list_of_strings_with_numeric_params(store_uri, monkeypatch, tmp_path):
    """The logged signature comes from predict's type hints (so the server hands ``inputs``
    over as sent), says list[str], and declares every param a number (double)."""
    meta = _champion(store_uri, monkeypatch, tmp_path).metadata
    assert meta._is_signature_from_type_hint()
    assert [c["type"] for c in meta.get_input_schema().to_dict()] == ["string"]  # one string per row
    assert {p.name: p.dtype.name for p in meta.get_params_schema().params} == {
        "beam_size": "double", "max_len_ratio": "double", "length_penalty": "double", "align": "boolean"}
