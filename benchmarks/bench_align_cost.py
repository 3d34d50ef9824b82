"""What ``nmt translate --align`` costs over plain translation (issue 34's goal: at most
+10% on test_2016_flickr at beam 5): the in-process path of ``nmt translate``,
:func:`nmt.components.serving.inference.translate_texts`, with ``align`` off and on.

    [NMT_HOME=<store>] python -m benchmarks.bench_align_cost [--archs transformer_tiny attention gru]
        [--train-runs ID ...] [--limit 100] [--rounds 5] [--threads 1]

Each model translates the first ``--limit`` sentences of test_2016_flickr (German, as a user
would send them) ``--rounds`` times each way, plain and aligned alternating, the order
swapped every round so that a drift in the machine's load falls on both. The figure is the
ratio of the two medians of the process's CPU seconds (one torch thread: the work done, which
a loaded machine's other jobs barely change, where they can double the wall time of a run),
with the per-round ratios for its spread and the wall-time ratio beside it: on a shared
machine only ratios taken in one run mean anything. Models: the train runs given, else each ``--archs``
at its configured size, random init (seed 0) on Multi30k's vocabulary; untrained, they
decode every sentence to the length limit, so their outputs and links are the longest.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import machine, random_init, trained
from nmt.components.serving.inference import translate_texts
from nmt.components.serving.bounds import DecodeParams

ROOT = Path(__file__).resolve().parents[1]


def models(args) -> list[tuple[str, object, object]]:
    """(label, model, codec) of each train run given, else of each arch at random init."""
    if args.train_runs:
        from nmt.components.tracking.store import RunStore
        store = RunStore.open(None, "nmt")
        out = []
        for run_id in args.train_runs:
            model, codec = trained(store, run_id)
            out.append((f"{model.cfg.label} (run {run_id[:8]})", model, codec))
        return out
    return [(f"{arch} (random init)", *random_init(arch)) for arch in args.archs]


def timed(model, codec, texts: list[str], align: bool, beam: int) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one translate_texts call."""
    c, t = time.process_time(), time.perf_counter()
    translate_texts(model, codec, texts, DecodeParams(beam_size=beam, align=align))
    return time.process_time() - c, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=["transformer_tiny", "attention", "gru"])
    ap.add_argument("--train-runs", nargs="+", default=None, help="train runs in $NMT_HOME's store instead")
    ap.add_argument("--limit", type=int, default=100, help="first N sentences of test_2016_flickr (1,000 in all)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: less noise from the machine's load)")
    ap.add_argument("--multi30k", type=Path, default=Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared/data/multi30k")))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with gzip.open(args.multi30k / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        texts = [line.rstrip("\n") for line in f][:args.limit]
    print(f"# {machine()}\n# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; translate_texts, beam "
          f"{args.beam}, {len(texts)} sentences of test_2016_flickr, {args.rounds} rounds each way alternating; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| model | plain CPU s (median; min) | --align CPU s (median; min) | CPU ratio of medians "
          "| per-round CPU ratios | wall ratio of medians | load |")
    print("|---|---|---|---|---|---|---|")
    for label, model, codec in models(args):
        timed(model, codec, texts[:8], True, args.beam)  # warm-up: allocator, first-call paths
        plain, aligned = [], []
        for r in range(args.rounds):
            for align in ((False, True) if r % 2 == 0 else (True, False)):
                (aligned if align else plain).append(timed(model, codec, texts, align, args.beam))
        cpu_p, cpu_a = [c for c, _ in plain], [c for c, _ in aligned]
        ratio = statistics.median(cpu_a) / statistics.median(cpu_p)
        wall = statistics.median(w for _, w in aligned) / statistics.median(w for _, w in plain)
        rounds = " ".join(f"{a / p:.2f}" for a, p in zip(cpu_a, cpu_p))
        print(f"| {label} | {statistics.median(cpu_p):.2f}; {min(cpu_p):.2f} | {statistics.median(cpu_a):.2f}; "
              f"{min(cpu_a):.2f} | **{ratio:.3f}** | {rounds} | {wall:.2f} | {os.getloadavg()[0]:.1f} |", flush=True)

if __name__ == "__main__":
    main()
