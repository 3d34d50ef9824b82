"""Seq2Seq with a fixed-size context vector (Sutskever et al. 2014; Cho et al. 2014).

The encoder RNN reads the source; its final state is the only thing the decoder learns
about the source:

* Sutskever et al. 2014, section 2: the decoder's initial state (every layer, and the
  LSTM cell) is the encoder's final state.
* Cho et al. 2014, section 2.2 (eq. for h<t> and p(y_t)): the context c (here the
  top layer's final hidden state) is also fed to every decoder step and to the output,
  so it cannot be washed out of the recurrent state.

Deviations: no source reversal (Sutskever's trick is a data choice, left to the data
stage); no maxout output layer (Cho) - one linear layer on [s_t; c; E y_{t-1}];
teacher forcing < 1 samples per token (Bengio et al. 2015 scheduled sampling) rather
than per batch.

Shapes: ``B`` batch, ``S`` source, ``T`` target, ``E`` embedding, ``H`` hidden,
``L`` layers, ``V`` target vocabulary. States are kept batch first (B, L, H) so that
:func:`select_state` can reorder them; they are transposed to (L, B, H) for the RNN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.components.models.arch_configs import Seq2SeqConfig  # torch-free: the config loader reads it
from nmt.components.models.base import Seq2SeqModel, State, Vocabulary, run_packed, unroll


class Seq2Seq(Seq2SeqModel):
    """Encoder-decoder RNN whose decoder sees the source only through a fixed vector."""

    def __init__(self, cfg: Seq2SeqConfig, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.cfg = cfg
        pad_id, src_vocab_size, tgt_vocab_size = vocab.pad_id, vocab.src_size, vocab.tgt_size
        E, H, L = cfg.emb_dim, cfg.hidden_dim, cfg.num_layers
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        between = cfg.dropout if L > 1 else 0.0
        self.src_emb = nn.Embedding(src_vocab_size, E, padding_idx=pad_id)
        self.tgt_emb = nn.Embedding(tgt_vocab_size, E, padding_idx=pad_id)
        self.encoder = rnn(E, H, L, batch_first=True, dropout=between)
        self.decoder = rnn(E + H, H, L, batch_first=True, dropout=between)  # input [E y; c]
        self.out = nn.Linear(H + H + E, tgt_vocab_size)  # p(y_t | s_t, c, y_{t-1})
        self.drop = nn.Dropout(cfg.dropout)

    # -- encoder ----------------------------------------------------------------------
    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """-> the encoder's final state {"hidden": (B, L, H)[, "cell": (B, L, H)]}."""
        x = self.drop(self.src_emb(src))  # (B, S, E)
        _, final = run_packed(self.encoder, x, src_mask)
        if self.cfg.cell == "lstm":
            h, c = final  # (L, B, H) each
            return {"hidden": h.transpose(0, 1), "cell": c.transpose(0, 1)}
        return {"hidden": final.transpose(0, 1)}

    def init_state(self, memory: State, src_mask: Tensor) -> State:
        """Decoder starts from the encoder's final state (Sutskever); c = top layer (Cho)."""
        return {**memory, "context": memory["hidden"][:, -1]}  # context (B, H)

    # -- decoder ----------------------------------------------------------------------
    def _decode(self, y_prev: Tensor, state: State) -> tuple[Tensor, State]:
        """y_prev (B, T) previous tokens -> logits (B, T, V), state after the T steps."""
        T = y_prev.shape[1]
        emb = self.drop(self.tgt_emb(y_prev))  # (B, T, E)
        ctx = state["context"].unsqueeze(1).expand(-1, T, -1)  # (B, T, H)
        hx = state["hidden"].transpose(0, 1).contiguous()  # (L, B, H)
        if self.cfg.cell == "lstm":
            hx = (hx, state["cell"].transpose(0, 1).contiguous())
        out, final = self.decoder(torch.cat([emb, ctx], dim=-1), hx)  # s_t = f(s_{t-1}, y, c)
        logits = self.out(torch.cat([out, ctx, emb], dim=-1))  # (B, T, V)
        new = {**state}
        if self.cfg.cell == "lstm":
            new["hidden"], new["cell"] = final[0].transpose(0, 1), final[1].transpose(0, 1)
        else:
            new["hidden"] = final.transpose(0, 1)
        return logits, new

    def decode_step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        logits, state = self._decode(tokens.unsqueeze(1), state)
        return logits.squeeze(1), state, logits.new_empty(tokens.shape[0], 0)  # no attention

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, *, need_weights: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V) and an empty (B, T, 0) attention tensor."""
        state = self.init_state(self.encode(src, src_mask), src_mask)
        B, T = tgt_in.shape
        if not self.training or self.cfg.teacher_forcing >= 1.0:  # one cuDNN call over all T steps
            return self._decode(tgt_in, state)[0], src.new_empty(B, T, 0, dtype=torch.float)
        return unroll(self, state, tgt_in, self.cfg.teacher_forcing)
