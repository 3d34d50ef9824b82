"""Forced decoding (nmt.components.decoding.forced): the attention read out on a reference."""

from __future__ import annotations

import pytest
import torch

from nmt.components.decoding.forced import forced_attention, readout, readout_name, readouts
from nmt.components.evaluation.saliency import saliency
from nmt.components.system.errors import ConfigError
from tests.conftest import EOS, batch, make, step_through


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
    torch.testing.assert_close(out[0], saliency(model, src[:1], mask[:1], tgt[:1]))
    torch.testing.assert_close(out[2, :3], saliency(model, src[2:], mask[2:], tgt[2:, :3]))
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
