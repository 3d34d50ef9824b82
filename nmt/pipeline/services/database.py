"""The tracking server's PostgreSQL side: its role and databases, and the URI the server is
given (no password in it: libpq reads ``$PGPASSWORD`` from the server's environment)."""

from __future__ import annotations

import contextlib
import os

from nmt.components.system.errors import ServiceError
from nmt.pipeline.services.settings import ServerConfig

DB_PASSWORD_ENV = "NMT_SERVER_DB_PASSWORD"
PG_START_HINT = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def pg_connect(cfg: ServerConfig, dbname: str = "postgres"):
    import psycopg2
    try:
        conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_superuser, dbname=dbname,
                                connect_timeout=5)
    except psycopg2.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "no answer"
        raise ServiceError(
            f"PostgreSQL does not answer at {cfg.pg_host}:{cfg.pg_port} as {cfg.pg_superuser} ({first}); "
            f"start it (on this machine: {PG_START_HINT}) or set server.pg_host / server.pg_port") from None
    conn.autocommit = True
    return conn


def backend_url(cfg: ServerConfig, database: str | None = None, password: str | None = None):
    """The store's SQLAlchemy URL, every part escaped (``@ / : %`` in names or password)."""
    from sqlalchemy.engine import URL
    # psycopg2 named: SQLAlchemy 2.1 would otherwise look for psycopg 3
    return URL.create("postgresql+psycopg2", username=cfg.role, password=password, host=cfg.pg_host,
                      port=cfg.pg_port, database=database or cfg.database)


def backend_uri(cfg: ServerConfig, database: str | None = None) -> str:
    """The URI the server is given: no password in it (argv is world-readable through ``ps``);
    libpq reads the password from ``$PGPASSWORD`` in the server's environment."""
    return backend_url(cfg, database).render_as_string(hide_password=False)


def ensure_database(cfg: ServerConfig) -> list[str]:
    """Create the role and the databases (store, and auth's own when on); idempotent."""
    from psycopg2 import sql
    made: list[str] = []
    databases = [cfg.database] + ([f"{cfg.database}_auth"] if cfg.auth else [])
    conn = pg_connect(cfg)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (cfg.role,))
        password = os.environ.get(DB_PASSWORD_ENV)
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN" + (" PASSWORD %s" if password else "")).format(
                sql.Identifier(cfg.role)), (password,) if password else None)
            made.append(f"role {cfg.role}")
        elif password:  # rotation: the role takes the password of this `up`, the old one stops working
            cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(cfg.role)), (password,))
        for db in databases:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(cfg.role)))
                made.append(f"database {db}")
    return made


def drop_databases(cfg: ServerConfig) -> None:
    """Remove the store (and auth) databases: for throw-away servers such as the tests'."""
    from psycopg2 import sql
    conn = pg_connect(cfg)
    with contextlib.closing(conn), conn.cursor() as cur:
        for db in (cfg.database, f"{cfg.database}_auth"):
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
