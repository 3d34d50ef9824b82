"""Paired bootstrap resampling (Koehn 2004) for corpus BLEU, through sacreBLEU's own
implementation (``sacrebleu.significance.PairedTest``), so that a p-value here equals
``sacrebleu REF -i A B --paired-bs --paired-bs-n N`` with ``SACREBLEU_SEED=seed``.

Every function takes ``tokenize``, BLEU's sacreBLEU tokenizer: the one chosen for the target
language (:func:`nmt.components.evaluation.scoring.choose_metric`), ``13a`` by default.

The test is sacreBLEU's: two-sided, "is the difference between the systems due to chance",
``p = (#{resampled |diff| - mean >= |observed diff|} + 1) / (n + 1)``. Whether the
difference goes the right way is for the caller to check (``bleu_b > bleu_a``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest, estimate_ci

DEFAULT_RESAMPLES = 1000    # sacreBLEU's default for --paired-bs-n
DEFAULT_SEED = 12345        # sacreBLEU's default SACREBLEU_SEED


class PairedBleu(NamedTuple):
    bleu_a: float           # the baseline (sacreBLEU's first system)
    bleu_b: float
    p_value: float


@contextlib.contextmanager
def _sacrebleu_seed(seed: int) -> Iterator[None]:
    """sacreBLEU takes its seed from ``$SACREBLEU_SEED`` only; set it for one test."""
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(hyps_a: Sequence[str], hyps_b: Sequence[str], refs: Sequence[str], *,
                     n_samples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, tokenize: str = "13a") -> PairedBleu:
    """Corpus BLEU of ``a`` (baseline) and ``b`` against one reference each, and the
    paired-bootstrap p-value of their difference."""
    if not (len(hyps_a) == len(hyps_b) == len(refs)):
        raise ValueError(f"{len(hyps_a)} and {len(hyps_b)} hypotheses for {len(refs)} references")
    if not refs:
        raise ValueError("no sentences to compare")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if seed < 1:  # sacreBLEU treats a seed of 0 as "unseeded"
        raise ValueError(f"seed must be >= 1, got {seed}")
    with _sacrebleu_seed(seed):
        test = PairedTest([("a", list(hyps_a)), ("b", list(hyps_b))], {"bleu": BLEU(tokenize=tokenize)},
                          references=[list(refs)], test_type="bs", n_samples=n_samples)
        _, scores = test()
    base, system = scores["BLEU"]
    return PairedBleu(float(base.score), float(system.score), float(system.p_value))


# ---------------------------------------------------------------- several seeds, several systems
# A system trained with k seeds is k hypothesis files over one test set. Two sources of noise:
# which test sentences were drawn (the corpus is one sample) and which seed trained the model.
# The interval draws both (a two-level bootstrap): each replicate resamples the sentences (the
# same indices sacreBLEU's --confidence draws, so with one seed the interval *is* sacreBLEU's)
# and, independently, k seeds with replacement; its score is the corpus BLEU of the drawn seeds'
# outputs on the drawn sentences pooled. The p-value of two systems is sacreBLEU's paired
# bootstrap over the pooled corpora (seed i of A beside seed i of B, the test set repeated k
# times): it asks whether the gap is sentence-sampling noise given these k models each.


class SystemInterval(NamedTuple):
    bleu: float                  # corpus BLEU of the k seeds' outputs pooled (0-100)
    mean: float                  # mean of the bootstrap replicates
    ci: float                    # half-width: the 95% interval is mean +- ci (sacreBLEU's convention)
    seeds: tuple[float, ...]     # each seed's own corpus BLEU


class PairResult(NamedTuple):
    a: str                       # the first system (the baseline of an ablation)
    b: str
    delta: float                 # pooled BLEU of b minus that of a
    delta_ci: float              # half-width of the 95% interval of the difference (paired replicates)
    p_value: float               # sacreBLEU's paired bootstrap, pooled seeds
    p_holm: float                # Holm-adjusted over every pair tested together


def _stats(hyps: Sequence[str], refs: Sequence[str], tokenize: str) -> np.ndarray:
    """sacreBLEU's sufficient statistics per sentence: (n, 2 + 2 * max_ngram_order)."""
    return np.array(BLEU(tokenize=tokenize)._extract_corpus_statistics(list(hyps), [list(refs)]), dtype="float32")


def replicates(hyps_by_seed: Sequence[Sequence[str]], refs: Sequence[str], *, n_samples: int = DEFAULT_RESAMPLES,
               seed: int = DEFAULT_SEED, tokenize: str = "13a") -> np.ndarray:
    """Two-level bootstrap BLEU replicates (n_samples,) of one system; equal ``seed`` means
    equal draws, so two systems' replicates are paired."""
    if not hyps_by_seed or any(len(h) != len(refs) for h in hyps_by_seed):
        raise ValueError(f"every seed needs one hypothesis per reference ({len(refs)})")
    n, k = len(refs), len(hyps_by_seed)
    idxs = np.random.default_rng(seed).choice(n, size=(n_samples, n), replace=True)  # sacreBLEU's draw
    picks = (np.random.default_rng(seed + 1).choice(k, size=(n_samples, k), replace=True) if k > 1
             else np.zeros((n_samples, 1), dtype=int))
    sums = np.stack([_stats(h, refs, tokenize)[idxs].sum(1) for h in hyps_by_seed])  # (k, n_samples, m)
    totals = sums[picks, np.arange(n_samples)[:, None]].sum(1)  # (n_samples, m)
    metric = BLEU(tokenize=tokenize)
    return np.array([metric._compute_score_from_stats(t).score for t in totals])


def system_interval(hyps_by_seed: Sequence[Sequence[str]], refs: Sequence[str], *, n_samples: int = DEFAULT_RESAMPLES,
                    seed: int = DEFAULT_SEED, tokenize: str = "13a") -> SystemInterval:
    """Pooled BLEU and its 95% interval over sentences and seeds (see above)."""
    bleu = BLEU(tokenize=tokenize)
    pooled = bleu.corpus_score([h for hs in hyps_by_seed for h in hs], [list(refs) * len(hyps_by_seed)])
    mean, ci = estimate_ci(replicates(hyps_by_seed, refs, n_samples=n_samples, seed=seed, tokenize=tokenize))
    seeds = tuple(float(bleu.corpus_score(list(h), [list(refs)]).score) for h in hyps_by_seed)
    return SystemInterval(float(pooled.score), float(mean), float(ci), seeds)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (1979): controls the family-wise error rate over all tests."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare_pairs(systems: dict[str, Sequence[Sequence[str]]], refs: Sequence[str], pairs: Sequence[tuple[str, str]],
                  *, n_samples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, tokenize: str = "13a"
                  ) -> list[PairResult]:
    """Each pair's BLEU difference, its paired two-level interval and sacreBLEU's p-value,
    Holm-adjusted over ``pairs``. Every system needs the same number of seeds."""
    if len({len(h) for h in systems.values()}) > 1:
        raise ValueError("every system needs the same number of seeds: " +
                         ", ".join(f"{k}={len(v)}" for k, v in systems.items()))
    reps = {name: replicates(h, refs, n_samples=n_samples, seed=seed, tokenize=tokenize) for name, h in systems.items()}
    out = []
    for a, b in pairs:
        k = len(systems[a])
        pooled = lambda s: [h for hs in systems[s] for h in hs]  # noqa: E731
        test = paired_bootstrap(pooled(a), pooled(b), list(refs) * k, n_samples=n_samples, seed=seed,
                                tokenize=tokenize)
        _, ci = estimate_ci(reps[b] - reps[a])
        out.append((a, b, test.bleu_b - test.bleu_a, float(ci), test.p_value))
    adjusted = holm([r[-1] for r in out])
    return [PairResult(*r, p) for r, p in zip(out, adjusted)]
