"""Translations with their word alignments (``align: true``; as OpenNMT-py's
``-report_align``): Pharaoh links, 0-indexed source word i (of the input as given) to target
word j (of the translation as shown), read from the attention the search used
(:mod:`nmt.components.decoding.alignment`; the Transformer's penultimate layer, heads
averaged), or the plain Seq2Seq's gradient saliency on its own output.
"""

from __future__ import annotations

from typing import Any

from nmt.components.data.batching import pad
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.alignment import given_words, links, output_words
from nmt.components.decoding.forced import SALIENCY, default_readout, forced_attention, kind, readout
from nmt.components.decoding.search import beam_search, greedy_decode, max_target_len, strip_special
from nmt.components.evaluation.aer import pharaoh
from nmt.components.models.base import Seq2SeqModel
from nmt.components.serving.bounds import DecodeParams
from nmt.components.training.devices import device_of


def aligned_translations(model: Seq2SeqModel, codec: TextCodec, src, src_mask, src_ids: list[list[int]],
                         p: DecodeParams, len_extra: int) -> tuple[list[list[int]], list[str]]:
    """As :func:`~nmt.components.decoding.search.translate_ids`, plus each output's Pharaoh line from the attention its search
    used (row t: the step that produced piece t); the plain Seq2Seq's saliency on its output."""
    device = device_of(model)
    src, src_mask = src.to(device), src_mask.to(device)
    max_len = max_target_len(src_mask, p.max_len_ratio, len_extra)
    name = default_readout(model)
    if p.beam_size == 1:
        ids, attn = greedy_decode(model, src, src_mask, max_len)  # attn (B, *A, T) with time at -2
        rows = [(strip_special(r, model), attn[b]) for b, r in enumerate(ids.tolist())]
    else:
        # each step's attention cut to the readout's (S,) row as it comes: the beam copies its
        # history at every step, and a Transformer's whole (L, nh, S) made --align cost ~+30%
        hyps = beam_search(model, src, src_mask, p.beam_size, max_len, p.length_penalty,
                           with_attention=kind(model) != SALIENCY,
                           attention_view=lambda a: readout(a.movedim(0, -2), name, model))
        rows = [(strip_special(h[0].tokens, model), h[0].attention) if h else ([], None) for h in hyps]
    if kind(model) == SALIENCY:
        rows = _saliency_rows(model, src, src_mask, [toks for toks, _ in rows])
    hyp, lines = [], []
    for b, (toks, att) in enumerate(rows):
        found = set()
        if toks:
            found = links(readout(att, name, model), given_words(codec.src, src_ids[b]), output_words(codec.tgt, toks))
        hyp.append(toks)
        lines.append(pharaoh(found))
    return hyp, lines


def _saliency_rows(model: Seq2SeqModel, src, src_mask, outputs: list[list[int]]) -> list[tuple[list[int], Any]]:
    """The plain Seq2Seq's (outputs, saliency on each output + EOS), the non-empty outputs
    forced together: one backward pass per target position for the batch, not per sentence."""
    kept = [b for b, toks in enumerate(outputs) if toks]
    maps: dict[int, Any] = {}
    if kept:
        tgt = pad([outputs[b] + [model.eos_id] for b in kept]).to(src.device)  # (K, T), PAD after EOS
        sal = forced_attention(model, src[kept], src_mask[kept], tgt)  # (K, T, S)
        maps = {b: sal[k, :len(outputs[b]) + 1] for k, b in enumerate(kept)}
    return [(toks, maps.get(b)) for b, toks in enumerate(outputs)]
