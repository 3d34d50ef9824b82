"""The REST endpoint's own reading of a request (``nmt.components.serving.rest``), in process: every
shape MLflow's scoring server would answer in its own words is our RequestError naming the
field, and the guard sits in front of the real ``scoring_server.invocations``. The same
requests through a real ``mlflow models serve`` are in test_serve.py."""

from __future__ import annotations

import json

import pytest
from mlflow.pyfunc import scoring_server

from nmt.components.serving import rest
from nmt.components.serving.requests import RequestError

JSON = "application/json"
NAME = "Erika Mustermann"


@pytest.fixture(autouse=True)
def in_server(monkeypatch):
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")


def refused(body, content_type: str | None = JSON) -> RequestError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(RequestError) as err:
        rest.read_request(raw, content_type)
    assert NAME not in err.value.message and "\n" not in err.value.message
    return err.value


@pytest.mark.parametrize("value", ["wide", "5", True, False, [5], {"n": 5}, 2.5, float("nan")])
def test_a_beam_size_of_the_wrong_type_names_the_field(value):
    err = refused({"inputs": [NAME], "params": {"beam_size": value}})
    assert err.field == "params.beam_size" and "must be a whole number" in err.message


@pytest.mark.parametrize("body, field", [
    ({"inputs": [NAME], "params": {"beams": 2}}, "params.beams"), ({"inputs": [NAME], "params": [2]}, "params"),
    ({"inputs": [NAME], "params": 2}, "params"), ({"inputs": NAME}, "inputs"), ({"inputs": [NAME, 2]}, "inputs[1]"),
    ({"inputs": [[NAME]]}, "inputs[0]"), ({"inputs": [{"text": NAME}]}, "inputs[0]"), ({"inputs": None}, "inputs"),
    ({"inputs": []}, "inputs"), ({"dataframe_split": {"data": [[NAME]]}}, "dataframe_split"),
    ({"dataframe_records": [{"t": NAME}]}, "dataframe_records"), ({"instances": [NAME]}, "instances"),
    ({"inputs": [NAME], "extra": 1}, "body.extra"), ({"inputs": [NAME], NAME * 3: 1}, "body"), ({}, "inputs"),
    ([NAME], "body"), (NAME, "body"), (None, "body"), (NAME.encode(), "body"), (b"", "body"), (b" \n", "body"),
    (NAME.encode("utf-16"), "body"), (b"[" * 50_000, "body"), (b'{"inputs": [1' + b"0" * 5000 + b"]}", "body"),
])
def test_every_malformed_body_names_its_field(body, field):
    assert refused(body).field == field


@pytest.mark.parametrize("content_type", [None, "text/csv", "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1", "application/json; format=pandas-split",
                                          "application/vnd.apache.parquet"])
def test_a_content_type_that_is_not_json_is_refused(content_type):
    assert refused({"inputs": [NAME]}, content_type).field == "Content-Type"


def test_a_good_request_is_read_and_null_params_take_their_defaults():
    texts, params = rest.read_request(json.dumps({"inputs": ["Ein Hund."], "params": {
        "beam_size": 3, "length_penalty": None}}).encode(), "application/json; charset=UTF-8")
    assert texts == ["Ein Hund."] and params == {"beam_size": 3}
    assert rest.read_request(b'{"inputs": ["x"], "params": null}', JSON) == (["x"], {})


def test_a_body_over_the_limits_is_refused_before_parsing():
    err = refused(b'{"inputs": ["' + b"x" * (rest.max_body_bytes() + 1) + b'"]}')
    assert err.field == "body" and "bytes; at most" in err.message


def test_the_guard_wraps_the_real_scoring_server_once_and_only_in_its_process(monkeypatch):
    monkeypatch.setattr(scoring_server, "invocations", scoring_server.invocations)  # restored afterwards
    monkeypatch.delenv(rest.SERVER_MODEL_ENV, raising=False)
    original = scoring_server.invocations
    assert not rest.install() and scoring_server.invocations is original
    monkeypatch.setenv(rest.SERVER_MODEL_ENV, "file:///nowhere")
    assert rest.install() and rest.install()
    guarded = scoring_server.invocations
    assert guarded is not original and guarded.__wrapped__ is original  # wrapped once
    with pytest.raises(RequestError) as err:  # MLflow's own parser would repeat this body
        guarded(f"{NAME} wohnt".encode(), JSON, None, None)
    assert err.value.field == "body" and NAME not in err.value.message


def test_an_error_past_the_guard_is_a_500_with_a_request_id(caplog):
    """A request the guard accepted that then fails in MLflow's layer (here: no model at
    all) is a 500 with a request id, never MLflow's message."""
    with pytest.raises(RequestError) as err:
        rest.guard(scoring_server.invocations)(json.dumps({"inputs": [NAME]}).encode(), JSON, None, None)
    assert err.value.error_code == "INTERNAL_ERROR" and "request id" in err.value.message and NAME not in err.value.message
    assert NAME not in caplog.text


@pytest.mark.parametrize("value", ["abc", "-5", "0", "inf", "nan", ""])
def test_a_bad_bound_in_the_environment_falls_back_to_the_default_with_a_warning(monkeypatch, caplog, value):
    from nmt.components.serving.bounds import memory_budget
    from nmt.components.serving.requests import MAX_SENTENCES, request_limit, work_limit
    for name in ("NMT_SERVE_MAX_SENTENCES", "NMT_SERVE_MAX_WORK", "NMT_DECODE_MEMORY_MB",
                 "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, value)
    assert request_limit() == MAX_SENTENCES and work_limit() == 16_200_000 and memory_budget() == 768 * 2**20
    assert ("is not a positive number" in caplog.text) == bool(value)


@pytest.mark.parametrize("digits", [b"1" + b"0" * 400, b"-1" + b"0" * 400])
def test_an_integer_param_of_hundreds_of_digits_is_out_of_bounds_not_a_500(digits):
    err = refused(b'{"inputs": ["x"], "params": {"beam_size": ' + digits + b"}}")
    assert err.field == "params.beam_size" and "out of bounds: 1 <= beam_size <= 16" in err.message
