"""Attention scorers for the RNN decoder: additive (Bahdanau) and multiplicative (Luong).

All three share the last two steps of Bahdanau et al. 2015, section 3.1:

    alpha_ij = exp(e_ij) / sum_k exp(e_ik)        (eq. 6)
    c_i      = sum_j alpha_ij h_j                  (eq. 5)

and differ only in the score e_ij = a(s_{i-1}, h_j). Padded source positions get
``-inf`` before the softmax, so their weight is exactly zero (not merely small).

Shapes: ``B`` batch, ``S`` source length, ``Hq`` query (decoder state) size,
``Hk`` key (encoder annotation) size, ``A`` attention hidden size.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor, nn

from nmt.components.models.arch_configs import Score


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with ``mask == False`` positions forced to exactly 0.

    Every row must have at least one real position (a source is never empty).
    """
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


class Attention(nn.Module, abc.ABC):
    """Base: ``precompute`` runs once per source, ``score`` once per decoder step."""

    def precompute(self, keys: Tensor) -> Tensor:
        """keys (B, S, Hk) -> whatever ``score`` needs per source; identity by default."""
        return keys

    @abc.abstractmethod
    def score(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        """query (B, Hq), proj_keys from :meth:`precompute` -> energies e (B, S)."""

    def forward(
        self, query: Tensor, keys: Tensor, proj_keys: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """-> context c (B, Hk) and weights alpha (B, S) (rows sum to 1, pads exactly 0)."""
        alpha = masked_softmax(self.score(query, proj_keys), mask)  # (B, S)   eq. 6
        context = torch.bmm(alpha.unsqueeze(1), keys).squeeze(1)  # (B, Hk)  eq. 5
        return context, alpha


class BahdanauAttention(Attention):
    """Additive attention, Bahdanau et al. 2015, appendix A.1.2.

    e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j); ``U_a h_j`` does not depend on i, so it is
    computed once per source in :meth:`precompute`. No biases, as in the paper.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(query_dim, attn_dim, bias=False)  # W_a
        self.U = nn.Linear(key_dim, attn_dim, bias=False)  # U_a
        self.v = nn.Linear(attn_dim, 1, bias=False)  # v_a

    def precompute(self, keys: Tensor) -> Tensor:
        return self.U(keys)  # (B, S, A)

    def score(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        energy = torch.tanh(self.W(query).unsqueeze(1) + proj_keys)  # (B, S, A)
        return self.v(energy).squeeze(-1)  # (B, S)


class DotAttention(Attention):
    """Luong et al. 2015, eq. 8 ``dot``: e_ij = s^T h_j (needs Hq == Hk; unscaled)."""

    def score(self, query: Tensor, proj_keys: Tensor) -> Tensor:
        return torch.bmm(proj_keys, query.unsqueeze(-1)).squeeze(-1)  # (B, S)


class GeneralAttention(DotAttention):
    """Luong et al. 2015, eq. 8 ``general``: e_ij = s^T W_a h_j; W_a h_j precomputed."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(key_dim, query_dim, bias=False)  # W_a

    def precompute(self, keys: Tensor) -> Tensor:
        return self.W(keys)  # (B, S, Hq)


def make_attention(score: Score, query_dim: int, key_dim: int, attn_dim: int) -> Attention:
    """The scorer named ``score``; ``attn_dim`` is used by ``bahdanau`` only."""
    if score == "bahdanau":
        return BahdanauAttention(query_dim, key_dim, attn_dim)
    if score == "general":
        return GeneralAttention(query_dim, key_dim)
    if score == "dot":
        if query_dim != key_dim:
            raise ValueError(f"dot attention needs query_dim == key_dim: {query_dim} != {key_dim}")
        return DotAttention()
    raise ValueError(f"unknown attention score {score!r}; valid choices: bahdanau, dot, general")
