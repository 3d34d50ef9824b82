"""Issue 31's figures of the code around the models, measured rather than read.

    python -m benchmarks.codebase_figures            # all four figures
    python -m benchmarks.codebase_figures --static   # lines and raw-Run readers only (no run)
    NMT_FIGURES_LIST=1 python -m benchmarks.codebase_figures   # and the names of the modules loaded

- modules of ``nmt`` that ``nmt run`` loads: a tiny ``nmt run`` (2,000 training pairs, 5 steps)
  in a subprocess with a throwaway NMT_HOME, counting ``sys.modules`` entries named ``nmt*`` at exit;
- hops from ``nmt run`` to a stage body: the Python frames of ``nmt`` modules between
  ``nmt.pipeline.cli.main`` and prepare's ``body`` on the call stack when that body starts;
- ``nmt/pipeline``'s lines (``wc -l``);
- modules outside the run store that read MLflow's raw ``Run`` objects or build search strings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE = "nmt/components/tracking/store.py"
RAW = re.compile(r"\.data\.(params|tags|metrics)\b|get_run\([^)]*\)\.(data|info)\b"
                 r"|\.info\.(run_id|status|artifact_uri|start_time|end_time|experiment_id|run_name)\b"
                 r"|filter_string|\b(tags|params)\.`|\battributes\.\w+")

PROBE = r"""
import sys
hops = []
def prof(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "body" and frame.f_globals.get("__name__", "").endswith(".prepare") \
            and not hops:
        stack, f = [], frame
        while f is not None:
            stack.append(f"{f.f_globals.get('__name__')}.{f.f_code.co_name}")
            if f.f_code.co_name == "main" and f.f_globals.get("__name__", "").startswith("nmt.pipeline.cli"):
                break
            f = f.f_back
        hops.append(stack[::-1])
sys.setprofile(prof)
import threading; threading.setprofile(prof)
from nmt.pipeline.cli import main
rc = main(sys.argv[1:])
sys.setprofile(None)
path = [s for s in hops[0] if s.startswith("nmt.")] if hops else []
print("HOPS", len(path) - 1, " -> ".join(path))
mods = sorted(m for m in sys.modules if m == "nmt" or m.startswith("nmt."))
print("MODULES", len(mods))
if "NMT_FIGURES_LIST" in __import__("os").environ:
    print("LOADED", " ".join(mods))
sys.exit(rc)
"""


def run_figures() -> None:
    home = tempfile.mkdtemp(prefix="nmt-figures-")
    try:
        multi30k = os.environ.get("MULTI30K_DIR", str(ROOT.parent / "shared" / "data" / "multi30k"))
        env = {**os.environ, "NMT_HOME": home, "MULTI30K_DIR": multi30k,
               "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": ""}
        args = ["run", "-q", "data.train_limit=2000", "data.val_limit=100", "data.test_limit=100",
                "trainer.max_steps=5"]
        p = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=home, capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if line.startswith(("HOPS", "MODULES", "LOADED")):
                print(line)
        if p.returncode:
            print(p.stderr[-3000:])
    finally:
        shutil.rmtree(home, ignore_errors=True)


def static_figures() -> None:
    files = sorted((ROOT / "nmt" / "pipeline").rglob("*.py"))
    print("LINES nmt/pipeline", sum(len(f.read_text().splitlines()) for f in files))
    readers = [str(f.relative_to(ROOT)) for f in sorted((ROOT / "nmt").rglob("*.py"))
               if str(f.relative_to(ROOT)) != STORE and RAW.search(f.read_text())]
    print("RAW-RUN READERS", len(readers), " ".join(readers))


if __name__ == "__main__":
    static_figures()
    if "--static" not in sys.argv:
        run_figures()
