"""``nmt server up|down|status``: the team's MLflow tracking server as a service.

PostgreSQL is the backend store (role and database created here), artifacts are proxied
(``--artifacts-destination``: clients never write to the server's disk), the server binds
loopback unless told otherwise, and basic auth is one option away. The server runs in its
own process session, logs to ``<state_dir>/server.log`` and records its pid (with start
time and argv), so ``down`` and ``status`` find it again and signal nothing else.
"""

from __future__ import annotations

import configparser
import ipaddress
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from nmt.components.system.errors import ConfigError, ServiceError
from nmt.components.system.paths import (check_output, is_uri, local_path, path_or_uri, private_dir, private_log,
                                         redact, write_private)
from nmt.components.system.procs import ProcessId
from nmt.components.tracking.uri import project_home
from nmt.pipeline.services import daemons
from nmt.pipeline.services.database import DB_PASSWORD_ENV, backend_uri, backend_url, ensure_database
from nmt.pipeline.services.settings import ServerConfig

log = logging.getLogger("nmt")
ADMIN_PASSWORD_ENV = "NMT_SERVER_ADMIN_PASSWORD"
MLFLOW_DEFAULT_ADMIN_PASSWORD = "password1234"  # MLflow's own default: never used


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


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _admin_password() -> str:
    password = os.environ.get(ADMIN_PASSWORD_ENV, "")
    if not password or password == MLFLOW_DEFAULT_ADMIN_PASSWORD:
        raise ConfigError(f"server.auth=true needs the admin password in ${ADMIN_PASSWORD_ENV} "
                          f"(not MLflow's default); export it and run `nmt server up` again")
    if len(password) < 12:  # MLflow refuses shorter ones, after the databases exist
        raise ConfigError(f"${ADMIN_PASSWORD_ENV} has {len(password)} characters; MLflow needs at least 12")
    return password


def _auth_settings(cfg: ServerConfig, env: dict[str, str]) -> list[str]:
    """basic-auth: an ini holding no secret (the admin password and the database's reach the
    server through its environment), and the Flask session key in a 0600 file."""
    env["MLFLOW_AUTH_ADMIN_USERNAME"] = cfg.admin_user
    env["MLFLOW_AUTH_ADMIN_PASSWORD"] = _admin_password()
    ini = configparser.ConfigParser(interpolation=None)
    ini["mlflow"] = {"default_permission": cfg.default_permission,
                     "database_uri": backend_uri(cfg, f"{cfg.database}_auth").replace("%", "%%"),
                     # without it every request pays a PBKDF2 hash (~3x fewer requests/s)
                     "auth_cache_ttl_seconds": str(cfg.auth_cache_s),
                     "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth"}
    path = state_dir(cfg) / "basic_auth.ini"
    with open(write_private(path, ""), "w") as f:
        ini.write(f)
    key_file = state_dir(cfg) / "flask_secret"
    if not key_file.exists():
        write_private(key_file, secrets.token_hex(32))
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(path)
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = key_file.read_text().strip()
    return ["--app-name", "basic-auth"]


def rotate_admin_password(cfg: ServerConfig) -> bool:
    """Give an existing admin user the password of this ``up`` (MLflow itself sets it only
    when it creates the user); True when there was one to update."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore
    store = SqlAlchemyStore()
    url = backend_url(cfg, f"{cfg.database}_auth", os.environ.get(DB_PASSWORD_ENV) or None)
    store.init_db(url.render_as_string(hide_password=False))  # in this process only, never argv
    try:
        if not store.has_user(cfg.admin_user):
            return False
        store.update_user(cfg.admin_user, password=_admin_password())
        return True
    finally:
        store.engine.dispose()


def _check_exposure(cfg: ServerConfig) -> None:
    """A server reachable from other machines must ask who is there."""
    try:
        loopback = cfg.host == "localhost" or ipaddress.ip_address(cfg.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not cfg.auth:
        raise ConfigError(f"server.host={cfg.host} exposes the server beyond this machine without auth; "
                          f"add server.auth=true (with ${ADMIN_PASSWORD_ENV}) or bind server.host=127.0.0.1")
    if not loopback and not cfg.allowed_hosts:
        log.warning("server.host=%s: only the loopback names are answered until server.allowed_hosts lists "
                    "the names clients use (e.g. server.allowed_hosts=mlflow.team.example,10.0.0.5:%d)",
                    cfg.host, cfg.port)


def allowed_hosts(cfg: ServerConfig) -> str:
    """``--allowed-hosts``: the configured list, else the names this server is reached by
    (MLflow's own default also admits every private address)."""
    if cfg.allowed_hosts:
        return cfg.allowed_hosts
    extra = [] if cfg.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else [cfg.host]
    names = ["127.0.0.1", "localhost", *extra]
    return ",".join(n for host in names for n in (host, f"{host}:{cfg.port}"))


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
    recorded = ProcessId.load(_pid_file(cfg))
    pid = getattr(recorded.process() if recorded is not None else None, "pid", None)
    return ServerState(cfg.url, pid, pid is not None and _healthy(cfg.url), _log_file(cfg))


def _already_up(cfg: ServerConfig, current: ServerState) -> ServerState:
    if not current.healthy:
        raise ServiceError(f"a server started from {state_dir(cfg)} (pid {current.pid}) is not healthy; "
                          f"see {current.log}, then `nmt server down`")
    if cfg.auth:  # a new admin password cannot reach a running server: say so, not "up"
        r = requests.get(f"{cfg.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30,
                         auth=(cfg.admin_user, _admin_password()))
        if r.status_code == 401:
            raise ServiceError(f"the server on {cfg.url} runs with another admin password than "
                              f"${ADMIN_PASSWORD_ENV}; to rotate it: `nmt server down`, then `nmt server up`")
    return current


def _server_env(cfg: ServerConfig, dest: str) -> dict[str, str]:
    """Allowlisted: MLflow's settings, the store's password, a cloud's keys for its artifacts."""
    cloud = {"s3": ("AWS_", "MLFLOW_S3_"), "gs": ("GOOGLE_",), "wasbs": ("AZURE_",)}.get(dest.split("://")[0], ())
    env = daemons.daemon_env(prefixes=("MLFLOW_SERVER_", "MLFLOW_AUTH_CACHE", *cloud), PYTHONUNBUFFERED="1")
    if os.environ.get(DB_PASSWORD_ENV):
        env["PGPASSWORD"] = os.environ[DB_PASSWORD_ENV]
    # MLflow's job runner (GenAI scorers, trace roll-ups) is 5 more processes of ~275 MB and a
    # folder in /dev/shm per start; the pipeline uses none of it (set the variable to keep it)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def up(cfg: ServerConfig) -> ServerState:
    """Start the server (or find it running) and wait until ``/health`` answers."""
    _check_exposure(cfg)
    current = status(cfg)
    if current.pid is not None:
        return _already_up(cfg, current)
    if _port_taken(cfg.host, cfg.port):
        raise ConfigError(f"port {cfg.port} on {cfg.host} is taken; choose server.port=<free port> or stop it")
    if cfg.artifacts_destination and not is_uri(cfg.artifacts_destination):  # else the uploads fail, not the start
        check_output("server.artifacts_destination=", str(local_path(cfg.artifacts_destination)), folder=True)
    folder = private_dir(state_dir(cfg))
    dest = path_or_uri(cfg.artifacts_destination) if cfg.artifacts_destination else str(folder / "artifacts")
    env = _server_env(cfg, dest)
    extra = _auth_settings(cfg, env) if cfg.auth else []  # its errors come before any database exists
    ensure_database(cfg)
    if cfg.auth:
        rotate_admin_password(cfg)
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", backend_uri(cfg), "--artifacts-destination", dest,
           "--host", cfg.host, "--port", str(cfg.port), "--workers", str(cfg.workers),
           "--allowed-hosts", allowed_hosts(cfg), *extra]
    with private_log(_log_file(cfg)) as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {redact(' '.join(cmd))}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True, cwd=folder)
    ProcessId.of(proc.pid).save(_pid_file(cfg))  # after exec: Popen returns once it succeeded
    outcome = wait_until_up(proc, cfg.url, cfg.start_timeout_s)
    if outcome == "up":
        return status(cfg)
    if outcome == "exited":
        _pid_file(cfg).unlink(missing_ok=True)
        tail = _log_file(cfg).read_text(errors="replace").strip().splitlines()[-1:]
        raise ServiceError(f"the MLflow server exited at start (code {proc.returncode}): "
                          f"{redact(tail[0]) if tail else ''}; full log: {_log_file(cfg)}")
    down(cfg)
    raise ServiceError(f"the MLflow server did not answer on {cfg.url} within {cfg.start_timeout_s:g} s "
                      f"(server.start_timeout_s); see {_log_file(cfg)}")


def down(cfg: ServerConfig, timeout: float = 20.0) -> bool:
    """Stop the server we started, and its workers; True if it was running. A pid file
    naming another process now (a reboot, a shared home) is removed, and that process left alone."""
    recorded = ProcessId.load(_pid_file(cfg))
    _pid_file(cfg).unlink(missing_ok=True)
    return daemons.stop(recorded, timeout)


def cmd_server(args, cfg, _pinned: bool) -> int:
    """``nmt server up|down|status``."""
    cfg, action = cfg.server, args.action
    if action == "up":
        st = up(cfg)
        print(f"MLflow server on {st.url} (pid {st.pid}, PostgreSQL {cfg.pg_host}:{cfg.pg_port}/{cfg.database}"
              f"{', basic auth' if cfg.auth else ''}); log: {st.log}\n"
              f"  export MLFLOW_TRACKING_URI={st.url}")
        return 0
    if action == "down":
        print("stopped" if down(cfg) else "no server was running")
        return 0
    st = status(cfg)
    print(f"{'up' if st.healthy else 'down'}: {st.url}" + (f" (pid {st.pid})" if st.pid else "") + f"; log: {st.log}")
    return 0 if st.healthy else 3
