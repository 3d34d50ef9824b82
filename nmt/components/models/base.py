"""The small interface every architecture implements, so decoding is written once.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``H`` hidden, ``V`` vocab.
Masks are boolean with ``True`` at real (non-pad) positions.

A decoder *state* is a nested structure (dict / list / tuple) of tensors whose dim 0 is
the batch (or batch*beam) dimension, plus non-tensor leaves that are copied as-is.
That one convention lets :func:`select_state` reorder any model's state for beam search.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

# the torch-free half of the interface, imported from here too

State = Any  # nested dict/list/tuple of tensors with batch first


@dataclass(frozen=True)
class Vocabulary:
    """What a network needs to know about the tokenizers: sizes and special-token ids."""

    src_size: int
    tgt_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    shared: bool = False              # one joint tokenizer: the Transformer may tie src embeddings too


def select_state(state: State, index: Tensor) -> State:
    """Pick rows ``index`` (dim 0) of every tensor in ``state``; used by beam search."""
    if isinstance(state, Tensor):
        return state.index_select(0, index)
    if isinstance(state, dict):
        return {k: select_state(v, index) for k, v in state.items()}
    if isinstance(state, list):
        return [select_state(v, index) for v in state]
    if isinstance(state, tuple):
        return tuple(select_state(v, index) for v in state)
    return state


class Seq2SeqModel(nn.Module, abc.ABC):
    """Encoder-decoder interface shared by Seq2Seq, attention Seq2Seq and Transformer."""

    pad_id: int
    bos_id: int
    eos_id: int
    # longest sequence (source incl. EOS, or target steps) the model can take; None: no bound
    # (RNNs). Decoding never asks for more (decoding.py caps its budget by it).
    max_positions: int | None = None

    def __init__(self, vocab: Vocabulary) -> None:
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = vocab.pad_id, vocab.bos_id, vocab.eos_id

    @abc.abstractmethod
    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """src (B, S) ids, src_mask (B, S) bool -> memory (batch-first nested tensors)."""

    @abc.abstractmethod
    def init_state(self, memory: State, src_mask: Tensor) -> State:
        """Decoder state before the first target token (holds what decode_step needs)."""

    @abc.abstractmethod
    def decode_step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """One incremental step.

        tokens (B,) ids of the previous target token -> logits (B, V), new state, attention.
        Attention is (B, S) for RNN models and (B, L, nh, S) for the Transformer.
        """

    @abc.abstractmethod
    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, *, need_weights: bool = True
                ) -> tuple[Tensor, Tensor]:
        """Teacher-forced pass: tgt_in (B, T) starts with BOS -> logits (B, T, V), attention.

        Attention is (B, T, S) for RNN models, (B, L, nh, T, S) for the Transformer,
        and an empty tensor for the plain Seq2Seq (it has none). Training passes
        ``need_weights=False``: a model may then skip the attention (return an empty tensor)
        and take a faster path; a model that has no such path ignores it.
        """

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def unroll(model: Seq2SeqModel, state: State, tgt_in: Tensor, p_gold: float) -> tuple[Tensor, Tensor]:
    """Teacher forcing one ``decode_step`` at a time: the next input is the gold token with
    probability ``p_gold``, else the model's own argmax (scheduled sampling, Bengio et al.
    2015, per token). -> logits (B, T, V), attention stacked over T (B, T, ...)."""
    B, T = tgt_in.shape
    steps, attention, y = [], [], tgt_in[:, 0]
    for t in range(T):
        logits, state, attn = model.decode_step(y, state)
        steps.append(logits)
        attention.append(attn)
        if t + 1 < T:
            y = tgt_in[:, t + 1]
            if p_gold < 1.0:
                gold = torch.rand(B, device=tgt_in.device) < p_gold
                y = torch.where(gold, y, logits.argmax(-1))
    return torch.stack(steps, dim=1), torch.stack(attention, dim=1)


def lengths_from_mask(mask: Tensor) -> Tensor:
    """(B, S) bool -> (B,) int64 lengths."""
    return mask.sum(dim=1).to(torch.long)


def run_packed(rnn: nn.RNNBase, x: Tensor, mask: Tensor) -> tuple[Tensor, Any]:
    """Run a batch-first ``rnn`` over x (B, S, E) ignoring right padding.

    -> outputs (B, S, dirs*H) with zeros at pads, and the final state after each row's
    last real token (``h_n`` or ``(h_n, c_n)``, each (layers*dirs, B, H)).
    """
    lengths = lengths_from_mask(mask).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = rnn(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, final
