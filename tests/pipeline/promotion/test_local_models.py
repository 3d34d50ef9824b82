"""The resolution cache of ``nmt translate`` stays small and keeps the newest requests."""

from __future__ import annotations

import json
from types import SimpleNamespace

from nmt.pipeline.promotion import local_models as lm


def test_the_cache_keeps_only_the_newest_requests(nmt_home):
    n = lm.KEEP_RESOLVED + 5
    for i in range(n):
        lm.remember(f"request-{i}", "state-1", SimpleNamespace(uri=f"models:/m/{i}", files=nmt_home / f"v{i}"))
    lm.remember("request-7", "state-2", SimpleNamespace(uri="models:/m/7b", files=nmt_home / "v7b"))
    files = sorted((nmt_home / ".nmt" / "models" / lm.RESOLVED).glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    entries = {e["key"]: e for e in (json.loads(p.read_text()) for p in files)}
    assert len(entries) == lm.KEEP_RESOLVED
    assert list(entries)[-1] == "request-7" and entries["request-7"]["value"]["uri"] == "models:/m/7b"  # newest
    assert entries["request-7"]["stamp"] == "state-2"
    assert not {f"request-{i}" for i in range(5)} & set(entries) and "request-5" in entries  # the oldest went first
    assert f"request-{n - 1}" in entries
