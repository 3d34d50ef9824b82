"""The resolution cache of ``nmt translate`` stays small and keeps the newest requests."""

from __future__ import annotations

import json
from types import SimpleNamespace

from nmt.pipeline.promotion import local_models as lm


def test_the_cache_keeps_only_the_newest_requests(nmt_home):
    (nmt_home / ".nmt" / "models").mkdir(parents=True, exist_ok=True)
    n = lm.KEEP_RESOLVED + 5
    for i in range(n):
        lm.remember(f"request-{i}", [[1, 2, 3], None], SimpleNamespace(uri=f"models:/m/{i}", files=nmt_home / f"v{i}"))
    lm.remember("request-7", [[1, 2, 4], None], SimpleNamespace(uri="models:/m/7b", files=nmt_home / "v7b"))
    entries = json.loads((nmt_home / ".nmt" / "models" / lm.RESOLVED).read_text())
    assert len(entries) == lm.KEEP_RESOLVED
    assert list(entries)[-1] == "request-7" and entries["request-7"]["uri"] == "models:/m/7b"  # used again: newest
    assert not {f"request-{i}" for i in range(5)} & set(entries) and "request-5" in entries  # the oldest went first
    assert f"request-{n - 1}" in entries
