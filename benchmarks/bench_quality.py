"""Quality at a fixed budget: train each architecture for the same wall-clock time on full
Multi30k de->en, evaluate cased detokenized sacreBLEU on test_2016_flickr, print the table.

    python benchmarks/bench_quality.py [--minutes 30] [--archs gru attention transformer]

The runs go through the real pipeline into the MLflow store (the checkout's, or
$MLFLOW_TRACKING_URI), so `nmt compare` renders them afterwards.
Published anchors (bentrevett/pytorch-seq2seq, tokenized lowercased BLEU, GPU, 10 epochs):
GRU 20.6, Bahdanau attention 28.3, Transformer 36.5.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import machine
from pipeline.config import load_config
from pipeline.orchestrate import run_pipeline

ARCH_OVERRIDES = {
    "gru": ["model=gru"],
    "attention": ["model=attention"],
    "transformer": ["model=transformer", "optim=noam"],
}
ANCHORS = {"gru": 20.6, "attention": 28.3, "transformer": 36.5}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--archs", nargs="+", default=list(ARCH_OVERRIDES))
    ap.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides for every run")
    args = ap.parse_args()
    rows = []
    for arch in args.archs:
        cfg = load_config([*ARCH_OVERRIDES[arch], "profile=full", f"trainer.max_minutes={args.minutes}",
                           "trainer.max_epochs=1000", "trainer.patience=1000", "evaluate.splits=[test_2016_flickr]",
                           *args.extra])
        t = time.perf_counter()
        out = run_pipeline(cfg)
        s = out.evaluate.scores
        train = out.train
        rows.append((arch, s.get("test_2016_flickr/beam5/bleu"), s.get("test_2016_flickr/greedy/bleu"),
                     s.get("test_2016_flickr/beam5/chrf"), train.best_val_bleu, time.perf_counter() - t))
    print(f"\n# quality at a fixed budget of {args.minutes:g} min training per model, full Multi30k de-en\n"
          f"# {machine()}\n")
    print("| model | BLEU beam5 | BLEU greedy | chrF beam5 | best val BLEU | wall time (min) | anchor (GPU, 10 ep) |")
    print("|---|---|---|---|---|---|---|")
    for arch, bb, bg, cb, vb, wall in rows:
        print(f"| {arch} | {bb:.2f} | {bg:.2f} | {cb:.2f} | {vb or float('nan'):.2f} | {wall / 60:.1f} | "
              f"{ANCHORS[arch]} |")


if __name__ == "__main__":
    main()
