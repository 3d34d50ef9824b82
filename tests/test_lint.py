"""The project's rules that tools enforce: ``ruff check`` (style, unused code, complexity,
function size) and ``lint-imports`` (the layer contracts in pyproject.toml). Each runs on this
checkout as a subprocess; a failure shows the tool's own report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [[sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                                     [str(BIN / "lint-imports"), "--no-cache"]], ids=["ruff", "lint-imports"])
def test_the_tools_pass(command):
    # PYTHONPATH: lint-imports reads the ``nmt`` that Python imports, which must be this checkout's
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
