"""sacreBLEU wrappers (Post 2018): BLEU, chrF and TER on one 0-100 scale, each with its
signature so that a score can be reproduced; and the BLEU conventions of published papers,
always reported beside sacreBLEU's standard score, never instead of it.

Papers before sacreBLEU scored tokenized, often lowercased text, which gives higher numbers
than detokenized, cased BLEU (Post 2018, table 1). To set our figures beside theirs we score
the same way they did:

* ``moses_lc``: lowercase, Moses punctuation normalization, Moses tokenization (the Multi30k
  task's ``*.lc.norm.tok`` files; ``sacremoses``), then BLEU over those tokens as they are
  (sacreBLEU ``tokenize='none'``, what fairseq's and multi-bleu.perl's scorers compute):
  Wu et al. 2021's scoring of the tiny Transformer on Multi30k.
* ``lc``: sacreBLEU's own 13a tokenization, lowercased: the closest to bentrevett's
  pytorch-seq2seq tutorials (lowercased spaCy tokens, greedy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sacrebleu.metrics import BLEU, CHRF, TER

Convention = Literal["moses_lc", "lc"]
CONVENTIONS: tuple[str, ...] = ("moses_lc", "lc")


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


@lru_cache(maxsize=8)
def _moses(lang: str):
    from sacremoses import MosesPunctNormalizer, MosesTokenizer  # only where a paper's scoring is asked for
    return MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)


def moses_lc(text: str, lang: str) -> str:
    """``text`` as the Multi30k task's ``lc.norm.tok`` files hold it: lowercased, punctuation
    normalized, Moses-tokenized (no XML escaping: it changes no token boundary)."""
    norm, tok = _moses(lang)
    return tok.tokenize(norm.normalize(text.lower()), return_str=True, escape=False)


def paper_bleu(hyps: list[str], refs: list[str], convention: Convention, lang: str) -> Score:
    """Corpus BLEU of detokenized hypotheses under a paper's ``convention`` (module
    docstring); ``lang``: the target language (Moses's rules differ by language)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if convention == "moses_lc":
        metric, pre = BLEU(tokenize="none", lowercase=True, force=True), "|pre:moses-norm+moses-tok"  # force: tokenized on purpose
        hyps, refs = [moses_lc(h, lang) for h in hyps], [moses_lc(r, lang) for r in refs]
    elif convention == "lc":
        metric, pre = BLEU(lowercase=True), ""
    else:
        raise ValueError(f"unknown BLEU convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    score = float(metric.corpus_score(hyps, [refs]).score)  # the signature needs a scored corpus
    return Score(f"bleu_{convention}", score, f"{metric.get_signature()}{pre}")
