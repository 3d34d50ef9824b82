"""Model invariants: shapes, attention masking, causality, incremental == full decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from components.config import ConfigError
from components.models.attention import make_attention
from components.models.base import select_state
from components.models.factory import MODEL_ARCHS, build_model, model_config_class
from components.models.transformer import Transformer

B, S, T, SRC_V, TGT_V = 3, 7, 5, 23, 29
PAD, BOS, EOS = 0, 1, 2
CONF = Path(__file__).resolve().parents[1] / "conf" / "model"

TINY = {  # distinct small sizes so a transposed dim cannot pass silently
    "gru": {"arch": "seq2seq", "cell": "gru", "emb_dim": 10, "hidden_dim": 12, "num_layers": 2},
    "lstm": {"arch": "seq2seq", "cell": "lstm", "emb_dim": 10, "hidden_dim": 12, "num_layers": 2},
    "bahdanau": {"arch": "attention", "score": "bahdanau", "emb_dim": 10, "enc_hidden_dim": 6,
                 "dec_hidden_dim": 12, "attn_dim": 14},
    "dot": {"arch": "attention", "score": "dot", "emb_dim": 10, "enc_hidden_dim": 6,
            "dec_hidden_dim": 12},
    "general": {"arch": "attention", "score": "general", "emb_dim": 10, "enc_hidden_dim": 6,
                "dec_hidden_dim": 16},
    "transformer": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 2,
                    "num_decoder_layers": 2, "num_heads": 3, "ff_dim": 20, "dropout": 0.1,
                    "share_embeddings": False},
    "transformer_post": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 1,
                         "num_decoder_layers": 2, "num_heads": 2, "ff_dim": 20,
                         "norm": "post", "positional": "learned", "share_embeddings": True},
}
ATTENTION_KINDS = ["bahdanau", "dot", "general"]


def make(name: str, shared_vocab: bool = False, **override):
    torch.manual_seed(0)
    vocab = (SRC_V, SRC_V) if shared_vocab else (SRC_V, TGT_V)
    model = build_model({**TINY[name], **override}, src_vocab_size=vocab[0],
                        tgt_vocab_size=vocab[1], pad_id=PAD, bos_id=BOS, eos_id=EOS,
                        shared_vocab=shared_vocab)
    return model.eval()


def batch(vocab: int = TGT_V):
    """Source with lengths 7, 4, 2 (right-padded) and a target starting with BOS."""
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, SRC_V, (B, S), generator=g)
    mask = torch.arange(S)[None, :] < torch.tensor([S, 4, 2])[:, None]  # (B, S)
    src = src.masked_fill(~mask, PAD)
    tgt_in = torch.randint(3, vocab, (B, T), generator=g)
    tgt_in[:, 0] = BOS
    return src, mask, tgt_in


def step_through(model, src, mask, tgt_in):
    """Teacher tokens fed one by one through decode_step -> logits (B, T, V), attentions."""
    state = model.init_state(model.encode(src, mask), mask)
    logits, attn = [], []
    for t in range(tgt_in.shape[1]):
        lg, state, a = model.decode_step(tgt_in[:, t], state)
        logits.append(lg)
        attn.append(a)
    return torch.stack(logits, 1), torch.stack(attn, -2)


@pytest.mark.parametrize("name", list(TINY))
def test_forward_shapes(name):
    model = make(name)
    src, mask, tgt_in = batch()
    logits, attn = model(src, mask, tgt_in)
    assert logits.shape == (B, T, TGT_V)
    arch = TINY[name]["arch"]
    if arch == "transformer":
        expected = (B, model.cfg.num_decoder_layers, model.cfg.num_heads, T, S)
    else:
        expected = (B, T, 0) if arch == "seq2seq" else (B, T, S)
    assert attn.shape == expected
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list(TINY))
def test_incremental_matches_forward(name):
    model = make(name)
    src, mask, tgt_in = batch()
    full_logits, full_attn = model(src, mask, tgt_in)
    step_logits, step_attn = step_through(model, src, mask, tgt_in)
    torch.testing.assert_close(step_logits, full_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(step_attn, full_attn, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["bahdanau", "dot", "general", "transformer", "transformer_post"])
def test_attention_masks_padding_exactly(name):
    model = make(name)
    src, mask, tgt_in = batch()
    _, attn = model(src, mask, tgt_in)  # (B, T, S) or (B, L, nh, T, S)
    _, step_attn = step_through(model, src, mask, tgt_in)
    for a in (attn, step_attn):
        pad = ~mask.view(B, *([1] * (a.dim() - 2)), S).expand_as(a)
        assert (a[pad] == 0).all()  # exactly zero, not merely small
        torch.testing.assert_close(a.sum(-1), torch.ones(a.shape[:-1]))
        assert (a[~pad] > 0).all()


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_attention_scorer_alone(kind):
    torch.manual_seed(0)
    att = make_attention(kind, query_dim=12, key_dim=12, attn_dim=9)
    keys, query = torch.randn(B, S, 12), torch.randn(B, 12)
    mask = torch.arange(S)[None, :] < torch.tensor([S, 3, 1])[:, None]
    context, alpha = att(query, keys, att.precompute(keys), mask)
    assert context.shape == (B, 12) and alpha.shape == (B, S)
    assert (alpha[~mask] == 0).all()
    torch.testing.assert_close(alpha.sum(-1), torch.ones(B))
    torch.testing.assert_close(context[2], keys[2, 0])  # one real position: c = h_1
    # changing padded keys cannot change the context
    keys2 = keys.clone()
    keys2[~mask] = 100.0
    torch.testing.assert_close(att(query, keys2, att.precompute(keys2), mask)[0], context)


def test_dot_attention_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="query_dim == key_dim"):
        make_attention("dot", query_dim=12, key_dim=10, attn_dim=4)
    with pytest.raises(ConfigError, match="model.score"):
        make("dot", dec_hidden_dim=13)


@pytest.mark.parametrize("name", ["transformer", "transformer_post"])
def test_transformer_causality(name):
    model = make(name)
    src, mask, tgt_in = batch()
    logits, _ = model(src, mask, tgt_in)
    for t in range(1, T):
        changed = tgt_in.clone()
        changed[:, t] = (changed[:, t] + 1 - 3) % (TGT_V - 3) + 3
        logits2, _ = model(src, mask, changed)
        torch.testing.assert_close(logits2[:, :t], logits[:, :t], atol=1e-6, rtol=0)
        assert not torch.allclose(logits2[:, t:], logits[:, t:])


@pytest.mark.parametrize("name", ["transformer", "transformer_post"])
def test_transformer_incremental_equals_nonincremental(name):
    model = make(name)
    src, mask, tgt_in = batch()
    cached = step_through(model, src, mask, tgt_in)
    model.incremental = False
    naive = step_through(model, src, mask, tgt_in)
    torch.testing.assert_close(cached[0], naive[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(cached[1], naive[1], atol=1e-5, rtol=0)


def test_transformer_padding_does_not_leak():
    """Extra source padding changes nothing (pads are masked in every attention)."""
    model = make("transformer")
    src, mask, tgt_in = batch()
    wide_src = torch.cat([src, torch.full((B, 4), PAD)], 1)
    wide_mask = torch.cat([mask, torch.zeros(B, 4, dtype=torch.bool)], 1)
    logits, _ = model(src, mask, tgt_in)
    torch.testing.assert_close(model(wide_src, wide_mask, tgt_in)[0], logits, atol=1e-5, rtol=0)


def test_transformer_shared_embeddings():
    tied = make("transformer_post", shared_vocab=True)
    assert tied.src_emb.weight is tied.tgt_emb.weight is tied.generator.weight
    untied_src = make("transformer_post", shared_vocab=False)
    assert untied_src.src_emb is not untied_src.tgt_emb
    assert untied_src.generator.weight is untied_src.tgt_emb.weight
    assert tied.num_parameters() < untied_src.num_parameters()
    with pytest.raises(ValueError, match="shared_vocab"):
        build_model(TINY["transformer"], src_vocab_size=SRC_V, tgt_vocab_size=TGT_V,
                    pad_id=PAD, bos_id=BOS, eos_id=EOS, shared_vocab=True)


@pytest.mark.parametrize("name", list(TINY))
def test_select_state_reorders(name):
    model = make(name)
    src, mask, tgt_in = batch()
    state = model.init_state(model.encode(src, mask), mask)
    for t in range(2):
        _, state, _ = model.decode_step(tgt_in[:, t], state)
    perm = torch.tensor([2, 0, 1, 1])  # reorder and duplicate, as beam search does
    logits, _, attn = model.decode_step(tgt_in[:, 2], state)
    logits_p, _, attn_p = model.decode_step(tgt_in[perm, 2], select_state(state, perm))
    torch.testing.assert_close(logits_p, logits[perm], atol=1e-6, rtol=0)
    torch.testing.assert_close(attn_p, attn[perm], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["gru", "lstm", "bahdanau"])
def test_teacher_forcing_zero_feeds_own_predictions(name):
    """With teacher_forcing 0 (and no dropout) training forward == greedy step loop."""
    model = make(name, teacher_forcing=0.0, dropout=0.0).train()
    src, mask, tgt_in = batch()
    logits, _ = model(src, mask, tgt_in)
    state = model.init_state(model.encode(src, mask), mask)
    y = tgt_in[:, 0]
    for t in range(T):
        lg, state, _ = model.decode_step(y, state)
        torch.testing.assert_close(logits[:, t], lg, atol=1e-5, rtol=0)
        y = lg.argmax(-1)
    full_tf = make(name, teacher_forcing=1.0, dropout=0.0).train()(src, mask, tgt_in)[0]
    assert not torch.allclose(full_tf[:, 1:], logits[:, 1:])


def test_gradients_reach_every_parameter():
    for name in TINY:
        model = make(name).train()
        src, mask, tgt_in = batch()
        model(src, mask, tgt_in)[0].logsumexp(-1).mean().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, (name, missing)


# -- factory ----------------------------------------------------------------------------
def test_factory_unknown_arch_lists_choices():
    with pytest.raises(ConfigError, match="seq2seq, attention, transformer"):
        build_model({"arch": "rnn"}, src_vocab_size=5, tgt_vocab_size=5, pad_id=0, bos_id=1,
                    eos_id=2, shared_vocab=True)
    with pytest.raises(ConfigError, match="model.arch"):
        model_config_class("lstm")


def test_factory_unknown_key_and_bad_choice():
    with pytest.raises(ConfigError, match=r"model\.hiden_dim.*hidden_dim"):
        make("gru", hiden_dim=3)
    with pytest.raises(ConfigError, match="valid choices: gru, lstm"):
        make("gru", cell="rnn")
    with pytest.raises(ConfigError, match="valid choices: bahdanau, dot, general"):
        make("bahdanau", score="concat")
    with pytest.raises(ConfigError, match="model.num_heads"):
        make("transformer", num_heads=5)


@pytest.mark.parametrize("arch", MODEL_ARCHS)
def test_model_config_class_defaults_parse(arch):
    cls = model_config_class(arch)
    model = build_model({"arch": arch}, src_vocab_size=11, tgt_vocab_size=11, pad_id=0,
                        bos_id=1, eos_id=2, shared_vocab=True)
    assert model.cfg == cls() and model.num_parameters() > 0


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_conf_model_files_build(path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["arch"] in MODEL_ARCHS
    model = build_model(cfg, src_vocab_size=97, tgt_vocab_size=97, pad_id=0, bos_id=1,
                        eos_id=2, shared_vocab=True)
    assert model.num_parameters() > 0
    if isinstance(model, Transformer):  # the file's sizes are the ones built
        assert (model.cfg.d_model, model.cfg.num_heads) == (cfg["d_model"], cfg["num_heads"])
