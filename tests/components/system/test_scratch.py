"""What a stage writes outside its run's own folder lives in a scratch folder: removed when
the stage ends, however it ends, and swept by the next run when a ``kill -9`` left it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nmt.components.system import scratch as scratch_module
from nmt.components.system.scratch import held_scratch, scratch, scratch_root, sweep

HOLD = """
import sys, time
from nmt.components.system.scratch import scratch
with scratch(sys.argv[1]) as work:
    (work / "clean-train.arrow").write_bytes(b"x" * 4096)
    print(work, flush=True)
    time.sleep(300)
"""


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """The system temp folder, this test's own (in this process and its children)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def _holder(what: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, what], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    return proc, Path(proc.stdout.readline().strip())


@pytest.mark.parametrize("ending", [None, RuntimeError("disk full"), KeyboardInterrupt()])
def test_removed_however_the_block_ends(tmp_root, ending):
    with pytest.raises(type(ending)) if ending else contextlib.nullcontext():
        with scratch("prepare") as work:
            (work / "raw-train.arrow").write_bytes(b"x")
            if ending:
                raise ending
    assert not work.exists() and list(scratch_root().iterdir()) == []


def test_a_killed_run_s_folder_is_swept_by_the_next_and_a_live_one_kept(tmp_root):
    killed, left = _holder("prepare")
    live, kept = _holder("evaluate")
    try:
        assert (left / "clean-train.arrow").is_file()
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert left.exists()  # kill -9: nothing could remove it
        with scratch("prepare") as mine:
            assert not left.parent.exists(), "the next run did not sweep the killed run's scratch"
            assert kept.exists(), "a running process's scratch was swept"
        assert not mine.exists()
    finally:
        live.kill()
        live.wait()
        killed.stdout.close()
        live.stdout.close()


def test_a_folder_without_an_owner_is_kept_while_young_or_holding_anything(tmp_root):
    """No owner file proves nothing: only an old empty folder (its maker killed between making
    it and writing the owner file) goes."""
    young = scratch_root() / "prepare-young"
    young.mkdir()
    old, full = scratch_root() / "prepare-old", scratch_root() / "someone-else"
    old.mkdir()
    full.mkdir()
    (full / "notes.txt").write_text("not ours")
    for d in (old, full):
        os.utime(d, (time.time() - 7200, time.time() - 7200))
    with scratch("train"):
        pass
    assert young.exists() and not old.exists()
    assert (full / "notes.txt").read_text() == "not ours"


HELD = """
import sys, time
from nmt.components.system.scratch import held_scratch
a, b = held_scratch("downloads"), held_scratch("downloads")
(a / "best.ckpt").write_bytes(b"x")
print(a, b, flush=True)
if sys.argv[1] == "hold":
    time.sleep(300)
"""


def test_a_held_folder_outlives_its_call_until_the_process_exits_or_is_killed(tmp_root, monkeypatch):
    """What a call hands back (a download) stays while the process runs; one call's folder is
    not another's; the process's exit removes them, and a kill leaves them to the next sweep."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    done = subprocess.run([sys.executable, "-c", HELD, "exit"], capture_output=True, text=True, env=env, check=True)
    a, b = map(Path, done.stdout.split())
    assert a != b and a.parent == b.parent
    assert not a.parent.exists(), "the process's exit did not remove its held folder"
    killed = subprocess.Popen([sys.executable, "-c", HELD, "hold"], stdout=subprocess.PIPE, text=True, env=env)
    a, _ = map(Path, killed.stdout.readline().split())
    assert (a / "best.ckpt").is_file()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed.stdout.close()
    assert sweep() == [a.parent] and list(scratch_root().iterdir()) == []
    monkeypatch.setattr(scratch_module, "_HELD", {})  # not this process's earlier folder, made elsewhere
    mine = held_scratch("downloads")  # and this process's own
    assert mine.is_dir() and mine.parent.parent == scratch_root()
