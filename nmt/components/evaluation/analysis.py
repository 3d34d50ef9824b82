"""Analyses of a test set's translations: BLEU by source length (Bahdanau et al. 2015,
Fig. 2: the fixed-vector RNN degrades on long sentences, attention does not)."""

from __future__ import annotations

from dataclasses import dataclass

from nmt.components.evaluation.scoring import corpus_bleu

LENGTH_EDGES = (10, 15, 20, 25)  # source tokens: <=10, 11-15, 16-20, 21-25, >25


def bucket_label(n: int, edges: tuple[int, ...] = LENGTH_EDGES) -> str:
    """The bucket of a source of ``n`` tokens: "1-10", "11-15", ..., ">25"."""
    low = 1
    for edge in edges:
        if n <= edge:
            return f"{low}-{edge}"
        low = edge + 1
    return f">{edges[-1]}"


def bucket_labels(edges: tuple[int, ...] = LENGTH_EDGES) -> list[str]:
    """All labels in length order."""
    return [bucket_label(e, edges) for e in edges] + [f">{edges[-1]}"]


@dataclass(frozen=True)
class BucketScore:
    bucket: str
    sentences: int
    bleu: float | None  # None for an empty bucket


def bleu_by_length(src_lens: list[int], hyps: list[str], refs: list[str], edges: tuple[int, ...] = LENGTH_EDGES,
                   tokenize: str = "13a") -> list[BucketScore]:
    """Corpus BLEU (sacreBLEU tokenizer ``tokenize``) of the sentences in each bucket of source
    length, counted in the model's subword tokens: whitespace words would put every sentence
    of a language written without spaces into the first bucket."""
    if not len(src_lens) == len(hyps) == len(refs):
        raise ValueError(f"{len(src_lens)} sources, {len(hyps)} hypotheses, {len(refs)} references")
    groups: dict[str, list[int]] = {label: [] for label in bucket_labels(edges)}
    for i, n in enumerate(src_lens):
        groups[bucket_label(n, edges)].append(i)
    out = []
    for label, idx in groups.items():
        bleu = corpus_bleu([hyps[i] for i in idx], [refs[i] for i in idx], tokenize).score if idx else None
        out.append(BucketScore(label, len(idx), bleu))
    return out
