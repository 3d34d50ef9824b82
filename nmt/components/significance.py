"""Paired bootstrap resampling (Koehn 2004) for corpus BLEU, through sacreBLEU's own
implementation (``sacrebleu.significance.PairedTest``), so that a p-value here equals
``sacrebleu REF -i A B --paired-bs --paired-bs-n N`` with ``SACREBLEU_SEED=seed``.

The test is sacreBLEU's: two-sided, "is the difference between the systems due to chance",
``p = (#{resampled |diff| - mean >= |observed diff|} + 1) / (n + 1)``. Whether the
difference goes the right way is for the caller to check (``bleu_b > bleu_a``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

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
                     n_samples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> PairedBleu:
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
        test = PairedTest([("a", list(hyps_a)), ("b", list(hyps_b))], {"bleu": BLEU()},
                          references=[list(refs)], test_type="bs", n_samples=n_samples)
        _, scores = test()
    base, system = scores["BLEU"]
    return PairedBleu(float(base.score), float(system.score), float(system.p_value))
