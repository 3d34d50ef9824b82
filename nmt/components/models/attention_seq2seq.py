"""RNN encoder-decoder with attention (Bahdanau, Cho & Bengio 2015, "RNNsearch").

* Encoder (section 3.2): a bidirectional GRU; annotation h_j = [fwd h_j; bwd h_j].
* Decoder (section 3.1, eq. 4): s_i = f(s_{i-1}, y_{i-1}, c_i), here a GRU cell whose
  input is [E y_{i-1}; c_i]; c_i comes from attention on s_{i-1} (eq. 5-6), scored by
  :mod:`nmt.components.models.attention` (``bahdanau`` as in the paper, or Luong et al.
  2015's ``dot`` / ``general`` plugged into the same decoder, still queried with s_{i-1}).
* Initial state (appendix A.2.2): s_0 = tanh(W_s bwd h_1).

Deviations: no maxout deep output (A.2.2) - one linear layer on [s_i; c_i; E y_{i-1}]
(the same information, as in bentrevett's tutorial 3); single-layer encoder and decoder;
optional teacher forcing < 1 samples per token (Bengio et al. 2015).

Shapes: ``B`` batch, ``S`` source, ``T`` target, ``E`` embedding, ``He`` encoder
hidden per direction, ``Hd`` decoder hidden, ``V`` target vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.components.models.arch_configs import AttentionConfig  # torch-free: the config loader reads it
from nmt.components.models.attention import make_attention
from nmt.components.models.base import Seq2SeqModel, State, Vocabulary, run_packed, unroll


class AttentionSeq2Seq(Seq2SeqModel):
    """Bahdanau et al. 2015: the decoder looks back at every source annotation."""

    def __init__(self, cfg: AttentionConfig, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.cfg = cfg
        pad_id, src_vocab_size, tgt_vocab_size = vocab.pad_id, vocab.src_size, vocab.tgt_size
        E, He, Hd = cfg.emb_dim, cfg.enc_hidden_dim, cfg.dec_hidden_dim
        self.src_emb = nn.Embedding(src_vocab_size, E, padding_idx=pad_id)
        self.tgt_emb = nn.Embedding(tgt_vocab_size, E, padding_idx=pad_id)
        self.encoder = nn.GRU(E, He, batch_first=True, bidirectional=True)
        self.init_proj = nn.Linear(He, Hd)  # W_s
        self.attention = make_attention(cfg.score, Hd, 2 * He, cfg.attn_dim)
        self.decoder = nn.GRUCell(E + 2 * He, Hd)  # input [E y_{i-1}; c_i]
        self.out = nn.Linear(Hd + 2 * He + E, tgt_vocab_size)  # p(y_i | s_i, c_i, y_{i-1})
        self.drop = nn.Dropout(cfg.dropout)

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """-> {"keys": annotations h (B, S, 2He), "hidden": s_0 (B, Hd)}."""
        x = self.drop(self.src_emb(src))  # (B, S, E)
        annotations, h_n = run_packed(self.encoder, x, src_mask)  # (B, S, 2He), (2, B, He)
        s0 = torch.tanh(self.init_proj(h_n[1]))  # s_0 = tanh(W_s bwd h_1), A.2.2
        return {"keys": annotations, "hidden": s0}

    def init_state(self, memory: State, src_mask: Tensor) -> State:
        """Adds the per-source part of the score (U_a h_j) and the mask."""
        keys = memory["keys"]
        return {"hidden": memory["hidden"], "keys": keys,
                "proj_keys": self.attention.precompute(keys), "mask": src_mask}

    def decode_step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """tokens (B,) y_{i-1} -> logits (B, V), state with s_i, alpha_i (B, S)."""
        emb = self.drop(self.tgt_emb(tokens))  # (B, E)
        context, alpha = self.attention(  # c_i (B, 2He), alpha_i (B, S): eq. 5-6 on s_{i-1}
            state["hidden"], state["keys"], state["proj_keys"], state["mask"]
        )
        s = self.decoder(torch.cat([emb, context], dim=-1), state["hidden"])  # eq. 4
        logits = self.out(torch.cat([s, context, emb], dim=-1))  # (B, V)
        return logits, {**state, "hidden": s}, alpha

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, *, need_weights: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V) and attention (B, T, S), one step at a time."""
        state = self.init_state(self.encode(src, src_mask), src_mask)
        return unroll(self, state, tgt_in, self.cfg.teacher_forcing if self.training else 1.0)
