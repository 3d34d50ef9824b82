"""Training throughput (target tokens/s) of each architecture at its default size, fp32 and
bf16 autocast, on real bucketed Multi30k batches, beside a plain-PyTorch reference: an
``nn.Transformer`` of the same size with a hand-written step, fed the same sentences in
random (unbucketed) batches as a plain script would, and in our bucketed batches.

    python benchmarks/bench_training.py [--steps 12] [--archs gru attention transformer]

Lightning's share is measured too: the same model and batches through ``pl.Trainer``
versus a bare loop. Figures are medians over steps after a warm-up; ratios are taken
within this one process.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from benchmarks.common import machine, real_data, train_batches
from nmt.components.data.datamodule import collate
from nmt.components.data.tokenizer import PAD_ID
from nmt.components.training.devices import native_bf16
from nmt.components.training.lit_module import TranslationModule
from nmt.components.models.factory import build
from nmt.pipeline.config import load_config
from nmt.pipeline.trained import model_spec


class RefTransformer(nn.Module):
    """The reference: torch's own nn.Transformer, d=256, 3+3 layers, 8 heads, ff 1024."""

    def __init__(self, vocab: int, d: int = 256):
        super().__init__()
        self.d = d
        self.emb = nn.Embedding(vocab, d, padding_idx=PAD_ID)
        self.pos = nn.Embedding(512, d)
        self.core = nn.Transformer(d, 8, 3, 3, 1024, 0.1, batch_first=True)
        self.out = nn.Linear(d, vocab)

    def forward(self, src, src_mask, tgt_in):
        def embed(x):
            return self.emb(x) * math.sqrt(self.d) + self.pos(torch.arange(x.size(1)))
        causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1))
        h = self.core(embed(src), embed(tgt_in), tgt_mask=causal, src_key_padding_mask=~src_mask,
                      tgt_key_padding_mask=tgt_in == PAD_ID, memory_key_padding_mask=~src_mask)
        return self.out(h)


def bare_loop(model, batches, bf16: bool, fused: bool = True) -> float:
    """Tokens/s of a hand-written step (Adam, grad clip) over ``batches`` after 2 warm-up steps."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused)
    tokens, elapsed = 0, 0.0
    for i, b in enumerate(batches):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b["src"], b["src_mask"], b["tgt_in"])
            logits = out[0] if isinstance(out, tuple) else out
        loss = F.cross_entropy(logits.flatten(0, 1).float(), b["tgt_out"].flatten(), ignore_index=PAD_ID)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 2:
            elapsed += time.perf_counter() - t
            tokens += int((b["tgt_out"] != PAD_ID).sum())
    return tokens / elapsed


def lightning_loop(model, cfg, batches, bf16: bool) -> float:
    module = TranslationModule(model, optim=cfg.optim, detokenize=None, grad_clip=1.0)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         accelerator="cpu", precision="bf16-mixed" if bf16 else "32")
    times: list[float] = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a):
            self.t = time.perf_counter()

        def on_train_batch_end(self, *a):
            times.append(time.perf_counter() - self.t)

    trainer.callbacks.append(Timer())
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))
    tokens = sum(int((b["tgt_out"] != PAD_ID).sum()) for b in batches[2:])
    return tokens / sum(times[2:])


def unbucketed(batches: list[dict], seed: int = 0) -> list[dict]:
    """The same sentences re-dealt into random batches of the same sizes."""
    rows = [{"idx": 0, "src_ids": [t for t in b["src"][i].tolist() if t != PAD_ID][:-1],
             "tgt_ids": b["tgt_out"][i][b["tgt_out"][i] != PAD_ID].tolist()[:-1], "tgt": ""}
            for b in batches for i in range(b["src"].size(0))]
    random.Random(seed).shuffle(rows)
    out, k = [], 0
    for b in batches:
        n = b["src"].size(0)
        out.append(collate(rows[k:k + n]))
        k += n
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--archs", nargs="+", default=["gru", "attention", "transformer"])
    ap.add_argument("--bf16", choices=["auto", "yes", "no"], default="auto",
                    help="also measure bf16 autocast; auto: only where the CPU has native bf16 (AMX/AVX512-BF16)")
    args = ap.parse_args()
    precisions = (False, True) if args.bf16 == "yes" or (args.bf16 == "auto" and native_bf16("cpu")) else (False,)
    torch.manual_seed(0)
    cfg, data_dir, codec = real_data()
    batches = train_batches(data_dir, args.steps)
    pad_src = sum(int((~b["src_mask"]).sum()) for b in batches) / sum(b["src"].numel() for b in batches)
    shuffled = unbucketed(batches)
    pad_rand = sum(int((~b["src_mask"]).sum()) for b in shuffled) / sum(b["src"].numel() for b in shuffled)
    print(f"# training throughput, target tokens/s (median-free: total tokens / total time over "
          f"{args.steps - 2} steps after 2 warm-up)\n# {machine()}")
    if precisions == (False,):
        print("# bf16 not measured: this CPU has no native bf16, torch would emulate it (--bf16 yes forces it)")
    print(f"# batches: 4096-token budget, bucketed source padding {pad_src:.1%}, random batches {pad_rand:.1%}\n")
    print(f"{'model':28s} {'precision':9s} {'ours (Lightning)':>17s} {'ours (bare loop)':>17s} {'Lightning overhead':>19s}")
    ref = {}
    for bf16 in precisions:
        prec = "bf16" if bf16 else "fp32"
        torch.manual_seed(0)
        r = RefTransformer(codec.tgt.get_vocab_size())
        ref[prec] = (bare_loop(r, shuffled, bf16, fused=False), bare_loop(r, batches, bf16, fused=False))
    for arch in args.archs:
        acfg = load_config([f"model={arch}"] + (["optim=noam"] if arch == "transformer" else []))
        for bf16 in precisions:
            prec = "bf16" if bf16 else "fp32"
            torch.manual_seed(0)
            model = build(model_spec(acfg, codec))
            lit = lightning_loop(model, acfg, batches, bf16)
            bare = bare_loop(model, batches, bf16)
            print(f"{arch + f' ({model.num_parameters() / 1e6:.1f}M)':28s} {prec:9s} {lit:17.0f} {bare:17.0f} "
                  f"{(bare - lit) / bare:18.1%}", flush=True)
            if arch == "transformer":
                rr, rb = ref[prec]
                print(f"{'  nn.Transformer reference':28s} {prec:9s} random batches {rr:8.0f}  bucketed {rb:8.0f}"
                      f"   ours/ref: {lit / rr:.2f}x (random), {lit / rb:.2f}x (same batches)", flush=True)


if __name__ == "__main__":
    main()
