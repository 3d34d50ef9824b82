"""Greedy and beam search, written once over :class:`Seq2SeqModel`'s small interface.

Every function only calls ``encode`` / ``init_state`` / ``decode_step`` and reorders
states with :func:`select_state`, so each architecture gets all of them for free.
They run under ``torch.inference_mode()`` and leave train/eval mode to the caller
(call ``model.eval()`` first, or dropout stays on). PAD and BOS are never produced.

Shapes: ``B`` sentences, ``K`` beam size, ``S`` source, ``T`` output length, ``V``
vocabulary; ``A`` is the per-step attention shape ((S,) for RNNs, (L, nh, S) for the
Transformer, (0,) for the plain Seq2Seq).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from nmt.components.decoding import LEN_EXTRA, LEN_RATIO, LENGTH_PENALTY
from nmt.components.training.devices import device_of
from nmt.components.models.base import Seq2SeqModel, select_state


@dataclass
class Hypothesis:
    """One finished translation: ids without BOS, ending with EOS unless max_len hit."""

    tokens: list[int]
    score: float  # log P(tokens | src) / lp(|tokens|), higher is better
    attention: Tensor | None = None  # *A with time at dim -2: (T, S) or (L, nh, T, S)


def gnmt_penalty(length: int, alpha: float) -> float:
    """lp(Y) = ((5 + |Y|) / 6)^alpha, Wu et al. 2016 (GNMT), section 7 eq. 14."""
    return ((5.0 + length) / 6.0) ** alpha


def max_target_len(src_mask: Tensor, ratio: float = LEN_RATIO, extra: int = LEN_EXTRA) -> int:
    """Decoding budget: ``ratio`` x the longest source in the batch + ``extra``."""
    return int(ratio * int(src_mask.sum(dim=1).max())) + extra


def step_budget(model: Seq2SeqModel, max_len: int) -> int:
    """Decoding steps actually run: ``max_len`` (at least 1), never past the model's
    ``max_positions`` (step t embeds position t, so T steps need T positions)."""
    steps = max(max_len, 1)
    return min(steps, model.max_positions) if model.max_positions else steps


def _forbid_specials(logits: Tensor, model: Seq2SeqModel) -> Tensor:
    """PAD and BOS are never a valid next token (as in fairseq): their logits -> -inf."""
    logits = logits.clone()
    logits[:, [model.pad_id, model.bos_id]] = float("-inf")
    return logits


@torch.inference_mode()
def greedy_decode(
    model: Seq2SeqModel, src: Tensor, src_mask: Tensor, max_len: int
) -> tuple[Tensor, Tensor]:
    """-> ids (B, T<=max_len) without BOS, pad after each row's EOS; attention (B, *A, T)
    with time at dim -2 like the models' ``forward``. Stops once every row has its EOS."""
    B = src.shape[0]
    state = model.init_state(model.encode(src, src_mask), src_mask)
    y = src.new_full((B,), model.bos_id)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    ids, attn = [], []
    for _ in range(step_budget(model, max_len)):
        logits, state, a = model.decode_step(y, state)
        y = _forbid_specials(logits, model).argmax(dim=-1)  # (B,)
        y = y.masked_fill(done, model.pad_id)
        ids.append(y)
        attn.append(a)
        done |= y == model.eos_id
        if bool(done.all()):
            break
    return torch.stack(ids, dim=1), torch.stack(attn, dim=-2)


@dataclass
class _Beams:
    """Live hypotheses of a batched search over the sentences still open; row ``b * K + k``
    is beam k of open sentence b, which is sentence ``index[b]`` of the input batch."""

    K: int
    tokens: Tensor  # (B*K, t) ids so far, no BOS
    scores: Tensor  # (B, K) sum of log-probs, sorted best first
    attn: Tensor | None  # (B*K, t, *A), None until the first step or when not kept
    keep_attn: bool
    done: Tensor  # (B,) sentence has K finished hypotheses nothing live can beat
    finished: list[list[Hypothesis]] = field(default_factory=list)  # per input sentence
    index: list[int] = field(default_factory=list)  # open sentence b -> input sentence


def _append(history: Tensor | None, rows: Tensor, new: Tensor) -> Tensor:
    """history[rows] with ``new[rows]`` appended as the last step (dim 1)."""
    new = new.index_select(0, rows).unsqueeze(1)
    return new if history is None else torch.cat([history.index_select(0, rows), new], dim=1)


def _expand(beams: _Beams, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Score every one-token extension; keep the best 2K per sentence (at most K are EOS,
    one per beam, so at least K live ones remain). -> scores, beam, token: (B, 2K)."""
    B, K = beams.scores.shape
    V = logits.shape[-1]
    logp = logits.float().log_softmax(dim=-1).view(B, K, V)
    total = (beams.scores.unsqueeze(-1) + logp).view(B, K * V)  # log P(y_<=t | x)
    scores, flat = total.topk(min(2 * K, K * V), dim=-1)  # sorted, best first
    return scores, flat // V, flat % V


def _finish(beams: _Beams, scores: Tensor, beam: Tensor, token: Tensor, attn: Tensor,
            eos_id: int, alpha: float) -> None:
    """Set aside EOS extensions ranked within the top K of still-open sentences."""
    K = beams.K
    is_eos = token[:, :K] == eos_id
    for b, r in is_eos.nonzero().tolist():
        score = float(scores[b, r])
        if beams.done[b] or not math.isfinite(score):
            continue
        row = b * K + int(beam[b, r])
        tokens = beams.tokens[row].tolist() + [eos_id]
        att = None
        if beams.keep_attn:
            att = _append(beams.attn, torch.tensor([row], device=attn.device), attn)[0]
        beams.finished[beams.index[b]].append(Hypothesis(tokens, score / gnmt_penalty(len(tokens), alpha), att))


def _prune(beams: _Beams, scores: Tensor, beam: Tensor, token: Tensor, attn: Tensor,
           eos_id: int) -> tuple[Tensor, Tensor]:
    """Keep the best K non-EOS extensions. -> rows of the old beams (B*K,), next tokens."""
    B, K = beams.scores.shape
    live, pos = scores.masked_fill(token == eos_id, float("-inf")).topk(K, dim=-1)  # (B, K)
    beam, token = beam.gather(1, pos), token.gather(1, pos).reshape(-1)
    rows = (torch.arange(B, device=beam.device).unsqueeze(1) * K + beam).reshape(-1)
    beams.scores = live
    beams.tokens = torch.cat([beams.tokens.index_select(0, rows), token.unsqueeze(1)], dim=1)
    if beams.keep_attn:
        beams.attn = _append(beams.attn, rows, attn)
    return rows, token


def _update_done(beams: _Beams, max_len: int, alpha: float) -> None:
    """A sentence is done when its K-th best finished score beats the best any live beam
    can still reach: raw <= current raw < 0 and lp grows with length, so raw / lp(max_len)."""
    bound = (beams.scores[:, 0] / gnmt_penalty(max_len, alpha)).tolist()
    for b, i in enumerate(beams.index):
        hyps = beams.finished[i]
        if not beams.done[b] and len(hyps) >= beams.K:
            kth = sorted((h.score for h in hyps), reverse=True)[beams.K - 1]
            beams.done[b] = kth >= bound[b]


def _drop_done(beams: _Beams, state: object, y: Tensor) -> tuple[object, Tensor]:
    """Take the sentences that are done out of the batch: later steps cost only what is open."""
    keep = (~beams.done).nonzero().squeeze(1)
    K = beams.K
    rows = (keep.to(y.device).unsqueeze(1) * K + torch.arange(K, device=y.device)).reshape(-1)
    beams.scores = beams.scores.index_select(0, keep.to(beams.scores.device))
    beams.tokens = beams.tokens.index_select(0, rows)
    if beams.attn is not None:
        beams.attn = beams.attn.index_select(0, rows)
    beams.index = [beams.index[b] for b in keep.tolist()]
    beams.done = beams.done[keep]
    return select_state(state, rows), y.index_select(0, rows)


def _results(beams: _Beams, alpha: float) -> list[list[Hypothesis]]:
    """Open sentences at max_len also get their live beams; best K, sorted best first."""
    for b, i in enumerate(beams.index):
        for k in range(beams.K if not beams.done[b] else 0):
            raw, row = float(beams.scores[b, k]), b * beams.K + k
            if math.isfinite(raw):
                tokens = beams.tokens[row].tolist()
                att = beams.attn[row] if beams.keep_attn else None
                beams.finished[i].append(Hypothesis(tokens, raw / gnmt_penalty(len(tokens), alpha), att))
    for hyps in beams.finished:
        hyps.sort(key=lambda h: h.score, reverse=True)
        del hyps[beams.K:]
        for h in hyps:  # (T, *A) -> time at dim -2, like greedy_decode and forward
            h.attention = None if h.attention is None else h.attention.movedim(0, -2)
    return beams.finished


@torch.inference_mode()
def beam_search(
    model: Seq2SeqModel, src: Tensor, src_mask: Tensor, beam_size: int, max_len: int,
    length_penalty: float = LENGTH_PENALTY, *, with_attention: bool = True, steps: list | None = None,
    attention_view: Callable[[Tensor], Tensor] | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search (batch x beam flattened); per sentence, up to ``beam_size``
    hypotheses sorted best first, scored log P / ((5 + |Y|) / 6)^length_penalty.

    Finished (EOS) hypotheses are set aside while the beam goes on with live ones, until
    each sentence has ``beam_size`` finished ones that no live beam can beat, or max_len.
    ``steps``, when given, receives per step {input sentence: [(ids so far, log P)] per beam}
    (what the attention explorer shows). ``attention_view``, when given, maps each step's
    attention (B*K, *A) to the part kept, (B*K, *A'): the history is copied at every step,
    and ``--align`` needs one (S,) row of the Transformer's (L, nh, S).
    """
    if beam_size < 1 or length_penalty < 0:
        raise ValueError("beam_size must be >= 1 and length_penalty >= 0")
    B, K, dev = src.shape[0], beam_size, src.device
    rows = torch.arange(B, device=dev).repeat_interleave(K)  # (B*K,) sentence of each row
    state = select_state(model.init_state(model.encode(src, src_mask), src_mask), rows)
    scores = torch.full((B, K), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # only beam 0 is live at first, so the K beams start distinct
    beams = _Beams(K, src.new_zeros(B * K, 0), scores, None, with_attention,
                   torch.zeros(B, dtype=torch.bool), [[] for _ in range(B)], list(range(B)))
    y = src.new_full((B * K,), model.bos_id)
    max_len = step_budget(model, max_len)  # also the bound _update_done scores against
    for _ in range(max_len):
        logits, state, attn = model.decode_step(y, state)
        if attention_view is not None and with_attention:
            attn = attention_view(attn)
        cand = _expand(beams, _forbid_specials(logits, model))
        _finish(beams, *cand, attn, model.eos_id, length_penalty)
        rows, y = _prune(beams, *cand, attn, model.eos_id)
        if steps is not None:
            steps.append({i: [(beams.tokens[b * K + k].tolist(), float(beams.scores[b, k])) for k in range(K)]
                          for b, i in enumerate(beams.index)})
        state = select_state(state, rows)
        _update_done(beams, max_len, length_penalty)
        if bool(beams.done.all()):
            break
        if bool(beams.done.any()):
            state, y = _drop_done(beams, state, y)
    return _results(beams, length_penalty)


def strip_special(ids: list[int], model: Seq2SeqModel) -> list[int]:
    """Ids up to the first EOS, without BOS / pad."""
    if model.eos_id in ids:
        ids = ids[: ids.index(model.eos_id)]
    return [i for i in ids if i not in (model.bos_id, model.pad_id)]


@torch.inference_mode()
def translate_ids(
    model: Seq2SeqModel, src: Tensor, src_mask: Tensor, *, beam_size: int = 1,
    max_len_ratio: float = LEN_RATIO, max_len_extra: int = LEN_EXTRA, length_penalty: float = LENGTH_PENALTY,
) -> list[list[int]]:
    """Token ids per sentence without BOS / EOS / pad; ``beam_size == 1`` is greedy.
    The batch is moved to the model's device (CPU or GPU) first."""
    device = device_of(model)
    src, src_mask = src.to(device), src_mask.to(device)
    max_len = max_target_len(src_mask, max_len_ratio, max_len_extra)
    if beam_size == 1:
        ids, _ = greedy_decode(model, src, src_mask, max_len)
        return [strip_special(row, model) for row in ids.tolist()]
    hyps = beam_search(model, src, src_mask, beam_size, max_len, length_penalty,
                       with_attention=False)
    return [strip_special(h[0].tokens, model) if h else [] for h in hyps]


def greedy_in_batches(model: Seq2SeqModel, sources: list[list[int]], *, max_tokens: int = 8192,
                      max_len_ratio: float = LEN_RATIO, max_len_extra: int = LEN_EXTRA) -> list[list[int]]:
    """Greedy ids (as :func:`translate_ids`) of ``sources`` (id lists, EOS included, no PAD),
    in their order. Decoded in length-sorted batches of at most ``max_tokens`` padded source
    tokens, so a batch's length budget (``max_len_ratio`` x its longest + ``max_len_extra``)
    fits its own sentences: a model that never says EOS (untrained) costs at most that many
    decoder steps per batch, and a few large batches instead of one per validation batch."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[list[int]] = [[] for _ in sources]
    start = 0
    while start < len(order):
        end = start + 1  # sorted ascending: the last row of a batch is its longest
        while end < len(order) and len(sources[order[end]]) * (end + 1 - start) <= max_tokens:
            end += 1
        rows = [sources[i] for i in order[start:end]]
        src = torch.full((len(rows), len(rows[-1])), model.pad_id, dtype=torch.long)
        for r, ids in enumerate(rows):
            src[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        hyps = translate_ids(model, src, src != model.pad_id, max_len_ratio=max_len_ratio,
                             max_len_extra=max_len_extra)
        for i, ids in zip(order[start:end], hyps):
            out[i] = ids
        start = end
    return out
