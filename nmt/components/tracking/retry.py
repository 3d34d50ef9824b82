"""Retrying a call to the tracking store through an outage: which errors may pass (a refused
connection, a timeout, a 5xx) and which never will (a 4xx answer)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from mlflow.exceptions import MlflowException as StoreError

from nmt.components.system.errors import TrackingUnavailable

log = logging.getLogger("nmt")
T = TypeVar("T")
_PERMANENT = {"PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST",
              "BAD_REQUEST", "INVALID_STATE"}


def is_transient(err: BaseException) -> bool:
    """A refused connection, a timeout or a 5xx may pass; a 4xx answer will not."""
    if isinstance(err, StoreError):
        return err.error_code not in _PERMANENT
    return isinstance(err, (OSError, ConnectionError, TimeoutError))


def not_found(err: BaseException) -> bool:  # e.g. no such run, model or alias
    return isinstance(err, StoreError) and err.error_code == "RESOURCE_DOES_NOT_EXIST"


def retrying(call: Callable[[], T], what: str, deadline_s: float, uri: str = "") -> T:
    """``call()`` until it succeeds, backing off 0.5 s -> 10 s, for at most ``deadline_s``
    seconds of failure; a permanent error (4xx) is raised at once."""
    start, delay, warned = time.monotonic(), 0.5, False
    while True:
        try:
            return call()
        except Exception as err:  # noqa: BLE001 - classified just below
            if not is_transient(err):
                raise
            if time.monotonic() - start > deadline_s:
                raise TrackingUnavailable(
                    f"the tracking store {uri or ''} did not answer for {deadline_s:g} s "
                    f"(tracking.outage_deadline_s) while trying to {what}: {str(err).splitlines()[0][:200]}"
                ) from None
            if not warned:
                log.warning("tracking store unreachable (%s); retrying for up to %g s", what, deadline_s)
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
