"""A :class:`~nmt.components.serving.requests.RequestError` as MLflow answers it.

MLflow's scoring server makes its JSON body and HTTP status only from an ``MlflowException``
(any other exception is a 400 with a stack trace), and in-process ``predict`` callers catch
``MlflowException``: the pyfunc translator and the REST guard raise :func:`served` of every
rejection. The plain :class:`RequestError` stays MLflow-free for ``nmt translate``.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode

from nmt.components.serving.requests import RequestError


class ServedRequestError(RequestError, MlflowException):
    """The same rejection (message, field, error code, extra fields), as an ``MlflowException``;
    still a RequestError, so ``except RequestError`` in our own code sees it."""

    def __init__(self, err: RequestError) -> None:
        # MLflow's __init__ makes error_code, sqlstate, error_class and json_kwargs as for any of
        # its errors; its first message assignment is the one RequestError.message keeps
        MlflowException.__init__(self, err.message, ErrorCode.Value(err.error_code), **err.json_fields)
        self.field, self.json_fields = err.field, err.json_fields

    serialize_as_json = MlflowException.serialize_as_json
    get_http_status_code = MlflowException.get_http_status_code


def served(err: RequestError) -> ServedRequestError:
    """``err`` as an ``MlflowException`` (itself when it is one already)."""
    return err if isinstance(err, ServedRequestError) else ServedRequestError(err)
