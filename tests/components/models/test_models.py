"""Model invariants: shapes, attention masking, causality, incremental == full decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.components.system.errors import ConfigError
from nmt.components.models.attention import make_attention
from nmt.components.models.base import select_state
from nmt.components.models.factory import ARCHITECTURES, ModelSpec, build, parse_model
from nmt.components.models.transformer import Transformer
from tests.conftest import (ATTENTION_KINDS, B, EOS, PAD, S, SRC_V, T, TGT_V, TINY_NETS as TINY, batch, make,
                            step_through, tiny_net)

CONF = Path(__file__).resolve().parents[3] / "conf" / "model"


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
    with pytest.raises(ValueError, match="a shared vocabulary but sizes differ"):
        tiny_net(TINY["transformer"], SRC_V, TGT_V, shared=True)


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
    with pytest.raises(ConfigError, match="model.arch: invalid choice 'rnn'; valid choices: seq2seq, attention, transformer"):
        parse_model({"arch": "rnn"})


def test_factory_unknown_key_and_bad_choice():
    with pytest.raises(ConfigError, match=r"model\.hiden_dim.*hidden_dim"):
        make("gru", hiden_dim=3)
    with pytest.raises(ConfigError, match="valid choices: gru, lstm"):
        make("gru", cell="rnn")
    with pytest.raises(ConfigError, match="valid choices: bahdanau, dot, general"):
        make("bahdanau", score="concat")
    with pytest.raises(ConfigError, match="model.num_heads"):
        make("transformer", num_heads=5)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_builds_from_its_defaults(arch):
    model = tiny_net({"arch": arch}, 11, 11, shared=True)
    assert model.cfg == ARCHITECTURES[arch][0]() and model.num_parameters() > 0


@pytest.mark.parametrize("name", list(TINY))
def test_spec_json_round_trip_rebuilds_the_same_network(name, tmp_path):
    from nmt.components.models.factory import load_spec, save_spec
    from nmt.components.models.base import Vocabulary
    spec = ModelSpec(parse_model(TINY[name]), Vocabulary(SRC_V, TGT_V, PAD, 1, EOS, False))
    again = load_spec(save_spec(spec, tmp_path / "model_config.json"))
    assert again == spec and type(again.config) is type(spec.config)
    assert build(again).num_parameters() == build(spec).num_parameters()


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_conf_model_files_build(path):
    from nmt.components.models.factory import model_dict
    from nmt.pipeline.config import load_config
    cfg = model_dict(load_config([f"model={path.stem}"]).model)  # composed as the pipeline composes it
    assert cfg["arch"] in ARCHITECTURES
    model = tiny_net(cfg, 97, 97, shared=True)
    assert model.num_parameters() > 0
    if isinstance(model, Transformer):  # the file's sizes are the ones built
        assert (model.cfg.d_model, model.cfg.num_heads) == (cfg["d_model"], cfg["num_heads"])
