"""A remembered answer comes back only while its files stand as they did when it was kept."""

from __future__ import annotations

import os
import time

from nmt.components.system.remembered import Remembered, stamp


def _old(*paths) -> None:
    t = time.time() - 5
    for p in paths:
        os.utime(p, (t, t))


def test_a_stamp_changes_with_size_mtime_inode_and_presence(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("one")
    _old(a)
    first = stamp([a, b])  # b missing: counted as missing
    assert first is not None and stamp([a, b]) == first
    b.write_text("x")
    assert stamp([a, b]) is None  # written within the second: no stamp at all
    _old(b)
    second = stamp([a, b])
    assert second not in (None, first)
    a.write_text("two")  # same size, another mtime
    _old(a)
    third = stamp([a, b])
    mtime = a.stat().st_mtime_ns
    (tmp_path / "a.new").write_text("two")  # another file (inode) in its place, same size and mtime
    os.utime(tmp_path / "a.new", ns=(mtime, mtime))
    os.replace(tmp_path / "a.new", a)
    assert len({first, second, third, stamp([a, b])}) == 4


def test_get_answers_only_the_same_key_and_stamp(tmp_path):
    memo = Remembered(tmp_path / "memo", keep=4)
    memo.put("k", "s1", {"v": [1, 2.5, None]})
    assert memo.get("k", "s1") == {"v": [1, 2.5, None]}
    assert memo.get("k", "s2") is None and memo.get("other", "s1") is None
    memo.put("k", None, {"v": 0})  # no stamp: nothing kept, the old entry stays
    assert memo.get("k", "s1") == {"v": [1, 2.5, None]} and memo.get("k", None) is None
    (tmp_path / "memo" / next(iter(os.listdir(tmp_path / "memo")))).write_text("{half")
    assert memo.get("k", "s1") is None  # unreadable: worked out again


def test_the_newest_keep_stay_and_no_temporary_file(tmp_path):
    memo = Remembered(tmp_path / "memo", keep=3)
    (tmp_path / "memo").mkdir()
    orphan, writing = tmp_path / "memo" / "x.json.123.tmp", tmp_path / "memo" / "y.json.456.tmp"
    orphan.write_text("{")
    writing.write_text("{")
    os.utime(orphan, (time.time() - 120, time.time() - 120))  # its writer was killed two minutes ago
    for i in range(6):
        memo.put(f"k{i}", "s", i)
    memo.put("k3", "s", 33)  # refreshed: newest
    assert [memo.get(f"k{i}", "s") for i in range(6)] == [None, None, None, 33, 4, 5]
    assert len(list((tmp_path / "memo").glob("*.json"))) == 3
    assert [p.name for p in (tmp_path / "memo").glob("*.tmp")] == [writing.name]  # another's write in flight stays
