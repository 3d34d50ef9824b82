"""The token-budget sampler's cost per epoch at WMT14 size (issue 19).

Synthetic lengths (deterministic): 4.5M pairs, source lengths drawn like subword news
sentences (log-normal, median ~25, clipped to 1..250), targets within +-20% of them. Times
one epoch's batches (shuffled, as training draws them) for the vectorised sampler, and for
the per-index Python sort it replaced (``--old``; minutes at 4.5M, so it times a sample and
scales linearly, which favours it: the sort is O(n log n)).

    python -m benchmarks.bench_sampler --pairs 4500000 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from nmt.components.data.datamodule import TokenBudgetSampler, token_budget_batches


def synthetic_lengths(pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = np.clip(np.round(rng.lognormal(np.log(25), 0.6, pairs)), 1, 250).astype(np.int32)
    tgt = np.clip(np.round(src * rng.uniform(0.8, 1.2, pairs)), 1, 250).astype(np.int32)
    return src, tgt


def old_epoch(src: list[int], tgt: list[int], max_tokens: int, seed: int) -> int:
    """The sampler before issue 19: a Python sort keyed by a lambda, then a Python loop."""
    rng = random.Random(seed)
    order = sorted(range(len(src)), key=lambda i: (max(src[i], tgt[i]) + rng.random(), src[i]))
    batches, cur, longest = [], [], 0
    for i in order:
        n = max(src[i], tgt[i])
        if cur and max(longest, n) * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    rng.shuffle(batches)
    return len(batches) + bool(cur)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4_500_000)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--old", type=int, default=300_000, help="pairs to time the old sampler on (0: skip)")
    args = ap.parse_args()
    src, tgt = synthetic_lengths(args.pairs)
    start = time.perf_counter()
    sampler = TokenBudgetSampler(src, tgt, args.max_tokens, shuffle=True, seed=1)
    build = time.perf_counter() - start
    times, arrays = [], []
    for epoch in range(args.repeats):
        start = time.perf_counter()
        token_budget_batches(src, tgt, args.max_tokens, shuffle=True, seed=1 + epoch)  # numpy arrays only
        arrays.append(time.perf_counter() - start)
        sampler.set_epoch(epoch)
        start = time.perf_counter()
        batches = list(sampler)  # every batch as the DataLoader takes it (lists of ints)
        times.append(time.perf_counter() - start)
    n = sum(len(b) for b in batches)
    assert n == args.pairs
    print(f"pairs {args.pairs:,}  budget {args.max_tokens}  batches/epoch {len(batches):,}")
    print(f"vectorised: build {build:.2f} s (batch count); per epoch median {sorted(times)[len(times) // 2]:.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeats} epochs); of which the batches as "
          f"numpy arrays {sorted(arrays)[len(arrays) // 2]:.2f} s, the rest their conversion to lists")
    if args.old:
        s, t = src[: args.old].tolist(), tgt[: args.old].tolist()
        start = time.perf_counter()
        old_epoch(s, t, args.max_tokens, 1)
        old = time.perf_counter() - start
        print(f"old Python sort: {old:.2f} s for {args.old:,} pairs -> {old * args.pairs / args.old:.1f} s per epoch "
              f"at {args.pairs:,} (linear scaling)")


if __name__ == "__main__":
    main()
