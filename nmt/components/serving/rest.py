"""The REST endpoint reads every request itself, before MLflow's scoring server parses it.

``mlflow models serve`` answers several malformed requests in its own layer, before the
model's code runs, and those answers repeat the request: a body that is not JSON comes back
whole (``Input: ...``), a param of the wrong type (``"beam_size": "wide"``) fails MLflow's
params check and is prefixed with ``Failed to predict data '<the inputs>'``, other formats
(``dataframe_split``, ``instances``) and Content-Types get MLflow's messages, and an unknown
param name is dropped with only a warning. The server looks up its one per-request function,
``mlflow.pyfunc.scoring_server.invocations``, by name on every request, and it loads the
model before it builds the app; so :func:`install`, called when the translator loads inside
that server, wraps that function once. Every request then goes through :func:`read_request`
first: any shape it does not accept is a :class:`~nmt.components.serving.requests.RequestError`,
raised as MLflow's exception (HTTP 400 naming the field and what it expects), and only a request it accepted, re-encoded,
reaches MLflow's parsing and the model. Anything else that fails is a 500 with a request id.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from nmt.components.serving.inference import parse_params
from nmt.components.serving.requests import MAX_CHARS, RequestError, check_input, internal_error, request_limit
from nmt.components.serving.translator import SERVER_MODEL_ENV, served

log = logging.getLogger("nmt.serving")

JSON = "application/json"
FIELDS = ("inputs", "params")
OTHER_FORMATS = ("dataframe_split", "dataframe_records", "instances")  # MLflow's, refused here
EXAMPLE = '{"inputs": ["sentence", ...], "params": {"beam_size": 5}}'
_GUARD = "_nmt_request_guard"


def _content_type(content_type: str | None) -> None:
    """``application/json``, optionally ``; charset=utf-8``; else RequestError (the header is
    not repeated: it is the caller's text)."""
    mime, *rest = [p.strip().lower() for p in (content_type or "").split(";")]
    extra = {k.strip(): v.strip().strip('"') for k, _, v in (p.partition("=") for p in rest if p)}
    if mime != JSON or set(extra) - {"charset"} or extra.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise RequestError(f"Content-Type must be {JSON} (UTF-8), with a body like {EXAMPLE}", "Content-Type")


def max_body_bytes() -> int:
    """The largest body a request within the sentence and character limits can need (every
    character escaped as a surrogate pair ``\\uXXXX\\uXXXX``, 12 bytes), plus room for params."""
    return (request_limit() or 1000) * (MAX_CHARS * 12 + 8) + 65536


def _decode(data: bytes | str) -> Any:
    if not data or not data.strip():
        raise RequestError(f"the request body is empty; send {EXAMPLE}", "body")
    if len(data) > max_body_bytes():
        raise RequestError(f"the request body has {len(data)} bytes; at most {max_body_bytes()} "
                           "(the sentence and character limits); send several requests", "body")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RequestError(f"the request body is not UTF-8 (byte {err.start + 1}); send UTF-8 JSON", "body") from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:  # err.msg names the problem, never the text around it
        raise RequestError(f"the request body is not valid JSON ({err.msg}: line {err.lineno} column "
                           f"{err.colno}); send {EXAMPLE}", "body") from None
    except (ValueError, RecursionError) as err:  # e.g. an integer of 5000 digits, [[[...]]] nested 10^5 deep
        raise RequestError(f"the request body is JSON this server does not read ({type(err).__name__}); "
                           f"send {EXAMPLE}", "body") from None


def read_request(data: bytes | str, content_type: str | None) -> tuple[list[str], dict[str, Any]]:
    """A request's body -> (sentences, params without nulls), or RequestError naming the
    field (``Content-Type``, ``body``, ``inputs``, ``inputs[i]``, ``params``,
    ``params.<name>``) and what it expects. Never repeats the request's text."""
    _content_type(content_type)
    body = _decode(data)
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object like {EXAMPLE}, got {_kind(body)}", "body")
    for key in body:
        if key in OTHER_FORMATS:
            raise RequestError(f"{key} is not accepted by this model; send the sentences as a list: {EXAMPLE}", key)
        if key not in FIELDS:  # a short key is named; a long one may be text sent in the wrong place
            short = len(key) <= 40 and key.isprintable()
            raise RequestError(f"{f'body.{key}' if short else 'the request body has a key that is'} unknown; "
                               f"valid keys: {', '.join(FIELDS)}", f"body.{key}" if short else "body")
    if "inputs" not in body:
        raise RequestError(f"inputs is missing; send {EXAMPLE}", "inputs")
    params = body.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(f"params must be a JSON object like {{\"beam_size\": 5}}, got {_kind(params)}", "params")
    texts = check_input(body["inputs"])
    parse_params(params)  # names, types and bounds, before MLflow's own check of the numbers
    return texts, {k: v for k, v in params.items() if v is not None}


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def guard(invocations: Callable[..., Any]) -> Callable[..., Any]:
    """``invocations(data, content_type, model, input_schema)`` that reads the request first
    (:func:`read_request`) and turns anything but a RequestError into a 500 with a request id."""
    @functools.wraps(invocations)
    def guarded(data: Any, content_type: str | None, *args: Any, **kwargs: Any) -> Any:
        try:
            texts, params = read_request(data, content_type)
            clean = json.dumps({"inputs": texts, "params": params}).encode()
            return invocations(clean, JSON, *args, **kwargs)
        except RequestError as err:  # MLflow answers only its own exception with our body and status
            raise served(err) from None
        except Exception as err:  # MLflow's own messages may quote the request: none reaches the caller
            raise served(internal_error(err)) from None

    setattr(guarded, _GUARD, True)
    return guarded


def install() -> bool:
    """Wrap the scoring server's per-request function when this process is
    ``mlflow models serve``'s (``$__pyfunc_model_path__`` set); True when the guard is on."""
    if not os.environ.get(SERVER_MODEL_ENV):
        return False
    from mlflow.pyfunc import scoring_server
    current = getattr(scoring_server, "invocations", None)
    if not callable(current):  # a future MLflow without it: its own layer answers, as before
        log.warning("mlflow.pyfunc.scoring_server has no invocations(); malformed requests get MLflow's answers")
        return False
    if not getattr(current, _GUARD, False):
        scoring_server.invocations = guard(current)
    return True
