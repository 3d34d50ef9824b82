"""The GRU's gradient saliency (``nmt align`` on a model without attention): sentences/s of
forced decoding on the first RWTH German-English pairs (issue 34), per CPU second of one
torch thread (the work done: a loaded machine's other jobs stretch the wall time instead).

    [NMT_HOME=<store>] python benchmarks/bench_saliency.py [--train-run ID] [--pairs 64]

A trained GRU from the store when ``--train-run`` is given, else the GRU of ``conf/model/gru``
at random init on Multi30k's vocabulary (prepared as ``benchmarks.common.real_data`` does),
seeded. It times :func:`nmt.components.decoding.forced.align_pairs`, whose API is the same
before and after saliency was batched: run this file with ``PYTHONPATH`` at an older
checkout's code to time that code on the same pairs and model (the file itself is not needed
there).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from benchmarks.common import machine
from nmt.components.decoding.forced import SALIENCY, align_pairs
from nmt.components.evaluation.aer import read_text

ROOT = Path(__file__).resolve().parents[1]
GOLD_ENCODING = "latin-1"  # the RWTH files (bench_alignment's constant, not imported: older checkouts lack it)


def gru(train_run: str | None):
    """(model, codec, label) of a trained run or the configured GRU at random init."""
    if train_run:
        from nmt.components.tracking import names as N
        from nmt.components.tracking.store import RunStore
        from nmt.pipeline.trained import trained_model
        from nmt.pipeline.upstream import PreparedData
        store = RunStore.open(None, "nmt")
        model, _ = trained_model(store, train_run)
        codec = PreparedData.load(store, store.get_run(train_run).params[N.PARAM_PREPARE_RUN]).codec
        return model, codec, f"trained run {train_run[:8]}"
    from benchmarks.common import real_data
    from nmt.components.models.factory import build
    from nmt.pipeline.trained import model_spec
    cfg, _, codec = real_data(["model=gru"])
    torch.manual_seed(0)
    return build(model_spec(cfg, codec)).eval(), codec, "random init (seed 0)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-run", default=None, help="a GRU train run in $NMT_HOME's store (default: random init)")
    ap.add_argument("--pairs", type=int, default=64, help="the first N RWTH pairs (default 64)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU seconds are the work done)")
    ap.add_argument("--gold", type=Path, default=Path(os.environ.get("NMT_ALIGNMENT_GOLD")
                                                      or ROOT.parent / "shared/data/alignment-deen"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    de = read_text(args.gold / "de", what="gold de", encoding=GOLD_ENCODING)[:args.pairs]
    en = read_text(args.gold / "en", what="gold en", encoding=GOLD_ENCODING)[:args.pairs]
    model, codec, label = gru(args.train_run)
    import nmt
    print(f"# {machine()}, load average {os.getloadavg()[0]:.1f}\n# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"nmt from {Path(nmt.__file__).parent}; GRU {label}; {len(de)} RWTH pairs, batches of {args.batch_size}")
    c, t = time.process_time(), time.perf_counter()
    align_pairs(model, codec, de, en, [SALIENCY], batch_size=args.batch_size)
    cpu, wall = time.process_time() - c, time.perf_counter() - t
    print(f"saliency: {len(de)} pairs in {cpu:.1f} CPU s = {len(de) / cpu:.3f} sentences per CPU second "
          f"({wall:.1f} s wall; load average {os.getloadavg()[0]:.1f} at the end)", flush=True)


if __name__ == "__main__":
    main()
