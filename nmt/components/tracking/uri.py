"""Where the run store lives and what names a run, without MLflow: the tracking URI (its
credentials moved out), a fail-fast server check, the reuse key that lets a finished stage
stand in for a re-run (MLflow multistep example), and a run's one-line error.
:mod:`nmt.components.tracking.store` builds on these."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from nmt.components.system.errors import ConfigError, ServiceError
from nmt.components.tracking import names as N
from nmt.components.system.paths import redact

_ROOT = Path(__file__).resolve().parents[3]


def project_home() -> Path:
    """Where the embedded store lives: ``$NMT_HOME``, else the checkout."""
    return Path(os.environ.get("NMT_HOME") or _ROOT).resolve()


def default_tracking_uri(home: Path | None = None) -> str:
    return f"sqlite:///{(home or project_home()) / 'mlflow.db'}"


def resolve_tracking_uri(configured: str | None) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else the embedded SQLite store.
    Always absolute: a relative URI breaks inside Ray trial directories."""
    uri = _credentials_out(configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri())
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////") and uri != "sqlite:///:memory:":
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    return uri


STORE_FORMS = ("sqlite:///<path>.db, http(s)://<host>:<port> of a tracking server (`nmt server up`), "
               "or a database URI such as postgresql+psycopg2://HOST/DB")


def check_uri(uri: str) -> None:
    """A tracking URI this project can keep its runs in, said in one line before MLflow is asked
    (which answers an unusable one with a traceback, or retries an SQLite path for minutes)."""
    from urllib.parse import urlsplit
    where = f"tracking store {redact(uri)} (tracking.uri / $MLFLOW_TRACKING_URI)"
    scheme = urlsplit(uri).scheme if "://" in uri or uri.startswith("sqlite:") else ""
    if uri.split(":", 1)[0] in ("databricks", "databricks-uc", "uc"):  # MLflow's hosted stores: not set up here
        raise ConfigError(f"{where}: not a store this project can use; give {STORE_FORMS}")
    if scheme in ("", "file"):  # a folder: MLflow's file store, in maintenance mode since MLflow 3
        raise ConfigError(f"{where}: a folder is MLflow's retired file store; give {STORE_FORMS}")
    if scheme == "sqlite":  # MLflow makes the database's missing folders; a folder itself, or a file on the way, no
        if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":  # runs that vanish with the process
            raise ConfigError(f"{where}: the runs would live in this process's memory; give sqlite:///<path>.db")
        db = Path(uri.removeprefix("sqlite:///"))
        on_the_way = next((p for p in db.parents if p.exists()), Path("/"))
        if db.is_dir() or not on_the_way.is_dir():
            raise ConfigError(f"{where}: " + (f"{db} is a folder; name the database file in it" if db.is_dir() else
                                              f"{on_the_way} is a file, not a folder; give sqlite:///<path>.db"))
    elif scheme in ("http", "https"):
        if not urlsplit(uri).hostname:
            raise ConfigError(f"{where}: no host; give {STORE_FORMS}")
    else:  # a database through SQLAlchemy: its driver must be installed
        try:
            from sqlalchemy.engine import make_url
            make_url(uri).get_dialect().import_dbapi()
        except ImportError as err:
            raise ConfigError(f"{where}: the database driver for {scheme}:// is not installed ({err.name}); "
                              "install it, or give " + ("postgresql+psycopg2://... (installed)" if
                                                        scheme == "postgresql" else STORE_FORMS)) from None
        except Exception:  # noqa: BLE001 - no such dialect (databricks, uc, a typo)
            raise ConfigError(f"{where}: not a store this project can use; give {STORE_FORMS}") from None
        _check_database(uri, where)


def _check_database(uri: str, where: str) -> None:
    """One connection, with a short timeout: MLflow would retry a database that is not there,
    or refuses the user, for about 100 s and then print a traceback."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    timeout = {"connect_timeout": 10} if uri.startswith(("postgresql", "mysql")) else {}
    engine = create_engine(uri, connect_args=timeout)
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as err:
        first = next((ln.strip() for ln in str(getattr(err, "orig", None) or err).splitlines() if ln.strip()), "")
        raise ServiceError(f"{where}: cannot connect ({redact(first)}); check that the database exists and "
                           "that its user may log in") from None
    finally:
        engine.dispose()


def _credentials_out(uri: str) -> str:
    """``http://user:pass@host`` -> ``http://host``, the pair moved to MLflow's credential
    variables: the URI is exported, logged, pickled by Tune and printed; they are not."""
    from urllib.parse import unquote, urlsplit, urlunsplit
    parts = urlsplit(uri)
    if not parts.scheme.startswith("http") or "@" not in parts.netloc:
        return uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(user))
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(password))
    return urlunsplit(parts._replace(netloc=host))


def check_server(uri: str, auth: tuple[str, str] | None = None, token: str | None = None,
                 source: str = "no credentials") -> None:
    """Fail fast, in one line, when a tracking server is down or refuses our credentials
    (MLflow's own client would retry for minutes, then print a traceback). ``auth`` or
    ``token``: what MLflow's client would send (:func:`nmt.components.tracking.store.credentials`),
    ``source``: where they came from, for the message."""
    import requests
    if not uri.startswith(("http://", "https://")):
        return
    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=10)
    except requests.RequestException as err:
        raise ServiceError(f"the tracking server {redact(uri)} does not answer ({type(err).__name__}); start it "
                          "(`nmt server up`) or fix MLFLOW_TRACKING_URI / tracking.uri") from None
    headers = {"Authorization": f"Bearer {token}"} if token and not auth else {}
    r = requests.get(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     auth=auth, headers=headers, timeout=30)
    if r.status_code == 401:
        raise ServiceError(f"the tracking server {redact(uri)} refused {source} (HTTP 401): {CREDENTIALS_HINT}")
    # e.g. a basic-auth server given a token answers 500, which MLflow's client retries for minutes
    if r.status_code >= 500 and (auth or token):
        raise ServiceError(f"the tracking server {redact(uri)} failed on a request with {source} (HTTP "
                           f"{r.status_code}); see the server's log, or {CREDENTIALS_HINT}")


# MLflow's own order (mlflow.utils.credentials): the environment, then the file, then a token
CREDENTIALS_HINT = ("give an account on that server the way MLflow reads it, first found first: "
                    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, else ~/.mlflow/credentials "
                    "([mlflow] mlflow_tracking_username = ..., mlflow_tracking_password = ...), "
                    "else MLFLOW_TRACKING_TOKEN")


def reuse_key(stage: str, params: Mapping[str, str], code: str) -> str:
    """Entry point + parameters (as strings) + the stage's code version
    (:func:`nmt.components.system.code_version.code_version`); upstream run ids are params."""
    blob = json.dumps({"stage": stage, "params": {k: str(v) for k, v in params.items()},
                       "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def stage_tags(stage: str, params: Mapping[str, str], code: str) -> dict[str, str]:
    """The tags a reusable run carries: its stage, code version and :func:`reuse_key`."""
    return {N.TAG_STAGE: stage, N.TAG_CODE_VERSION: code, N.TAG_REUSE_KEY: reuse_key(stage, params, code)}


def error_line(err: BaseException) -> str:
    """An exception in one line, ``Type: first line of its message``, short enough for a tag."""
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
    return f"{type(err).__name__}: {first}"[:500] if first else type(err).__name__
