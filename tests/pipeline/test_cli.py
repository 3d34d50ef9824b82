"""The command line answers first and imports later: a config error in a fresh process is
answered with one line before torch, Lightning, MLflow or Ray is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "lightning", "pytorch_lightning", "mlflow", "ray")
# main() in a fresh interpreter, then the heavy top-level packages it imported
PROBE = ("import json, sys; from nmt.pipeline.cli import main; rc = main(sys.argv[1:]); "
         f"print(json.dumps([rc, sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))]))")


@pytest.mark.parametrize("argv, message", [
    (["train", "model=transfomer"], "model=transfomer: no such option; valid: attention, gru, lstm, transformer"),
    (["train", "trainer.max_epochs=ten"], "trainer.max_epochs: expected an integer, got 'ten'"),
    (["run", "model=transformer", "model.num_heads=7"], "model.num_heads: must be > 0 and divide d_model=256"),
    (["evaluate", "evaluate.splits=[nope]"], "evaluate.splits: unknown split 'nope'"),
    (["translate", "--beam", "0"], "params.beam_size=0 is out of bounds: 1 <= beam_size <= 16"),
    (["promote", "--beam", "0"], "promote.beam_size must be in 1..16, got 0"),
    (["sweep", "sweep.num_samples=x"], "sweep.num_samples: expected an integer, got 'x'"),
])
def test_a_config_error_is_answered_before_any_heavy_package_is_imported(argv, message, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "NMT_HOME": str(tmp_path)}, stdin=subprocess.DEVNULL)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, []]
    assert out.stderr.startswith(f"nmt: error: {message}")
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The check above can fail: the same probe, with torch imported first, reports it."""
    out = subprocess.run([sys.executable, "-c", "import torch; " + PROBE, "train", "model=transfomer"], cwd=ROOT,
                         capture_output=True, text=True, env={**os.environ, "NMT_HOME": str(tmp_path)})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, ["torch"]]
