"""The Transformer (Vaswani et al. 2017, "Attention Is All You Need"), figure 1.

Deviations from the paper, each stated where it happens:
* ``norm: pre`` (default) puts LayerNorm *before* each sub-layer, x + Sublayer(LN(x)),
  with a final LayerNorm on each stack (Wang et al. 2019; Xiong et al. 2020): it trains
  without the warm-up being critical, which matters when sweeps vary the LR schedule.
  ``norm: post`` is the paper's LN(x + Sublayer(x)) (section 3.1).
* Ablation switches, for measuring what each idea buys (the paper's choice first):
  ``positional: sinusoidal`` (section 3.5) | ``learned`` (Gehring et al. 2017; the paper
  found them equal, table 3 row E) | ``none`` (the model then sees a bag of tokens: the
  encoder is permutation-equivariant); ``num_heads`` (8 in the paper; table 3 rows A
  measure 1 to 32); ``residual: true`` (section 3.1, after He et al. 2016) | ``false``
  (each sub-layer's output replaces its input: Sublayer(LN(x)) or LN(Sublayer(x))).
* Initialisation (unspecified in the paper): embeddings N(0, d^-1/2), so that after
  the sqrt(d) scaling (section 3.4) inputs and tied output logits have unit scale
  (as in fairseq); other matrices Xavier-uniform (as in the Annotated Transformer).
* Label smoothing and the LR schedule (section 5.3-5.4) live in the training module.

Decoding caches, per decoder layer, the self-attention K/V of the prefix and the
cross-attention K/V of the memory (computed once). ``model.incremental = False`` makes
``decode_step`` re-run the whole prefix without caches instead (for benchmarks).

Shapes: ``B`` batch, ``S`` source, ``T`` target, ``d`` d_model, ``nh`` heads,
``hs`` head size d/nh, ``L`` decoder layers, ``V`` vocabulary.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.components.models.arch_configs import TransformerConfig  # torch-free: the config loader reads it
from nmt.components.models.base import Seq2SeqModel, State, Vocabulary


def sinusoidal_table(length: int, d: int) -> Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...)  (section 3.5)."""
    pos = torch.arange(length, dtype=torch.float).unsqueeze(1)  # (length, 1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return table


class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1..head_nh) W^O (section 3.2.2) via fused SDPA.

    The weights softmax(QK^T / sqrt(hs)) are computed a second time, explicitly, only
    when ``need_weights`` (fused kernels never materialise them); pads get exactly 0.
    """

    def __init__(self, d: int, nh: int, dropout: float) -> None:
        super().__init__()
        self.nh, self.dropout = nh, dropout
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def heads(self, x: Tensor) -> Tensor:
        B, T, d = x.shape
        return x.view(B, T, self.nh, d // self.nh).transpose(1, 2)  # (B, nh, T, hs)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.heads(self.k(x)), self.heads(self.v(x))  # (B, nh, S, hs) each

    def forward(
        self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None,
        causal: bool = False, need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, d) queries; k, v (B, nh, S, hs); mask (B, 1, 1, S) True = attend."""
        q = self.heads(self.q(x))  # (B, nh, T, hs)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        weights = None
        if need_weights:  # softmax(Q K^T / sqrt(hs)), eq. 1 (no causal mask: cross-attn only)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, nh, T, S)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(dim=-1)
        B, _, T, _ = y.shape
        return self.o(y.transpose(1, 2).reshape(B, T, -1)), weights  # (B, T, d)


class Layer(nn.Module):
    """An encoder layer (fig. 1 left) or, with ``cross=True``, a decoder layer (right)."""

    def __init__(self, cfg: TransformerConfig, cross: bool) -> None:
        super().__init__()
        d = cfg.d_model
        self.pre, self.residual = cfg.norm == "pre", cfg.residual
        self.self_attn = MultiHeadAttention(d, cfg.num_heads, cfg.dropout)
        self.cross_attn = MultiHeadAttention(d, cfg.num_heads, cfg.dropout) if cross else None
        self.ff = nn.Sequential(  # FFN(x) = max(0, x W1 + b1) W2 + b2, eq. 2; the inner
            # dropout is tensor2tensor's relu_dropout, not in the paper
            nn.Linear(d, cfg.ff_dim), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.ff_dim, d)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3 if cross else 2))
        self.drop = nn.Dropout(cfg.dropout)

    def _in(self, x: Tensor, i: int) -> Tensor:
        return self.norms[i](x) if self.pre else x  # pre-norm: Sublayer(LN(x))

    def _add(self, x: Tensor, y: Tensor, i: int) -> Tensor:
        # residual with dropout, section 5.4; ablated (residual: false), the sub-layer's
        # output alone goes on
        x = x + self.drop(y) if self.residual else self.drop(y)
        return x if self.pre else self.norms[i](x)  # post-norm: LN(x + Sublayer(x))

    def forward(
        self, x: Tensor, mask: Tensor, memory_kv: tuple[Tensor, Tensor] | None = None,
        cache: tuple[Tensor, Tensor] | None = None, need_weights: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor | None]:
        """x (B, T, d) -> x, self-attn (k, v) incl. ``cache``, cross-attn weights | None.

        ``mask`` (B, 1, 1, S) masks source keys (encoder self-attn / decoder cross-attn);
        decoder self-attn is causal, or with ``cache`` one new position over the prefix.
        """
        decoder, last = self.cross_attn is not None, len(self.norms) - 1
        h = self._in(x, 0)
        k, v = self.self_attn.project_kv(h)  # (B, nh, T, hs)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        a, _ = self.self_attn(h, k, v, mask=None if decoder else mask,
                              causal=decoder and cache is None)
        x = self._add(x, a, 0)
        weights = None
        if decoder:
            a, weights = self.cross_attn(self._in(x, 1), *memory_kv, mask=mask,
                                         need_weights=need_weights)
            x = self._add(x, a, 1)
        x = self._add(x, self.ff(self._in(x, last)), last)
        return x, (k, v), weights


class Transformer(Seq2SeqModel):
    """Encoder-decoder Transformer, Vaswani et al. 2017 (base recipe, smaller sizes)."""

    def __init__(self, cfg: TransformerConfig, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.cfg, self.incremental = cfg, True
        self.max_positions = cfg.max_positions
        d, pad_id, src_vocab_size, tgt_vocab_size = cfg.d_model, vocab.pad_id, vocab.src_size, vocab.tgt_size
        if vocab.shared and src_vocab_size != tgt_vocab_size:
            raise ValueError(f"a shared vocabulary but sizes differ: {src_vocab_size} != {tgt_vocab_size}")
        self.tgt_emb = nn.Embedding(tgt_vocab_size, d, padding_idx=pad_id)
        share_src = cfg.share_embeddings and vocab.shared  # 3-way tying needs a joint vocab
        self.src_emb = (self.tgt_emb if share_src
                        else nn.Embedding(src_vocab_size, d, padding_idx=pad_id))
        if cfg.positional == "learned":  # Gehring et al. 2017; section 3.5 compares both
            self.pos = nn.Parameter(torch.randn(cfg.max_positions, d) * d**-0.5)
        else:  # "none": zeros, so the model sees no order at all (an ablation)
            table = (sinusoidal_table(cfg.max_positions, d) if cfg.positional == "sinusoidal"
                     else torch.zeros(cfg.max_positions, d))
            self.register_buffer("pos", table, persistent=False)
        self.encoder = nn.ModuleList(Layer(cfg, cross=False) for _ in range(cfg.num_encoder_layers))
        self.decoder = nn.ModuleList(Layer(cfg, cross=True) for _ in range(cfg.num_decoder_layers))
        final = (lambda: nn.LayerNorm(d)) if cfg.norm == "pre" else nn.Identity
        self.enc_norm, self.dec_norm = final(), final()
        self.generator = nn.Linear(d, tgt_vocab_size, bias=False)  # pre-softmax projection
        self.drop = nn.Dropout(cfg.dropout)
        self._init_weights()
        if cfg.share_embeddings:  # target embedding = pre-softmax weights (section 3.4)
            self.generator.weight = self.tgt_emb.weight

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() > 1 and name.endswith("emb.weight"):
                nn.init.normal_(p, 0.0, self.cfg.d_model**-0.5)
            elif p.dim() > 1 and name != "pos":
                nn.init.xavier_uniform_(p)
        with torch.no_grad():
            for emb in (self.src_emb, self.tgt_emb):
                emb.weight[self.pad_id].zero_()

    def _embed(self, emb: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        """ids (B, T) -> E x * sqrt(d) + PE (section 3.4-3.5), with dropout: (B, T, d)."""
        T = ids.shape[1]
        if offset + T > self.cfg.max_positions:
            raise ValueError(f"position {offset + T} beyond max_positions={self.cfg.max_positions}")
        x = emb(ids) * math.sqrt(self.cfg.d_model) + self.pos[offset : offset + T]
        return self.drop(x)

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        """-> memory (B, S, d)."""
        x, mask = self._embed(self.src_emb, src), src_mask[:, None, None, :]  # (B, 1, 1, S)
        for layer in self.encoder:
            x = layer(x, mask)[0]
        return self.enc_norm(x)

    def _decode(
        self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor]:
        """Whole prefix at once (causal): logits (B, T, V), cross-attn (B, L, nh, T, S)."""
        x, mask = self._embed(self.tgt_emb, tgt_in), src_mask[:, None, None, :]
        weights = []
        for layer in self.decoder:
            kv = layer.cross_attn.project_kv(memory)
            x, _, w = layer(x, mask, memory_kv=kv, need_weights=need_weights)
            weights.append(w)
        attn = torch.stack(weights, dim=1) if need_weights else memory.new_empty(0)
        return self.generator(self.dec_norm(x)), attn

    def forward(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, *, need_weights: bool = True
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced logits (B, T, V); cross-attention (B, L, nh, T, S) if asked."""
        return self._decode(tgt_in, self.encode(src, src_mask), src_mask, need_weights)

    def init_state(self, memory: State, src_mask: Tensor) -> State:
        if not self.incremental:  # benchmark baseline: keep memory, re-run the prefix
            prefix = src_mask.new_zeros(src_mask.shape[0], 0, dtype=torch.long)  # (B, 0)
            return {"memory": memory, "mask": src_mask, "prefix": prefix}
        layers = []
        for layer in self.decoder:
            mk, mv = layer.cross_attn.project_kv(memory)  # (B, nh, S, hs), once per source
            empty = mk.new_zeros(mk.shape[0], mk.shape[1], 0, mk.shape[3])  # (B, nh, 0, hs)
            layers.append({"k": empty, "v": empty, "mk": mk, "mv": mv})
        return {"mask": src_mask, "layers": layers}

    def decode_step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """tokens (B,) -> logits (B, V), new state, cross-attention (B, L, nh, S)."""
        if not self.incremental:
            prefix = torch.cat([state["prefix"], tokens.unsqueeze(1)], dim=1)  # (B, t+1)
            logits, attn = self._decode(prefix, state["memory"], state["mask"], True)
            return logits[:, -1], {**state, "prefix": prefix}, attn[:, :, :, -1]
        t = state["layers"][0]["k"].shape[2]  # positions already decoded
        x = self._embed(self.tgt_emb, tokens.unsqueeze(1), offset=t)  # (B, 1, d)
        mask = state["mask"][:, None, None, :]  # (B, 1, 1, S)
        layers, weights = [], []
        for layer, cache in zip(self.decoder, state["layers"]):
            x, (k, v), w = layer(x, mask, memory_kv=(cache["mk"], cache["mv"]),
                                 cache=(cache["k"], cache["v"]), need_weights=True)
            layers.append({**cache, "k": k, "v": v})
            weights.append(w[:, :, 0])  # (B, nh, S)
        logits = self.generator(self.dec_norm(x))[:, 0]  # (B, V)
        return logits, {"mask": state["mask"], "layers": layers}, torch.stack(weights, dim=1)
