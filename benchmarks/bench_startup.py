"""Start-up: from the process's start to the first training step of `nmt train`, with
prepare reused, and where those seconds go (the ``time/startup/<phase>_s`` breakdown); and
what a person waits for besides: a config typo until its one-line error, and `nmt translate`
of one sentence with the champion (``--rows``).

    python -m benchmarks.bench_startup [--data-dir DIR] [--runs 3] [--steps 30] [--threads 1]
    python -m benchmarks.bench_startup --rows errors,translate [--checkout OTHER]
    python -m benchmarks.bench_startup --make-corpus /tmp/nmt-300k --pairs 300000

Each run is a fresh ``nmt train model=transformer_tiny trainer.max_steps=<steps>`` process
in one throw-away project home (``$NMT_HOME``), after one ``nmt prepare`` there; runs differ
in ``trainer.seed`` only, so prepare is reused and train is not. Prints the median of each
phase (wall and CPU seconds of the process) over the runs. ``--checkout`` runs the code of
another checkout (an older commit: only its ``time/to_first_step_s`` is read then).
``--make-corpus`` writes a synthetic corpus in Multi30k's raw layout: each training pair
joins two random Multi30k pairs (source to source, target to target); val and test are
Multi30k's own.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"first step ([\d.]+) s after the process started, ([\d.]+) s after the stage did \((.*)\)")
PHASE = re.compile(r"([\w ]+?) ([\d.]+) s \(cpu ([\d.]+)\)")


def make_corpus(out: Path, pairs: int, multi30k: Path, seed: int = 0) -> None:
    """``pairs`` training pairs of two Multi30k captions joined; the other splits copied."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    src = gzip.open(multi30k / "train.de.gz", "rt", encoding="utf-8").read().splitlines()
    tgt = gzip.open(multi30k / "train.en.gz", "rt", encoding="utf-8").read().splitlines()
    with gzip.open(out / "train.de.gz", "wt", encoding="utf-8") as fs, \
            gzip.open(out / "train.en.gz", "wt", encoding="utf-8") as ft:
        for _ in range(pairs):
            i, j = rng.randrange(len(src)), rng.randrange(len(src))
            fs.write(f"{src[i]} {src[j]}\n")
            ft.write(f"{tgt[i]} {tgt[j]}\n")
    for f in multi30k.glob("*.gz"):
        if not f.name.startswith("train."):
            shutil.copy(f, out / f.name)


def nmt(args: list[str], env: dict, checkout: Path) -> tuple[str, float]:
    """One ``nmt`` process in ``checkout``: -> (its output, wall seconds)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", *args], cwd=checkout, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"nmt {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-3000:]}")
    return out.stdout + out.stderr, time.perf_counter() - start


def timed(args: list[str], env: dict, checkout: Path, stdin: str | None = None) -> tuple[float, float, int, str]:
    """One ``nmt`` process: -> (wall s, CPU s of the process, exit status, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", *args], cwd=checkout, env=env, input=stdin,
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, out.returncode, out.stderr


TYPOS = (["train", "model=transfomer"], ["train", "trainer.max_epochs=ten"])


def quick_rows(args: argparse.Namespace, env: dict) -> list[str]:
    """A config typo until its error (exit 2), and one sentence translated by the champion: the
    first call after registering, then the others (a local copy of the version where there is one)."""
    rows = []
    if "errors" in args.rows:
        for typo in TYPOS:
            runs = [timed(typo, env, args.checkout) for _ in range(args.runs)]
            assert all(r[2] == 2 for r in runs), runs[0][3][-2000:]
            rows.append(_row(f"nmt {' '.join(typo)}", runs))
    if "translate" in args.rows:
        register = ["register", "model=transformer_tiny", "trainer.max_steps=5", "trainer.num_threads=1",
                    "evaluate.beam_size=1", "evaluate.splits=[primary]", "evaluate.attention_samples=0",
                    "evaluate.num_samples=0", "demo_sentences=0", *args.extra]
        nmt(register, env, args.checkout)
        # the store named as users name it (older code resolved models:/ through this variable only)
        env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(env['NMT_HOME']) / 'mlflow.db'}"}
        runs = [timed(["translate", "--beam", "1"], env, args.checkout, "Ein Hund läuft im Park.\n")
                for _ in range(args.runs + 1)]
        assert all(r[2] == 0 for r in runs), runs[0][3][-2000:]
        rows.append(_row("nmt translate (1 sentence), first", runs[:1]))
        rows.append(_row("nmt translate (1 sentence), then", runs[1:]))
    return rows


def _row(name: str, runs: list[tuple[float, float, int, str]]) -> str:
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    return (f"{name:44s} {statistics.median(walls):9.2f} {statistics.median(cpus):9.2f}   "
            + " ".join(f"{w:.2f}" for w in walls))


def first_step_metric(env: dict, text: str) -> float | None:
    """``time/to_first_step_s`` of the train run the output names (older code logs no line)."""
    from mlflow.tracking import MlflowClient
    m = re.search(r"train\s+run (\w+)", text)
    if not m:
        return None
    uri = f"sqlite:///{Path(env['NMT_HOME']) / 'mlflow.db'}"
    value = MlflowClient(uri).get_run(m.group(1)).data.metrics.get("time/to_first_step_s")
    return None if value is None else float(value)


def one_run(args: argparse.Namespace, env: dict, seed: int) -> dict[str, tuple[float, float]]:
    """-> {phase: (wall s, cpu s)} of one train process, plus its totals."""
    text, wall = nmt(["train", "model=transformer_tiny", f"trainer.max_steps={args.steps}",
                      f"trainer.seed={seed}", f"trainer.num_threads={args.threads}", *args.extra], env, args.checkout)
    row: dict[str, tuple[float, float]] = {"process wall (whole run)": (wall, float("nan"))}
    m = LINE.search(text)
    if m:
        row["process start -> first step"] = (float(m.group(1)), float("nan"))
        row["train stage start -> first step"] = (float(m.group(2)), float("nan"))
        for phase, w, c in PHASE.findall(m.group(3)):
            row[phase.strip()] = (float(w), float(c))
    else:
        row["process start -> first step"] = (first_step_metric(env, text) or float("nan"), float("nan"))
    return row


def table(rows: list[dict[str, tuple[float, float]]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = [f"{'phase':34s} {'wall s (median)':>16s} {'cpu s (median)':>15s}   runs (wall)"]
    for k in keys:
        walls = [r[k][0] for r in rows if k in r]
        cpus = [r[k][1] for r in rows if k in r]
        cpu = statistics.median(cpus) if cpus else float("nan")
        out.append(f"{k:34s} {statistics.median(walls):16.2f} {cpu:15.2f}   "
                   + " ".join(f"{w:.2f}" for w in walls))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None, help="raw corpus (default $MULTI30K_DIR)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="trainer.num_threads (1: steadier on a shared machine)")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the code to time (default this checkout)")
    ap.add_argument("--home", type=Path, default=None, help="NMT_HOME (default a fresh temporary folder)")
    ap.add_argument("--make-corpus", type=Path, default=None, help="write a synthetic corpus here and stop")
    ap.add_argument("--pairs", type=int, default=300_000)
    ap.add_argument("--rows", default="train", help="comma-separated: train (the first step), errors, translate")
    ap.add_argument("extra", nargs="*", help="more overrides for every train run")
    args = ap.parse_args()
    multi30k = Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared" / "data" / "multi30k"))
    if args.make_corpus:
        make_corpus(args.make_corpus, args.pairs, multi30k)
        print(f"wrote {args.pairs} pairs to {args.make_corpus}")
        return
    home = args.home or Path(tempfile.mkdtemp(prefix="nmt-startup-"))
    try:
        measure(args, home, multi30k)
    finally:
        if args.home is None:  # ours: made above, removed here (a given --home is the caller's)
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path, multi30k: Path) -> None:
    env = {**os.environ, "NMT_HOME": str(home), "MULTI30K_DIR": str(args.data_dir or multi30k),
           "PYTHONPATH": str(args.checkout)}
    env.pop("MLFLOW_TRACKING_URI", None)
    if "train" not in args.rows:  # no prepare of its own: translate's registration makes one
        print(f"# {machine_line()}\n# load average {os.getloadavg()[0]:.1f}\n")
        print("\n".join(quick_rows(args, env)))
        return
    _, prep = nmt(["prepare"], env, args.checkout)
    print(f"# {machine_line()}\n# data {env['MULTI30K_DIR']}; prepare (once, then reused): {prep:.1f} s; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    if "train" in args.rows:
        print(table([one_run(args, env, seed) for seed in range(args.runs)]))
    quick = quick_rows(args, env)
    if quick:
        print(f"\n{'what':44s} {'wall s':>9s} {'cpu s':>9s}   runs (wall)   (medians)\n" + "\n".join(quick))


def machine_line() -> str:
    from benchmarks.common import machine
    return machine()


if __name__ == "__main__":
    main()
