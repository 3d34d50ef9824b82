"""CPU training throughput of the Transformers, and how much of the machine they use.

For ``transformer_tiny`` and ``transformer`` on the same real Multi30k batches: target
tokens/s of a hand-written training step in fp32 and in bf16 autocast (where this CPU has
native bf16), eager against ``torch.compile`` (inductor), at 1 and at all threads. MFU is
the step's matmul FLOPs (counted by ``torch.utils.flop_counter``, forward + backward) per
second over the matmul peak that this script measures on this machine at that precision.
Every ratio is taken within this one process.

    python -m benchmarks.bench_cpu [--steps 12] [--no-compile]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import machine, real_data, train_batches
from nmt.components.data.tokenizer import PAD_ID
from nmt.components.training.devices import native_bf16
from nmt.components.models.factory import build
from nmt.pipeline.config import load_config
from nmt.pipeline.trained import model_spec


def matmul_peak(bf16: bool, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n x n matmul, best of ``repeats``, at this precision and thread count."""
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def step_fn(model, opt, bf16: bool):
    def step(b):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b["src"], b["src_mask"], b["tgt_in"])
            logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.flatten(0, 1).float(), b["tgt_out"].flatten(), ignore_index=PAD_ID,
                               label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def measure(arch: str, codec, batches, bf16: bool, compiled: bool) -> tuple[float, float, float]:
    """-> target tokens/s, matmul FLOPs per second, seconds spent compiling/warming up."""
    torch.manual_seed(0)
    cfg = load_config([f"model={arch}", "optim=noam"])
    model = build(model_spec(cfg, codec)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    fwd = torch.compile(model, dynamic=True) if compiled else model
    step = step_fn(fwd, opt, bf16)
    t0 = time.perf_counter()
    for b in batches[:2]:  # warm-up (and compilation)
        step(b)
    warm = time.perf_counter() - t0
    with FlopCounterMode(display=False) as counter:  # counted eagerly on one batch, scaled by tokens
        step_fn(model, opt, bf16)(batches[2])
    flops_per_token = counter.get_total_flops() / int((batches[2]["tgt_out"] != PAD_ID).sum())
    tokens, elapsed = 0, 0.0
    for b in batches[2:]:
        t = time.perf_counter()
        step(b)
        elapsed += time.perf_counter() - t
        tokens += int((b["tgt_out"] != PAD_ID).sum())
    return tokens / elapsed, flops_per_token * tokens / elapsed, warm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--archs", nargs="+", default=["transformer_tiny", "transformer"])
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--threads", nargs="+", type=int, default=sorted({1, torch.get_num_threads()}))
    args = ap.parse_args()
    precisions = (False, True) if native_bf16("cpu") else (False,)
    _, data_dir, codec = real_data()
    batches = train_batches(data_dir, args.steps, max_tokens=2048)
    print(f"# CPU training throughput, target tokens/s over {args.steps - 2} steps after 2 warm-up "
          f"(2,048-token batches, Adam fused, label smoothing 0.1)\n# {machine()}")
    if precisions == (False,):
        print("# bf16 not measured: no native bf16 here (emulated; see nmt.components.training.devices.native_bf16)")
    for threads in args.threads:
        torch.set_num_threads(threads)
        peaks = {bf16: matmul_peak(bf16) for bf16 in precisions}
        print(f"\n## {threads} thread(s); matmul peak (2048^3): "
              + ", ".join(f"{'bf16' if k else 'fp32'} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
        print(f"{'model':26s} {'prec':5s} {'mode':8s} {'tokens/s':>9s} {'vs eager':>9s} {'GFLOP/s':>8s} "
              f"{'MFU':>6s} {'warm-up s':>9s}")
        for arch in args.archs:
            for bf16 in precisions:
                eager = None
                for compiled in (False,) if args.no_compile else (False, True):
                    tps, fps, warm = measure(arch, codec, batches, bf16, compiled)
                    eager = eager or tps
                    print(f"{arch:26s} {'bf16' if bf16 else 'fp32':5s} {'compile' if compiled else 'eager':8s} "
                          f"{tps:9.0f} {tps / eager:8.2f}x {fps / 1e9:8.1f} {fps / peaks[bf16]:6.1%} {warm:9.1f}",
                          flush=True)


if __name__ == "__main__":
    main()
