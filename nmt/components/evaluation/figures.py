"""The figures evaluate logs (not a stage of its own): attention heatmaps of sample sentences
and BLEU by source length (Bahdanau et al. 2015, Fig. 2: the fixed-vector RNN degrades on
long sentences, attention does not).

Artifacts (under the evaluate run): ``attention/sample<i>.png`` (RNN alpha, the
Transformer's last-layer cross-attention, heads averaged, or for the plain Seq2Seq, which
has no attention, its gradient saliency), ``attention/explorer.html`` (+ its data
``explorer.json``, which `nmt compare` merges), ``attention/sample<i>_layers.png``
and ``attention/sample<i>_heads.png`` (Transformer: every layer, and the last layer per
head), ``length/bleu_by_length.json`` and ``.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from nmt.components.tracking import names as N
from nmt.components.data.batching import source_batch
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.search import beam_search, greedy_decode, max_target_len, translate_ids
from nmt.components.training.devices import device_of
from nmt.components.evaluation.explorer import map_set, render
from nmt.components.models.base import Seq2SeqModel
from nmt.components.evaluation.plots import attention_heatmap, head_grid, length_plot
from nmt.components.tracking.run import RunLog
from nmt.components.evaluation.saliency import saliency
from nmt.components.evaluation.scoring import corpus_bleu


def tokens(tok, ids: list[int]) -> list[str]:
    return [tok.id_to_token(i) or "?" for i in ids]


def sample_attention(model: Seq2SeqModel, codec: TextCodec, sentence: str
                     ) -> tuple[list[str], list[str], np.ndarray, str]:
    """Greedy-decode one sentence -> (source tokens, target tokens, weights, kind).
    kind "attention": weights (T, S) for RNN attention, (L, nh, T, S) for the Transformer.
    kind "saliency": the plain Seq2Seq has no attention; (T, S) gradient saliency instead."""
    ids = codec.encode_src([sentence])
    src, mask = (t.to(device_of(model)) for t in source_batch(ids))
    out, attn = greedy_decode(model, src, mask, max_target_len(mask))
    tgt = out[0].tolist()
    if model.eos_id in tgt:
        tgt = tgt[: tgt.index(model.eos_id) + 1]
    if attn.shape[-1] == 0:
        weights = saliency(model, src, mask, torch.tensor([tgt], device=src.device))[0].cpu().numpy()
        kind = "saliency"
    else:
        weights = attn[0][..., : len(tgt), :].float().cpu().numpy()
        kind = "attention"
    return tokens(codec.src, src[0].tolist()), tokens(codec.tgt, tgt), weights, kind


def log_attention_maps(run: RunLog, model: Seq2SeqModel, codec: TextCodec, sentences: list[str], label: str,
                       out: Path) -> int:
    """Write the heatmaps of ``sentences`` and log them into ``run``; returns how many were
    drawn. Tags the run ``analysis.map`` = attention | saliency (what the maps show)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn, kind = 0, None
    for i, sentence in enumerate(sentences):
        src_t, tgt_t, w, kind = sample_attention(model, codec, sentence)
        if kind == "saliency":  # plain Seq2Seq: one fixed context vector, no alpha to draw
            figs = {f"sample{i}.png": attention_heatmap(w, src_t, tgt_t, f"{label}: no attention; gradient "
                                                        f"saliency (black = {w.max():.2f})", vmax=float(w.max()))}
        elif w.ndim == 2:  # RNN: alpha (T, S)
            figs = {f"sample{i}.png": attention_heatmap(w, src_t, tgt_t, f"{label}: attention weights alpha_ij")}
        else:  # Transformer: (L, nh, T, S)
            L = w.shape[0]
            layers, axes = plt.subplots(1, L, figsize=(L * (0.3 * len(src_t) + 2), 0.3 * len(tgt_t) + 2), squeeze=False)
            for layer in range(L):
                attention_heatmap(w[layer].mean(0), src_t, tgt_t, f"layer {layer + 1} (heads averaged)", ax=axes[0][layer])
            figs = {f"sample{i}.png": attention_heatmap(w[-1].mean(0), src_t, tgt_t,
                                                        f"{label}: last layer, heads averaged"),
                    f"sample{i}_layers.png": layers,
                    f"sample{i}_heads.png": head_grid(w[-1], src_t, tgt_t, f"{label}: last layer per head")}
        for name, fig in figs.items():
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
        drawn += 1
    if drawn:
        run.log_artifacts(out, N.ATTENTION_DIR)
        run.set_tag(N.TAG_MAP, kind)
    return drawn


def log_length_analysis(run: RunLog, src_lens: list[int], hyps: list[str], refs: list[str], label: str,
                        out: Path, tokenize: str = "13a") -> None:
    """BLEU by source length (in tokens), as JSON, a figure and a table."""
    scores = bleu_by_length(src_lens, hyps, refs, tokenize=tokenize)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"bucket": s.bucket, "sentences": s.sentences, "bleu": s.bleu} for s in scores]
    (out / N.LENGTH_JSON).write_text(json.dumps(rows, indent=2))
    fig = length_plot({label: [(s.bucket, s.bleu) for s in scores]}, f"BLEU by source length: {label}")
    fig.savefig(out / N.LENGTH_PNG, dpi=110)
    plt.close(fig)
    run.log_artifacts(out, N.LENGTH_DIR)
    run.log_table({k: [r[k] for r in rows] for k in rows[0]}, f"{N.LENGTH_DIR}/{N.LENGTH_TABLE}")


def explorer_entry(model: Seq2SeqModel, codec: TextCodec, sentences: list[str], label: str,
                   beam_size: int) -> dict:
    """One model's part of the attention explorer (nmt.components.evaluation.explorer): per sentence its
    greedy output with every map, and the beam's hypotheses after each step."""
    entry: dict = {"label": label, "kind": "attention", "sentences": []}
    for sentence in sentences:
        src_t, tgt_t, w, kind = sample_attention(model, codec, sentence)
        src, mask = (t.to(device_of(model)) for t in source_batch(codec.encode_src([sentence])))
        steps: list = []
        beam_search(model, src, mask, max(beam_size, 1), max_target_len(mask), with_attention=False, steps=steps)
        beam = [[[tokens(codec.tgt, ids), round(score, 3)] for ids, score in step.get(0, [])] for step in steps]
        output = codec.decode_tgt(translate_ids(model, src, mask, beam_size=1))[0]
        entry["kind"] = kind
        entry["sentences"].append({"src": src_t, "tgt": tgt_t, "maps": map_set(w), "output": output, "beam": beam})
    return entry


def log_explorer(run: RunLog, entry: dict, sentences: list[str], refs: list[str], out: Path) -> None:
    """attention/explorer.json (this model's data, merged by `nmt compare`) and explorer.html."""
    out.mkdir(parents=True, exist_ok=True)
    (out / N.EXPLORER_JSON).write_text(json.dumps(entry))
    (out / N.EXPLORER_HTML).write_text(render([entry], [{"src": s, "ref": r} for s, r in zip(sentences, refs)]))
    for name in (N.EXPLORER_JSON, N.EXPLORER_HTML):
        run.log_artifact(out / name, N.ATTENTION_DIR)


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
