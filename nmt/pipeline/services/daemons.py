"""What the long-lived daemons (``nmt server``, ``nmt cluster``) get and how they stop.

A daemon outlives the shell that started it and logs what it was given: it gets an
allowlisted environment, never the caller's whole one (cloud keys, tokens). It is
stopped only when the recorded pid still names the process we started (start time and
whole command line, :class:`~nmt.components.system.procs.ProcessId`), with its own children.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping

import psutil

from nmt.components.system.procs import ProcessId

# what a Python daemon needs to start, find its venv and format text; nothing secret
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SHELL",
            "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
            "NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")
BASE_PREFIXES = ("LC_",)


def daemon_env(names: Iterable[str] = (), prefixes: Iterable[str] = (), source: Mapping[str, str] | None = None,
               **values: str) -> dict[str, str]:
    """The allowlisted part of ``source`` (default: this process's environment): BASE_ENV,
    ``names`` and variables starting with ``prefixes``, plus ``values``."""
    source = os.environ if source is None else source
    keep, starts = {*BASE_ENV, *names}, (*BASE_PREFIXES, *prefixes)
    env = {k: v for k, v in source.items() if k in keep or k.startswith(starts)}
    return {**env, **values}


def stop(recorded: ProcessId | None, timeout: float = 20.0) -> bool:
    """TERM, then KILL, the recorded process and its descendants, only if the pid still
    names it; True when it was running. A pid now naming another process is left alone."""
    proc = recorded.process() if recorded is not None else None
    if proc is None:
        return False
    stop_all([proc])
    return True


def stop_all(procs: list[psutil.Process], timeout: float = 20.0) -> int:
    """TERM, then KILL after ``timeout``, ``procs`` and every descendant they have now."""
    family: dict[int, psutil.Process] = {}
    for p in procs:
        family[p.pid] = p
        with contextlib.suppress(psutil.Error):  # workers first seen here: a parent gone first would orphan them
            family.update({c.pid: c for c in p.children(recursive=True)})
    members = list(family.values())
    for p in members:
        with contextlib.suppress(psutil.Error):  # gone already
            p.terminate()
    _, alive = psutil.wait_procs(members, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    return len(members)
