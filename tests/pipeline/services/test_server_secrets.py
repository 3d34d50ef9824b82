"""``nmt server`` on the real PostgreSQL with passwords that break naive quoting (``%``,
``@``, ``:``, ``/``): they reach the server, never its command line, log or files others
can read; a new password on a later ``up`` replaces the old one (which then gets 401); a
running server with another admin password is refused in one line; unknown Host headers
are refused."""

from __future__ import annotations

import contextlib
import stat
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.services import database, server
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]

ADMIN_1, ADMIN_2 = "adm%in@one:/pw", "adm%2@two-rotated"
DB_1, DB_2 = "db%pa@ss:/1", "db%2@x:y"


def _ps_text() -> str:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        out.append(" ".join(p.info["cmdline"] or []))
    return "\n".join(out)


def _role_password(cfg) -> str | None:
    conn = database.pg_connect(cfg)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (cfg.role,))
        return cur.fetchone()[0]


def _search(url: str, auth=None, **headers) -> int:
    return requests.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, auth=auth,
                        headers=headers, timeout=30).status_code


def _private(folder: Path) -> list[str]:
    """Files or folders under ``folder`` that another account could read."""
    return [str(p) for p in [folder, *folder.rglob("*")]
            if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077 and not p.is_relative_to(folder / "artifacts")]


def test_passwords_with_percent_and_at_stay_secret_and_rotate(tmp_path, postgres, monkeypatch, capsys):
    state = tmp_path / "state"
    args = [f"server.port={free_port()}", f"server.database=nmt_test_{uuid.uuid4().hex[:8]}",
            f"server.role=nmt_rot_{uuid.uuid4().hex[:8]}", f"server.state_dir={state}", "server.auth=true"]
    cfg = load_config(args).server
    monkeypatch.setenv("NMT_SERVER_ADMIN_PASSWORD", ADMIN_1)
    monkeypatch.setenv("NMT_SERVER_DB_PASSWORD", DB_1)
    try:
        assert main(["server", "up", *args]) == 0, (state / "server.log").read_text()[-2000:]
        ps = _ps_text()
        assert DB_1 not in ps and ADMIN_1 not in ps and "db%25pa%40ss" not in ps
        texts = "\n".join(p.read_text(errors="replace") for p in state.iterdir() if p.is_file())
        assert DB_1 not in texts and ADMIN_1 not in texts  # log, pid, ini: no password
        assert _private(state) == []
        assert _search(cfg.url) == 401 and _search(cfg.url, ("admin", ADMIN_1)) == 200
        assert _search(cfg.url, ("admin", ADMIN_1), Host="evil.example") in (400, 403)  # --allowed-hosts
        first_role_password = _role_password(cfg)
        assert first_role_password

        monkeypatch.setenv("NMT_SERVER_ADMIN_PASSWORD", ADMIN_2)  # a running server cannot take it
        capsys.readouterr()
        assert main(["server", "up", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "runs with another admin password" in err[0] and "nmt server down" in err[0]

        monkeypatch.setenv("NMT_SERVER_DB_PASSWORD", DB_2)  # rotation: down, then up with the new ones
        assert main(["server", "down", *args]) == 0
        assert main(["server", "up", *args]) == 0, (state / "server.log").read_text()[-2000:]
        assert _search(cfg.url, ("admin", ADMIN_1)) == 401 and _search(cfg.url, ("admin", ADMIN_2)) == 200
        assert _role_password(cfg) not in (None, first_role_password)
        assert DB_2 not in _ps_text() and _private(state) == []
    finally:
        server.down(cfg)
        database.drop_databases(cfg)
        conn = database.pg_connect(cfg)
        with contextlib.closing(conn), conn.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{cfg.role}"')
