"""Forced decoding: the model run teacher-forced on a given reference, and its attention read
out (how the alignment literature scores a translation model's alignments).

Row t of every map is the step that *predicts* reference piece t (its input is piece t-1):
the attention the model used to produce that word. What is read out, by architecture:

* Bahdanau / Luong attention: alpha_ij (Bahdanau et al. 2015, eq. 6), ``alpha``.
* Transformer: the encoder-decoder attention of every decoder layer and head, (L, nh, T, S);
  :func:`readout` names a view of it: ``layer N head H``, ``layer N`` (heads averaged),
  ``penultimate`` (layer L-1, heads averaged: Garg et al. 2019, section 4.2, found it the
  best aligned; layer 1 of a one-layer model) or ``mean`` (all layers and heads averaged).
* The plain Seq2Seq has no attention: ``saliency``, its gradient saliency
  (:mod:`nmt.components.evaluation.saliency`), which says what each output is sensitive
  to, not where the model looks.

Shapes: ``B`` sentences, ``T`` reference pieces + EOS, ``S`` source pieces + EOS, ``L``
decoder layers, ``nh`` heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.components.data.batching import pad, source_batch
from nmt.components.data.text import normalize
from nmt.components.data.tokenizer import EOS_ID, TextCodec
from nmt.components.decoding.alignment import Link, given_words, links
from nmt.components.evaluation.saliency import saliency
from nmt.components.models.base import Seq2SeqModel
from nmt.components.system.errors import ConfigError
from nmt.components.training.devices import device_of

ALPHA, SALIENCY, PENULTIMATE, MEAN = "alpha", "saliency", "penultimate", "mean"


def kind(model: Seq2SeqModel) -> str:
    """``attention`` for the models that have it, ``saliency`` for the plain Seq2Seq."""
    return SALIENCY if model.cfg.arch == "seq2seq" else "attention"


def forced_attention(model: Seq2SeqModel, src: Tensor, src_mask: Tensor, tgt: Tensor) -> Tensor:
    """src, src_mask (B, S); tgt (B, T) the reference ids with EOS, PAD after it.
    -> (B, T, S) alpha or saliency, or the Transformer's (B, L, nh, T, S) cross-attention.
    Runs in eval mode (no dropout) and restores the model's mode."""
    bos = torch.full_like(tgt[:, :1], model.bos_id)
    tgt_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T): BOS y_1 .. y_{T-1}, teacher-forced
    was_training = model.training
    model.eval()
    try:
        if kind(model) == SALIENCY:  # one backward pass per target position for the whole batch
            return saliency(model, src, src_mask, tgt)
        with torch.inference_mode():
            return model(src, src_mask, tgt_in, need_weights=True)[1]
    finally:
        model.train(was_training)


def readouts(model: Seq2SeqModel) -> list[str]:
    """Every view :func:`readout` offers for ``model``: each layer and head, each layer, the
    mean and the penultimate layer for a Transformer; ``alpha`` or ``saliency`` otherwise."""
    if kind(model) == SALIENCY:
        return [SALIENCY]
    if model.cfg.arch != "transformer":
        return [ALPHA]
    L, nh = model.cfg.num_decoder_layers, model.cfg.num_heads
    per_layer = [f"layer {n}" for n in range(1, L + 1)]
    heads = [f"layer {n} head {h}" for n in range(1, L + 1) for h in range(1, nh + 1)]
    return [MEAN, PENULTIMATE, *per_layer, *heads]


def default_readout(model: Seq2SeqModel) -> str:
    return readouts(model)[1] if model.cfg.arch == "transformer" else readouts(model)[0]


def readout_name(layer: str | int | None, head: int | None) -> str | None:
    """``--layer`` / ``--head`` as a readout name (None: the model's default)."""
    if layer is None and head is None:
        return None
    if head is not None and not str(layer).isdigit():
        raise ConfigError(f"--head {head} needs --layer N (a layer number); "
                          f"heads of {layer or 'the default layer'} are averaged")
    if str(layer).isdigit():
        return f"layer {int(layer)}" + (f" head {head}" if head is not None else "")
    return str(layer)


def check_readout(name: str, model: Seq2SeqModel) -> None:
    """ConfigError listing the valid names when ``name`` is not a readout of ``model``."""
    valid = readouts(model)
    if name not in valid:
        shown = valid if len(valid) <= 8 else [*valid[:4], "layer N head H"]
        raise ConfigError(f"--layer {name!r}: not a readout of this {model.cfg.label}; valid: {', '.join(shown)}")


def readout(attn: Tensor, name: str, model: Seq2SeqModel) -> Tensor:
    """One sentence's attention, (T, S) or (L, nh, T, S) -> the (T, S) map ``name`` names."""
    check_readout(name, model)
    if attn.dim() == 2:
        return attn
    if name == MEAN:
        return attn.mean(dim=(0, 1))
    if name == PENULTIMATE:
        return attn[max(attn.shape[0] - 2, 0)].mean(0)
    parts = name.split()
    layer = attn[int(parts[1]) - 1]  # (nh, T, S)
    return layer[int(parts[3]) - 1] if len(parts) == 4 else layer.mean(0)


def align_pairs(model: Seq2SeqModel, codec: TextCodec, sources: list[str], targets: list[str],
                names: list[str], batch_size: int = 32) -> dict[str, list[set[Link]]]:
    """Word links of each (source, reference) pair under each readout of ``names`` (see
    :mod:`nmt.components.decoding.alignment` for the mapping to words). A pair with an empty
    side has no links; text past the model's ``max_positions`` is cut, and its words get none."""
    if len(sources) != len(targets):
        raise ConfigError(f"{len(sources)} source lines for {len(targets)} target lines; give one target per source")
    # pieces a side may keep, EOS being added after them (serving's source_limit, which decoding may not import)
    limit = None if model.max_positions is None else model.max_positions - 1
    src_ids = [ids[:limit] for ids in codec.encode_src([normalize(t) for t in sources])]
    tgt_ids = [e.ids[:limit] for e in codec.tgt.encode_batch([normalize(t) for t in targets])]
    out: dict[str, list[set[Link]]] = {n: [set() for _ in sources] for n in names}
    todo = sorted((i for i in range(len(sources)) if src_ids[i] and tgt_ids[i]), key=lambda i: len(src_ids[i]))
    device = device_of(model)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        src, src_mask = source_batch([src_ids[i] for i in chunk])
        tgt = pad([tgt_ids[i] + [EOS_ID] for i in chunk])
        attn = forced_attention(model, src.to(device), src_mask.to(device), tgt.to(device)).float().cpu()
        for b, i in enumerate(chunk):
            sw, tw = given_words(codec.src, src_ids[i]), given_words(codec.tgt, tgt_ids[i])
            for name in names:
                out[name][i] = links(readout(attn[b], name, model), sw, tw)
    return out
