"""``nmt server up|down|status``: the team's MLflow tracking server as a service.

PostgreSQL is the backend store (role and database created here), artifacts are proxied
(``--artifacts-destination``: clients never write to the server's disk), the server binds
loopback unless told otherwise, and basic auth is one option away. The server runs in its
own process session, logs to ``<state_dir>/server.log`` and records its pid, so ``down``
and ``status`` find it again.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from nmt.components.config import ConfigError
from nmt.components.paths import local_path, path_or_uri
from nmt.components.tracking import pid_alive, project_home
from nmt.pipeline.services.settings import ServerConfig

ADMIN_PASSWORD_ENV = "NMT_SERVER_ADMIN_PASSWORD"
DB_PASSWORD_ENV = "NMT_SERVER_DB_PASSWORD"
MLFLOW_DEFAULT_ADMIN_PASSWORD = "password1234"  # MLflow's own default: never used
PG_START_HINT = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


@dataclass(frozen=True)
class ServerState:
    url: str
    pid: int | None
    healthy: bool
    log: Path


def state_dir(cfg: ServerConfig) -> Path:
    return local_path(cfg.state_dir or project_home() / ".nmt" / "server")


def _pid_file(cfg: ServerConfig) -> Path:
    return state_dir(cfg) / "server.pid"


def _log_file(cfg: ServerConfig) -> Path:
    return state_dir(cfg) / "server.log"


def _pg_connect(cfg: ServerConfig, dbname: str = "postgres"):
    import psycopg2
    try:
        conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_superuser, dbname=dbname,
                                connect_timeout=5)
    except psycopg2.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "no answer"
        raise ConfigError(
            f"PostgreSQL does not answer at {cfg.pg_host}:{cfg.pg_port} as {cfg.pg_superuser} ({first}); "
            f"start it (on this machine: {PG_START_HINT}) or set server.pg_host / server.pg_port") from None
    conn.autocommit = True
    return conn


def backend_uri(cfg: ServerConfig, database: str | None = None) -> str:
    password = os.environ.get(DB_PASSWORD_ENV)
    user = f"{cfg.role}:{password}" if password else cfg.role
    # psycopg2 named: SQLAlchemy 2.1 would otherwise look for psycopg 3
    return f"postgresql+psycopg2://{user}@{cfg.pg_host}:{cfg.pg_port}/{database or cfg.database}"


def ensure_database(cfg: ServerConfig) -> list[str]:
    """Create the role and the databases (store, and auth's own when on); idempotent."""
    from psycopg2 import sql
    made: list[str] = []
    databases = [cfg.database] + ([f"{cfg.database}_auth"] if cfg.auth else [])
    conn = _pg_connect(cfg)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (cfg.role,))
        password = os.environ.get(DB_PASSWORD_ENV)
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN" + (" PASSWORD %s" if password else "")).format(
                sql.Identifier(cfg.role)), (password,) if password else None)
            made.append(f"role {cfg.role}")
        for db in databases:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(cfg.role)))
                made.append(f"database {db}")
    return made


def drop_databases(cfg: ServerConfig) -> None:
    """Remove the store (and auth) databases: for throw-away servers such as the tests'."""
    from psycopg2 import sql
    conn = _pg_connect(cfg)
    with contextlib.closing(conn), conn.cursor() as cur:
        for db in (cfg.database, f"{cfg.database}_auth"):
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _auth_settings(cfg: ServerConfig, env: dict[str, str]) -> list[str]:
    """basic-auth: an ini with the admin password from the environment (never MLflow's default)."""
    password = os.environ.get(ADMIN_PASSWORD_ENV, "")
    if not password or password == MLFLOW_DEFAULT_ADMIN_PASSWORD:
        raise ConfigError(f"server.auth=true needs the admin password in ${ADMIN_PASSWORD_ENV} "
                          f"(not MLflow's default); export it and run `nmt server up` again")
    ini = configparser.ConfigParser()
    ini["mlflow"] = {"default_permission": cfg.default_permission,
                     "database_uri": backend_uri(cfg, f"{cfg.database}_auth"),
                     "admin_username": cfg.admin_user, "admin_password": password,
                     # without it every request pays a PBKDF2 hash (~3x fewer requests/s)
                     "auth_cache_ttl_seconds": str(cfg.auth_cache_s),
                     "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth"}
    path = state_dir(cfg) / "basic_auth.ini"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        ini.write(f)
    key_file = state_dir(cfg) / "flask_secret"
    if not key_file.exists():
        with os.fdopen(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(secrets.token_hex(32))
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(path)
    env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", key_file.read_text().strip())
    return ["--app-name", "basic-auth"]


def _healthy(url: str, timeout: float = 2.0, path: str = "/health") -> bool:
    try:
        return requests.get(f"{url}{path}", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_until_up(proc: subprocess.Popen, url: str, timeout_s: float, path: str = "/health",
                  poll_s: float = 0.5) -> str:
    """Poll ``url + path`` while ``proc`` starts: "up" once it answers 200, "exited" when the
    process ends first, "timeout" after ``timeout_s`` (the caller says what to do)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return "exited"
        if _healthy(url, path=path):
            return "up"
        time.sleep(poll_s)
    return "timeout"


def status(cfg: ServerConfig) -> ServerState:
    pid_file = _pid_file(cfg)
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    if pid is not None and not pid_alive(pid):
        pid = None
    return ServerState(cfg.url, pid, pid is not None and _healthy(cfg.url), _log_file(cfg))


def up(cfg: ServerConfig) -> ServerState:
    """Start the server (or find it running) and wait until ``/health`` answers."""
    current = status(cfg)
    if current.pid is not None:
        if current.healthy:
            return current
        raise ConfigError(f"a server started from {state_dir(cfg)} (pid {current.pid}) is not healthy; "
                          f"see {current.log}, then `nmt server down`")
    if _port_taken(cfg.host, cfg.port):
        raise ConfigError(f"port {cfg.port} on {cfg.host} is taken by another process; choose "
                          f"server.port=<free port> or stop what listens there")
    ensure_database(cfg)
    folder = state_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    dest = path_or_uri(cfg.artifacts_destination) if cfg.artifacts_destination else str(folder / "artifacts")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # MLflow's job runner (GenAI scorers, trace roll-ups) is 5 more processes of ~275 MB and a
    # folder in /dev/shm per start; the pipeline uses none of it (set the variable to keep it)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    extra = _auth_settings(cfg, env) if cfg.auth else []
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", backend_uri(cfg), "--artifacts-destination", dest,
           "--host", cfg.host, "--port", str(cfg.port), "--workers", str(cfg.workers), *extra]
    with open(_log_file(cfg), "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, cwd=folder)
    _pid_file(cfg).write_text(str(proc.pid))
    outcome = wait_until_up(proc, cfg.url, cfg.start_timeout_s)
    if outcome == "up":
        return status(cfg)
    if outcome == "exited":
        _pid_file(cfg).unlink(missing_ok=True)
        tail = _log_file(cfg).read_text(errors="replace").strip().splitlines()[-1:]
        raise ConfigError(f"the MLflow server exited at start (code {proc.returncode}): "
                          f"{tail[0] if tail else ''}; full log: {_log_file(cfg)}")
    down(cfg)
    raise ConfigError(f"the MLflow server did not answer on {cfg.url} within {cfg.start_timeout_s:g} s "
                      f"(server.start_timeout_s); see {_log_file(cfg)}")


def down(cfg: ServerConfig, timeout: float = 20.0) -> bool:
    """Stop the server's whole process group; True if one was running."""
    pid_file = _pid_file(cfg)
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    pid_file.unlink(missing_ok=True)
    if pid is None or not pid_alive(pid):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:  # not our child: poll its existence instead
                if not pid_alive(pid):
                    break
            time.sleep(0.2)
        else:
            continue
        break
    # gunicorn/uvicorn workers share the group; make sure none keeps the port
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
