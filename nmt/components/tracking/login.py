"""How we log in to a tracking server: exactly as MLflow's own client does, read by MLflow
(``mlflow.utils.credentials``), so whatever logs a plain ``MlflowClient`` in logs ``nmt`` in."""

from __future__ import annotations

from collections.abc import Callable

from mlflow.exceptions import MlflowException
from mlflow.utils import credentials as mc


def credentials(uri: str) -> tuple[tuple[str, str] | None, str | None, str]:
    """What MLflow's own client sends to ``uri``, read by MLflow (the environment, else
    ``~/.mlflow/credentials``; a token when there is no user and password):
    -> (user and password, token, where they came from, in words)."""
    creds = mc.get_default_host_creds(uri)
    if creds.username and creds.password:
        env_user = mc._read_mlflow_creds_from_env()[0]
        where = "MLFLOW_TRACKING_USERNAME/PASSWORD" if env_user else mc._get_credentials_path()
        return (creds.username, creds.password), None, f"user {creds.username!r} (from {where})"
    if creds.token:
        return None, creds.token, "the token in MLFLOW_TRACKING_TOKEN"
    return None, None, ("no credentials (none in MLFLOW_TRACKING_USERNAME/PASSWORD, "
                        f"{mc._get_credentials_path()} or MLFLOW_TRACKING_TOKEN)")


def refusal_line(err: Exception, uri_of: Callable[[], str]) -> str | None:
    """A tracking server's refusal of the store at ``uri_of()``, in one line: what was
    refused and what to do; None for any other error."""
    from nmt.components.tracking.uri import CREDENTIALS_HINT
    if not isinstance(err, MlflowException):
        return None
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else err.error_code
    uri = uri_of()
    who = credentials(uri)[2]
    if err.error_code == "PERMISSION_DENIED":
        return (f"{uri} refused this for {who} (HTTP 403: {first}); ask the server's admin for "
                "EDIT (runs) or MANAGE (model registry) permission")
    if err.error_code == "UNAUTHENTICATED":
        return f"{uri} refused {who} (HTTP 401); {CREDENTIALS_HINT}"
    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
        return f"{first}; check the name, version or run id against {uri}"
    return None

