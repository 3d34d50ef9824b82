"""Forced decoding (nmt.components.decoding.forced): the attention read out on a reference."""

from __future__ import annotations

import pytest
import torch

from nmt.components.data.tokenizer import TextCodec, train_tokenizer
from nmt.components.decoding.alignment import given_words
from nmt.components.decoding.forced import align_pairs, forced_attention, readout, readout_name, readouts
from nmt.components.evaluation.saliency import saliency
from nmt.components.system.errors import ConfigError
from tests.conftest import EOS, batch, make, step_through, tiny_net


def _reference():
    src, mask, tgt_in = batch()
    tgt = torch.cat([tgt_in[:, 1:], torch.full_like(tgt_in[:, :1], EOS)], dim=1)  # y_1 .. y_T-1, EOS
    return src, mask, tgt_in, tgt


@pytest.mark.parametrize("name", ["bahdanau", "dot", "transformer", "transformer_post"])
def test_forced_decoding_equals_teacher_forced_training_attention(name):
    model = make(name, dropout=0.0).train()
    src, mask, tgt_in, tgt = _reference()
    _, trained = model(src, mask, tgt_in)  # the training pass, teacher-forced
    forced = forced_attention(model, src, mask, tgt)
    assert model.training  # its mode is restored
    torch.testing.assert_close(forced, trained)
    _, stepped = step_through(model.eval(), src, mask, tgt_in)  # and what decoding sees, step by step
    torch.testing.assert_close(forced, stepped)


def test_the_gru_gives_saliency_per_sentence():
    model = make("gru")
    src, mask, _, tgt = _reference()
    tgt[2, 3:] = 0  # a shorter reference: PAD after its EOS
    tgt[2, 2] = EOS
    out = forced_attention(model, src, mask, tgt)
    assert readouts(model) == ["saliency"]
    torch.testing.assert_close(out[0], saliency(model, src[:1], mask[:1], tgt[:1])[0])
    torch.testing.assert_close(out[2, :3], saliency(model, src[2:], mask[2:], tgt[2:, :3])[0])
    assert (out[2, 3:] == 0).all()


def test_transformer_readouts():
    model = make("transformer")  # 2 decoder layers, 3 heads
    attn = torch.rand(2, 3, 4, 5)
    assert readouts(model)[:4] == ["mean", "penultimate", "layer 1", "layer 2"]
    assert len(readouts(model)) == 4 + 2 * 3
    torch.testing.assert_close(readout(attn, "penultimate", model), attn[0].mean(0))  # Garg et al.: L-1
    torch.testing.assert_close(readout(attn, "layer 2 head 3", model), attn[1, 2])
    torch.testing.assert_close(readout(attn, "mean", model), attn.mean((0, 1)))
    assert readout_name("2", 3) == "layer 2 head 3" and readout_name(None, None) is None
    with pytest.raises(ConfigError, match="not a readout of this transformer; valid: mean, penultimate"):
        readout(attn, "layer 3", model)
    with pytest.raises(ConfigError, match="--head 1 needs --layer N"):
        readout_name("mean", 1)


def test_align_pairs_cuts_at_max_positions_and_leaves_empty_pairs_empty():
    tok = train_tokenizer(["ein hund läuft .", "a dog runs ."] * 10, kind="bpe", vocab_size=40)
    torch.manual_seed(0)
    v = tok.get_vocab_size()
    model = tiny_net({"arch": "transformer", "d_model": 8, "num_encoder_layers": 1, "num_decoder_layers": 2,
                      "num_heads": 2, "ff_dim": 12, "dropout": 0.0, "max_positions": 6}, v, v, shared=True).eval()
    src, tgt = "ein hund läuft . ein hund läuft .", "a dog runs . a dog runs ."  # > 5 pieces a side
    assert len(tok.encode(tgt).ids) > 5
    out = align_pairs(model, TextCodec(tok, tok), [src, "", "ein"], [tgt, "a dog", ""], ["mean", "layer 2 head 1"])
    kept = len(set(given_words(tok, tok.encode(tgt).ids[:5])))  # the words within the first 5 pieces
    assert 0 < kept < len(tgt.split())
    for links in out.values():
        assert sorted(j for _, j in links[0]) == list(range(kept))
        assert links[1] == links[2] == set()
    with pytest.raises(ConfigError, match="2 source lines for 1 target lines"):
        align_pairs(model, TextCodec(tok, tok), [src, src], [tgt], ["mean"])
