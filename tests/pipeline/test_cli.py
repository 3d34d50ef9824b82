"""The command line answers first and imports later: a config error in a fresh process is
answered with one line before torch, Lightning, MLflow or Ray is imported. And it shows
progress: live bars on a terminal, plain lines in a pipe, nothing with ``--quiet``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading

import pytest

from nmt.pipeline.cli import main
from tests.conftest import ROOT, TINY_RUN

HEAVY = ("torch", "lightning", "pytorch_lightning", "mlflow", "ray")
# main() in a fresh interpreter, then the heavy top-level packages it imported
PROBE = ("import json, sys; from nmt.pipeline.cli import main; rc = main(sys.argv[1:]); "
         f"print(json.dumps([rc, sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))]))")


@pytest.mark.parametrize("argv, message", [
    (["train", "model=transfomer"], "model=transfomer: no such option; valid: attention, gru, lstm, transformer"),
    (["train", "trainer.max_epochs=ten"], "trainer.max_epochs: expected an integer, got 'ten'"),
    (["run", "model=transformer", "model.num_heads=7"], "model.num_heads: must be > 0 and divide d_model=256"),
    (["evaluate", "evaluate.splits=[nope]"], "evaluate.splits: unknown split 'nope'"),
    (["translate", "--beam", "0"], "evaluate.beam_size=0 is out of bounds: 1 <= beam_size <= 16"),
    (["promote", "--beam", "0"], "promote.beam_size must be in 1..16, got 0"),
    (["sweep", "sweep.num_samples=x"], "sweep.num_samples: expected an integer, got 'x'"),
    (["evaluate", "upstream.train_run_id=x"], "unknown config key 'upstream.train_run_id'; valid keys under '<root>'"),
    # a bare word is not an override: what the user likely meant, by command
    (["train", "gru"], "'gru' is not an override (key=value, group=option or ~key); for that option write model=gru"),
    (["sweep", "rnn"], "'rnn' is not an override (key=value, group=option or ~key); for that option write sweep=rnn"),
    (["translate", "in.txt"], "'in.txt' is not an override (key=value, group=option or ~key); to translate a file "
                              "give --file in.txt"),
    (["compare", "0123abcd"], "'0123abcd' is not an override (key=value, group=option or ~key); to compare evaluate "
                              "runs give --runs 0123abcd"),
    (["promote", "3"], "'3' is not an override (key=value, group=option or ~key); for a version give --version 3"),
    (["run", "fast"], "'fast' is not an override (key=value, group=option or ~key); e.g. model=attention"),
    # an unquoted value with a space, split by the shell: the whole override, quoted
    (["prepare", "data.test={t:", "t.tsv,", "u:", "u.tsv}", "model=gru"],
     "'t.tsv,' is not an override: the shell split 'data.test={t: t.tsv, u: u.tsv}' at a space; quote the whole "
     "override: \"data.test={t: t.tsv, u: u.tsv}\""),
    # paths in and out, and a model's URI, checked before anything loads
    (["align", "--src", "/nonexistent.de", "--tgt", "x"], "--src /nonexistent.de: no such file; give a text file"),
    (["compare", "--out", "/proc/report"], "--out /proc/report: cannot write in /proc"),
    (["translate", "--model", "nope"], "--model nope: no such folder; give models:/<name>@<alias>"),
])
def test_a_config_error_is_answered_before_any_heavy_package_is_imported(argv, message, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "NMT_HOME": str(tmp_path)}, stdin=subprocess.DEVNULL)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, []]
    assert out.stderr.startswith(f"nmt: error: {message}")
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("argv, unknown", [
    (["promote", "--model", "x"], "--model"),      # was promote's --model-name, silently
    (["translate", "--fil", "in.txt"], "--fil"),   # was --file
])
def test_a_flag_is_never_taken_for_a_longer_one(argv, unknown, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and f"unrecognized arguments: {unknown}" in capsys.readouterr().err


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check above can fail: the same probe, with torch imported first, reports it."""
    out = subprocess.run([sys.executable, "-c", "import torch; " + PROBE, "train", "model=transfomer"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "NMT_HOME": str(tmp_path)})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, ["torch"]]


def _stderr(argv: list[str], terminal: bool) -> str:
    """``nmt <argv>`` in a fresh process; its stderr a pseudo-terminal (stdlib ``pty``) or a pipe."""
    cmd = [sys.executable, "-m", "nmt.pipeline.cli", *argv]
    if not terminal:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a new one is 0 columns wide
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:  # drain the terminal while the command runs: a full one would block it
        while True:
            try:
                data = os.read(master, 1 << 16)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not data:
                return
            chunks.append(data)
    reader = threading.Thread(target=read)
    reader.start()
    proc.communicate()
    reader.join()
    os.close(master)
    text = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    return text


BAR = re.compile(r"\r.*\d+(?:\.\d+)?(?:it|pairs|batch|[kM]pairs)/s")  # a redrawn line with a rate


@pytest.mark.slow
def test_progress_bars_appear_on_a_terminal_and_not_in_a_pipe(nmt_home):
    """On a terminal: prepare's passes, the training steps and evaluate's decoding each draw a
    bar with a rate; in a pipe (logs, CI) the same stages write the plain lines of before;
    ``--quiet`` on a terminal shows neither."""
    run = [*TINY_RUN, "trainer.max_steps=3"]
    shown = _stderr(["evaluate", *run], terminal=True)
    for bar in ("prepare: read train", "prepare: tokenize", "Epoch 0", "evaluate test_2016_flickr beam 1"):
        line = next((x for x in re.split(r"[\r\n]", shown) if bar in x), None)
        assert line is not None and re.search(r"(it|pairs|batch)/s|s/(it|batch)", line), (bar, shown[-3000:])
    assert BAR.search(shown) or "\r" in shown
    piped = _stderr(["evaluate", *run, "trainer.seed=2"], terminal=False)  # prepare reused, train runs again
    assert "\r" not in piped and "Epoch 0" not in piped and "evaluate test_2016_flickr" not in piped
    assert re.search(r"train: epoch 1, step \d+: val/bleu", piped)  # the plain line is still there
    quiet = _stderr(["prepare", *run, "data.train_limit=150", "--quiet"], terminal=True)  # a new prepare
    assert "prepare: read" not in quiet and "prepare: train: 150 pairs kept" not in quiet  # no bar, no line
