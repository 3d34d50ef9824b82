"""The Transformer's ablation switches each change the model as stated (Vaswani et al. 2017):
positions, heads, residual connections, pre/post-norm; and the defaults are today's model."""

from __future__ import annotations

import pytest
import torch

from nmt.components.system.errors import ConfigError
from nmt.components.models.factory import parse_model
from nmt.components.models.arch_configs import TransformerConfig
from nmt.components.models.transformer import Layer
from tests.conftest import B, S, SRC_V, T, batch, make

D, FF = 12, 20  # tiny distinct sizes (conftest's transformer)


def _full_source() -> tuple[torch.Tensor, torch.Tensor]:
    """One unpadded source batch (B, S): permuting it moves every token."""
    g = torch.Generator().manual_seed(3)
    return torch.randint(3, SRC_V, (B, S), generator=g), torch.ones(B, S, dtype=torch.bool)


@pytest.mark.parametrize("positional, equivariant", [("none", True), ("sinusoidal", False), ("learned", False)])
def test_without_positions_the_encoder_is_permutation_equivariant(positional, equivariant):
    model = make("transformer", positional=positional)
    if positional == "learned":  # N(0, d^-1/2) rows: nonzero, so order shows
        assert model.pos.requires_grad
    src, mask = _full_source()
    perm = torch.tensor([4, 0, 6, 2, 1, 5, 3])
    with torch.no_grad():
        memory, permuted = model.encode(src, mask), model.encode(src[:, perm], mask)  # (B, S, d)
    same = torch.allclose(permuted, memory[:, perm], atol=1e-5)
    assert same is equivariant


@pytest.mark.parametrize("heads", [1, 3])
def test_heads_give_that_many_attention_maps(heads):
    model = make("transformer", num_heads=heads)
    src, mask, tgt_in = batch()
    _, attn = model(src, mask, tgt_in)  # (B, L, nh, T, S)
    assert attn.shape == (B, 2, heads, T, S)
    torch.testing.assert_close(attn.sum(-1), torch.ones(B, 2, heads, T))
    if heads > 1:  # distinct heads look at different places
        assert not torch.allclose(attn[:, :, 0], attn[:, :, 1])


def _layer(**fields) -> Layer:
    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=D, num_heads=3, ff_dim=FF, dropout=0.0, **fields)
    return Layer(cfg, cross=False).eval()


def _silence(layer: Layer) -> Layer:
    """Zero every sub-layer's output projection: Sublayer(.) = 0."""
    with torch.no_grad():
        for lin in (layer.self_attn.o, layer.ff[-1]):
            lin.weight.zero_()
            lin.bias.zero_()
    return layer


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_residual_switch_decides_whether_x_passes_through(norm):
    x, mask = torch.randn(B, S, D), torch.ones(B, 1, 1, S, dtype=torch.bool)
    with torch.no_grad():
        kept = _silence(_layer(norm=norm, residual=True))(x, mask)[0]
        dropped = _silence(_layer(norm=norm, residual=False))(x, mask)[0]
    # with silent sub-layers the block is the identity path alone: x (pre-norm), LN(x)
    # (post-norm) with residuals; nothing (zeros, or LN(0) = 0) without them
    expected = x if norm == "pre" else torch.nn.functional.layer_norm(x, (D,))
    torch.testing.assert_close(kept, expected, atol=1e-4, rtol=1e-4)  # post: LN(LN(x)), eps apart
    torch.testing.assert_close(dropped, torch.zeros_like(x))


@pytest.mark.parametrize("norm, normalised", [("post", True), ("pre", False)])
def test_post_norm_rows_are_normalised(norm, normalised):
    x, mask = 3 * torch.randn(B, S, D) + 1, torch.ones(B, 1, 1, S, dtype=torch.bool)
    with torch.no_grad():
        y = _layer(norm=norm)(x, mask)[0]  # (B, S, d)
    mean, std = y.mean(-1), y.std(-1, unbiased=False)
    ok = torch.allclose(mean, torch.zeros_like(mean), atol=1e-5) and torch.allclose(std, torch.ones_like(std), atol=1e-3)
    assert ok is normalised


def test_defaults_are_todays_model():
    """A model_config.json written before the switches existed parses to the same model:
    same parameter names and shapes (old checkpoints load), same outputs."""
    old = {"arch": "transformer", "d_model": D, "num_encoder_layers": 2, "num_decoder_layers": 2,
           "num_heads": 3, "ff_dim": FF, "dropout": 0.1, "norm": "pre", "positional": "sinusoidal",
           "share_embeddings": False}
    cfg = parse_model(old)
    assert (cfg.residual, cfg.positional, cfg.norm) == (True, "sinusoidal", "pre")
    today, explicit = make("transformer"), make("transformer", residual=True, positional="sinusoidal")
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(today) == shapes(explicit) and "pos" not in shapes(today)  # the table is not saved
    explicit.load_state_dict(today.state_dict())
    src, mask, tgt_in = batch()
    torch.testing.assert_close(explicit(src, mask, tgt_in)[0], today(src, mask, tgt_in)[0])


def test_a_bad_switch_names_the_key_and_the_choices():
    with pytest.raises(ConfigError, match="positional.*none"):
        parse_model({"arch": "transformer", "positional": "rotary"})
    with pytest.raises(ConfigError, match="residual"):
        parse_model({"arch": "transformer", "residual": "sometimes"})
