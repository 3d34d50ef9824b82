"""The translator's answers to bad requests: the product's own errors, whichever way in.

MLflow's scoring server (``mlflow models serve``) turns an ``MlflowException`` raised in
``predict`` into its JSON body and HTTP status (``INVALID_PARAMETER_VALUE`` -> 400,
``INTERNAL_ERROR`` -> 500), but first rewrites its message to ``Failed to predict data
'<the whole input>'. Error: ...``, and any other exception becomes a 400 with a
``stack_trace``. :class:`RequestError` keeps the message it was made with, so the body is::

    {"error_code": "INVALID_PARAMETER_VALUE", "message": "params.beam_size=100000: at most 16",
     "field": "params.beam_size", ...}

never the caller's text, never a stack trace; :func:`internal_error` makes a 500 that carries
only a request id, with the details in the server log. Input text is never logged.

:class:`RequestError` itself is a plain exception: ``nmt translate`` raises and answers it
without importing MLflow (its ~1 s import was most of a one-sentence call). Where MLflow
answers (the pyfunc ``predict``, the REST endpoint) it leaves as its
:class:`~nmt.components.serving.translator.ServedRequestError`, an ``MlflowException``.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
import uuid
from typing import Any

log = logging.getLogger("nmt.serving")

MAX_SENTENCES = 1000        # per REST request; $NMT_SERVE_MAX_SENTENCES changes it
MAX_CHARS = 2000            # per sentence, REST only (the CLI and in-process predict take any length)
SERVE_LIMIT_ENV = "NMT_SERVE_MAX_SENTENCES"
SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"  # set by MLflow's scoring server in its process
WORK_ENV = "NMT_SERVE_MAX_WORK"
TIMEOUT_ENV = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"  # MLflow answers 504 after it (default 60 s)
WORK_RATE = 360_000           # decoding work per second on the benchmark's 2-core CPU (nmt.components.serving.bounds)
WORK_SHARE = 0.75           # of that timeout a request's estimated decoding may take
# MLflow's error codes by name (mlflow.protos.databricks_pb2.ErrorCode): its HTTP status comes from the name
INVALID_PARAMETER_VALUE, INTERNAL_ERROR, TEMPORARILY_UNAVAILABLE = (
    "INVALID_PARAMETER_VALUE", "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE")


class RequestError(Exception):
    """A rejected request: HTTP 400 (or ``error_code``'s status) with ``message`` as written.

    ``field`` (``inputs[3]``, ``params.beam_size``) goes into the JSON body beside it;
    ``error_code`` is the name of MLflow's code (``INVALID_PARAMETER_VALUE``)."""

    def __init__(self, message: str, field: str | None = None, error_code: str = INVALID_PARAMETER_VALUE,
                 **extra: Any) -> None:
        super().__init__(message)
        self.message, self.field, self.error_code = message, field, error_code
        self.json_fields = {**({"field": field} if field else {}), **extra}  # beside error_code and message

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        # the first assignment is __init__'s; later ones are the scoring server's
        # "Failed to predict data '<input>'" prefix, which would echo the request
        if not hasattr(self, "_message"):
            self._message = value

    # MLflow's JSON body and HTTP status, asked of MLflow only when one is wanted
    def serialize_as_json(self) -> str:
        return self._as_mlflow().serialize_as_json()

    def get_http_status_code(self) -> int:
        return self._as_mlflow().get_http_status_code()

    def _as_mlflow(self) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode
        return MlflowException(self.message, ErrorCode.Value(self.error_code), **self.json_fields)


def in_server() -> bool:
    """True inside ``mlflow models serve`` (its limits apply only there)."""
    return os.environ.get(SERVING_ENV, "").lower() == "true"


def request_limit() -> int | None:
    """Sentences allowed in one request: a bound for the REST endpoint only; an in-process
    ``predict`` takes any number, in batches."""
    return int(env_number(SERVE_LIMIT_ENV, MAX_SENTENCES)) if in_server() else None


def env_number(name: str, default: float) -> float:
    """A positive number from the environment; ``default`` (and a warning naming the variable)
    when it is unset, empty or not a positive number, so a typo cannot fail every request."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        log.warning("$%s=%r is not a positive number; using %g", name, raw[:40], default)
        return default
    return value


def request_timeout() -> float:
    """Seconds MLflow's server gives a request before its 504 (``mlflow models serve -t``)."""
    return env_number(TIMEOUT_ENV, 60)


def work_limit() -> int | None:
    """Decoding work one REST request may ask for (see :func:`nmt.components.serving.bounds.decode_work`):
    ``$NMT_SERVE_MAX_WORK``, else what the benchmark's CPU decodes in 3/4 of the request
    timeout (16.2M at 60 s). None outside the server: the CLI and ``predict`` have no timeout."""
    if not in_server():
        return None
    return int(env_number(WORK_ENV, WORK_RATE * WORK_SHARE * request_timeout()))


def request_deadline() -> float | None:
    """``time.monotonic()`` past which MLflow has already answered this request with its 504
    (None outside the server): decoding stops there instead of running on for nobody."""
    return time.monotonic() + request_timeout() if in_server() else None


def past_deadline(deadline: float | None, done: int, total: int) -> None:
    """RequestError 503 (logged as a warning, counts only) when ``deadline`` has passed with
    ``done`` of ``total`` sentences decoded; the caller has had MLflow's 504 by then."""
    if deadline is None or time.monotonic() <= deadline:
        return
    log.warning("request past the %g s timeout after %d of %d sentences; decoding stopped (lower $%s)",
                request_timeout(), done, total, WORK_ENV)
    raise RequestError(f"the request ran past the {request_timeout():g} s timeout after {done} of {total} sentences; "
                       f"send fewer or shorter sentences", "inputs", error_code=TEMPORARILY_UNAVAILABLE)


def _as_list(texts: Any) -> list[Any]:
    if hasattr(texts, "iloc"):  # pandas (models logged before the type hints): one column of strings
        if texts.ndim == 2 and texts.shape[1] != 1:
            raise RequestError(f"inputs must be one column of strings, got {texts.shape[1]} columns", "inputs")
        texts = (texts.iloc[:, 0] if texts.ndim == 2 else texts).tolist()
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise RequestError(f"inputs must be a list of strings, got {type(texts).__name__}", "inputs")
    return list(texts)


def check_input(texts: Any) -> list[str]:
    """A non-empty list of strings, within the REST limits when served; else :class:`RequestError`
    naming the field (``inputs``, ``inputs[i]``) and the bound, never the text."""
    texts = _as_list(texts)
    if not texts:
        raise RequestError("inputs is an empty list; send at least one sentence", "inputs")
    limit = request_limit()
    if limit is not None and len(texts) > limit:
        raise RequestError(f"{len(texts)} sentences in one request; at most {limit} (${SERVE_LIMIT_ENV} "
                           "on the server); send them in several requests", "inputs")
    chars = MAX_CHARS if in_server() else None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise RequestError(f"inputs[{i}] is {type(t).__name__}, not a string", f"inputs[{i}]")
        if chars is not None and len(t) > chars:
            raise RequestError(f"inputs[{i}] has {len(t)} characters; at most {chars}", f"inputs[{i}]")
    return texts


def internal_error(err: BaseException) -> RequestError:
    """A 500 carrying a request id; the traceback goes to the server log under that id.
    The exception's own message stays out of the log at ERROR: it may quote the input."""
    rid = uuid.uuid4().hex[:12]
    frames = "".join(traceback.format_tb(err.__traceback__))
    log.error("request %s failed: %s (message at DEBUG)\n%s", rid, type(err).__name__, frames.rstrip())
    log.debug("request %s: %s", rid, err)
    return RequestError(f"internal error (request id {rid}); the server log has the details",
                        error_code=INTERNAL_ERROR, request_id=rid)
