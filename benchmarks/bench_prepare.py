"""prepare at growing corpus sizes, beside the field's standard path (SentencePiece).

    python benchmarks/bench_prepare.py [--sizes 30000 300000 3000000] [--workdir DIR]
                                       [--no-spm] [--log-to http://HOST:PORT] [--train]

The corpus is synthetic but not repetitive: pair k joins two Multi30k training captions
(i = k mod N, j = (k div N + 31 i) mod N, N = 29,000), German to one side and English to the
other, so every pair is distinct up to Multi30k's own duplicates and lines are news-length.

Ours: ``nmt prepare data=files`` (a local SQLite store; cleaning on: normalisation, empty,
over-long, length ratio, duplicates, contamination; val and test carved; a joint unigram
8k trained on a 500k-pair sample). SentencePiece: the ``sentencepiece`` package's trainer
(joint unigram 8k, ``input_sentence_size`` 1M sentences, i.e. the same 500k pairs), then
``encode(..., num_threads=2)`` of both sides into int32 arrays on disk; no cleaning, no
tracking. Each runs in its own process; peak memory is sampled every 0.2 s as the PSS sum
over the process and its children (forked workers share the parent's pages, which RSS would
count once per process), split into anonymous memory (what the process needs) and
file-backed pages (memory-mapped files and libraries: cache the kernel can drop, counted in
RSS and PSS all the same); each column is its own peak. The main process's peak RSS and the
CPU seconds (user + system, a measure that other jobs on the machine disturb far less than
wall time) are read from wait4.

``--log-to URL`` times logging the prepared ``data/`` folder of the largest size as
artifacts of a run on that tracking server (proxied artifacts), in MB/s: the cost of handing
a multi-GB corpus to trials through MLflow. Prints one markdown row per size and path.

``--train`` also runs ``nmt train`` on each size, in the same project home as our prepare
(so prepare is reused): ``model=transformer_tiny trainer.max_steps=30``, measured as
above, plus the seconds from the process's start to the first training step and the
start-up phases that the run logs (``train: first step ... s after the process started``).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SPM = """
import sys, numpy as np, sentencepiece as spm
work, n = sys.argv[1], int(sys.argv[2])
files = [f"{work}/train.xa", f"{work}/train.xb"]
spm.SentencePieceTrainer.train(input=",".join(files), model_prefix=f"{work}/spm", vocab_size=8000,
    model_type="unigram", input_sentence_size=1_000_000, shuffle_input_sentence=True, num_threads=2,
    character_coverage=1.0, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=f"{work}/spm.model")
for f in files:
    with open(f, encoding="utf-8") as fh:
        lines, ids, lens = fh.read().splitlines(), [], []
    for i in range(0, len(lines), 100_000):
        for x in sp.encode(lines[i:i + 100_000], num_threads=2):
            ids.append(np.asarray(x, np.int32)); lens.append(len(x))
    np.save(f + ".ids.npy", np.concatenate(ids)); np.save(f + ".lens.npy", np.asarray(lens, np.int32))
    del lines, ids
"""


def captions(multi30k: Path) -> tuple[list[str], list[str]]:
    read = lambda lang: gzip.open(multi30k / f"train.{lang}.gz", "rt", encoding="utf-8").read().splitlines()  # noqa: E731
    return read("de"), read("en")


def write_corpus(work: Path, n: int, de: list[str], en: list[str]) -> None:
    """Pair k = captions i and j joined (see the module docstring); plain text, one file per side."""
    work.mkdir(parents=True, exist_ok=True)
    if (work / "done").exists():
        return
    m = len(de)
    with open(work / "train.xa", "w", encoding="utf-8") as fa, open(work / "train.xb", "w", encoding="utf-8") as fb:
        for k in range(n):
            i = k % m
            j = (k // m + 31 * i) % m
            fa.write(f"{de[i]} {de[j]}\n")
            fb.write(f"{en[i]} {en[j]}\n")
    (work / "done").touch()


def _rollup(pid: int) -> dict[str, int]:
    """Pss, Pss_Anon and Pss_File of one process, in bytes (/proc/PID/smaps_rollup)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Pss_Anon", "Pss_File"):
                out[key] = int(rest.split()[0]) * 1024
    return out


FIRST_STEP = re.compile(r"first step ([\d.]+) s after the process started, ([\d.]+) s after the stage did \((.*)\)")


def measure(cmd: list[str], env: dict[str, str], output: list[str] | None = None) -> tuple[float, float, dict[str, float], float]:
    """Wall seconds; CPU seconds (user + system, the process and the children it waited for);
    peak PSS of the tree, all of it and its anonymous and file-backed parts (GB, each peak on
    its own); peak RSS of the main process (wait4, GB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, stop = dict.fromkeys(("Pss", "Pss_Anon", "Pss_File"), 0), threading.Event()

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                # PSS: forked workers share the parent's pages; RSS would count them twice.
                # Anon is what the process needs; file pages (memory-mapped Arrow files,
                # libraries) are cache the kernel can drop, but RSS and PSS count them.
                rolls = [_rollup(q.pid) for q in [p, *p.children(recursive=True)]]
                for k in peak:
                    peak[k] = max(peak[k], sum(r.get(k, 0) for r in rolls))
            except (psutil.Error, OSError):
                pass
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    stderr = proc.stderr.read()
    if output is not None:
        output.append(stderr.decode(errors="replace"))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{stderr.decode()[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, {k: v / 1e9 for k, v in peak.items()}, usage.ru_maxrss / 1e6


def _ours_env(home: Path) -> dict[str, str]:
    return {**os.environ, "NMT_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def _data_args(work: Path) -> list[str]:
    return ["data=files", f"data.dir={work}", "data.src_lang=xa", "data.tgt_lang=xb", "data.train=[train]",
            "data.tokenizer_sample_pairs=500000"]


def ours(work: Path, n: int) -> tuple[float, float, dict[str, float], float]:
    home = work / f"home-{time.time_ns()}"
    home.mkdir(parents=True)
    (work / "last-home").write_text(str(home))
    cmd = [sys.executable, "-m", "nmt.pipeline.cli", "prepare", *_data_args(work)]
    return measure(cmd, _ours_env(home))


def train(work: Path, n: int) -> tuple[float, float, dict[str, float], float, str]:
    """``nmt train`` in the home of the last ``ours`` run (prepare reused); the fifth value is
    the run's first-step line: seconds from the process's start, from the stage's, and the phases."""
    home = Path((work / "last-home").read_text())
    cmd = [sys.executable, "-m", "nmt.pipeline.cli", "train", *_data_args(work), "model=transformer_tiny",
           "trainer.max_steps=30"]
    out: list[str] = []
    res = measure(cmd, _ours_env(home), out)
    m = FIRST_STEP.search(out[0])
    return (*res, f"{m.group(1)} s ({m.group(2)} s after the stage began; {m.group(3)})" if m else "no first-step line")


def sentencepiece(work: Path, n: int) -> tuple[float, float, dict[str, float], float]:
    return measure([sys.executable, "-c", SPM, str(work), str(n)], dict(os.environ))


def log_cost(work: Path, uri: str) -> str:
    """Seconds and MB/s to log the newest prepared data/ folder to ``uri`` and to download it back."""
    import mlflow
    data = max(work.glob("home-*/mlartifacts/*/*/artifacts/data"), key=lambda p: p.stat().st_mtime)
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-prepare-logging")
    with mlflow.start_run() as run:
        t0 = time.perf_counter()
        mlflow.log_artifacts(str(data), "data")
        up = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as dst:  # what a trial on another node does first
        t0 = time.perf_counter()
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data", dst_path=dst)
        down = time.perf_counter() - t0
    return (f"{size / 1e9:.2f} GB of prepared data through {uri}: log_artifacts {up:.1f} s ({size / 1e6 / up:.0f} MB/s), "
            f"download {down:.1f} s ({size / 1e6 / down:.0f} MB/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[30_000, 300_000])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "nmt-bench-prepare")
    ap.add_argument("--multi30k", type=Path, default=Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared/data/multi30k")))
    ap.add_argument("--no-spm", action="store_true")
    ap.add_argument("--train", action="store_true", help="also time nmt train (prepare reused) on each size")
    ap.add_argument("--log-to", default=None, help="a tracking server URL: time logging the prepared data there")
    args = ap.parse_args()
    de, en = captions(args.multi30k)
    print("| pairs | path | wall (s) | pairs/s | CPU (s) | peak PSS, tree (GB) | anon | file | peak RSS, main (GB) |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for n in args.sizes:
        work = args.workdir / str(n)
        write_corpus(work, n, de, en)
        runs = [("nmt prepare", lambda: ours(work, n))]
        if not args.no_spm:
            runs.append(("sentencepiece", lambda: sentencepiece(work, n)))
        if args.train:
            runs.append(("nmt train", lambda: train(work, n)))
        for name, fn in runs:
            wall, cpu, pss, main_rss, *first = fn()
            print(f"| {n:,} | {name} | {wall:.1f} | {n / wall:,.0f} | {cpu:.0f} | {pss['Pss']:.2f} | {pss['Pss_Anon']:.2f} "
                  f"| {pss['Pss_File']:.2f} | {main_rss:.2f} |", flush=True)
            if first:
                print(f"  train, {n:,} pairs: first step {first[0]}; load {os.getloadavg()[0]:.1f}", flush=True)
    if args.log_to:
        print(log_cost(args.workdir / str(args.sizes[-1]), args.log_to))


if __name__ == "__main__":
    main()
