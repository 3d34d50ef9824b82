"""Decoding speed on test_2016_flickr (1,000 sentences): sentences/s for greedy and beam 5,
and incremental (cached keys/values) vs recomputed-prefix Transformer decoding at beam 5.

    python benchmarks/bench_decoding.py [--tracking-uri URI] [--limit N]

Uses the newest finished train run of each architecture in the MLflow store (the
checkout's by default); an architecture without one is decoded untrained at its default
size, which runs every sentence to the length limit (a pessimistic bound), and is marked so.
"""

from __future__ import annotations

import argparse
import time

import mlflow
import torch
from mlflow.tracking import MlflowClient

from benchmarks.common import machine, real_data
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.decoding.search import translate_ids
from nmt.components.tracking.uri import resolve_tracking_uri
from nmt.components.models.factory import build
from nmt.pipeline.config import load_config
from nmt.pipeline.trained import model_spec
from nmt.pipeline.trained import trained_model

ARCH_OF = {"gru": "seq2seq", "attention": "attention", "transformer": "transformer"}


def trained(arch: str):
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id], f"tags.`nmt.stage` = 'train' and attributes.status = 'FINISHED' "
                              f"and params.`model.arch` = '{ARCH_OF[arch]}'", order_by=["attributes.start_time DESC"])
    for r in runs:
        if arch != "gru" or r.data.params.get("model.cell") == "gru":
            return trained_model(r.info.run_id)[0], r.info.run_id
    return None


def decode_all(model, loader, beam: int) -> tuple[float, int]:
    n, t = 0, time.perf_counter()
    for b in loader:
        translate_ids(model, b["src"], b["src_mask"], beam_size=beam)
        n += b["src"].size(0)
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracking-uri", default=None)
    ap.add_argument("--limit", type=int, default=None, help="first N test sentences")
    ap.add_argument("--archs", nargs="+", default=["gru", "attention", "transformer"])
    args = ap.parse_args()
    mlflow.set_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    cfg, data_dir, codec = real_data()
    dm = TranslationDataModule(data_dir, max_tokens=4096)
    dm.setup()
    if args.limit:
        dm.ds["test_2016_flickr"] = dm.ds["test_2016_flickr"].select(range(args.limit))
    loader = list(dm.split_loader("test_2016_flickr"))
    print(f"# decoding test_2016_flickr ({sum(b['src'].size(0) for b in loader)} sentences, batches of "
          f"<= 8192 tokens), fp32\n# {machine()}\n")
    print(f"{'model':34s} {'greedy sent/s':>14s} {'beam5 sent/s':>13s} {'beam5 total s':>14s}")
    for arch in args.archs:
        found = trained(arch)
        if found:
            model, run_id = found
            name = f"{arch} (run {run_id[:8]})"
        else:
            acfg = load_config([f"model={arch}"])
            model, name = build(model_spec(acfg, codec)).eval(), f"{arch} (untrained)"
        with torch.inference_mode():
            tg, n = decode_all(model, loader, 1)
            tb, _ = decode_all(model, loader, 5)
        print(f"{name:34s} {n / tg:14.1f} {n / tb:13.1f} {tb:14.1f}", flush=True)
        if arch == "transformer":
            sub = loader[: max(1, len(loader) // 5)]
            with torch.inference_mode():
                model.incremental = True
                ti, m = decode_all(model, sub, 5)
                model.incremental = False
                tr, _ = decode_all(model, sub, 5)
                model.incremental = True
            print(f"  incremental vs recomputed prefix, beam 5, {m} sentences: {m / ti:.1f} vs {m / tr:.1f} "
                  f"sent/s = {tr / ti:.2f}x", flush=True)


if __name__ == "__main__":
    main()
