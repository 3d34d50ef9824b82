"""sacreBLEU wrappers (Post 2018): BLEU, chrF and TER on one 0-100 scale, each with its
signature so that a score can be reproduced."""

from __future__ import annotations

from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF, TER


@dataclass(frozen=True)
class Score:
    name: str
    score: float       # 0-100 (TER: lower is better)
    signature: str


def corpus_bleu(hyps: list[str], refs: list[str]):
    """Corpus BLEU of detokenized hypotheses against one raw reference each."""
    return BLEU().corpus_score(hyps, [refs])


def corpus_scores(hyps: list[str], refs: list[str]) -> dict[str, Score]:
    """BLEU, chrF and TER, all on 0-100, with their sacreBLEU signatures."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    out = {}
    for name, metric in (("bleu", BLEU()), ("chrf", CHRF()), ("ter", TER())):
        res = metric.corpus_score(hyps, [refs])
        out[name] = Score(name, float(res.score), str(metric.get_signature()))
    return out
