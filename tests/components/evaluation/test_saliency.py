"""Gradient saliency (nmt.components.evaluation.saliency): the stand-in map for the plain Seq2Seq."""

from __future__ import annotations

import pytest
import torch

from nmt.components.evaluation.saliency import saliency
from tests.conftest import SRC_V, TGT_V, make

S, T = 6, 4


def _sentence(real: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One source of ``real`` tokens right-padded to S, and a target of T tokens."""
    g = torch.Generator().manual_seed(3)
    src = torch.randint(3, SRC_V, (1, S), generator=g)
    mask = torch.arange(S)[None, :] < real
    tgt = torch.randint(3, TGT_V, (1, T), generator=g)
    return src.masked_fill(~mask, 0), mask, tgt


@pytest.mark.parametrize("name", ["gru", "lstm", "bahdanau", "transformer", "transformer_post"])
def test_rows_are_distributions_over_the_real_source_tokens(name):
    model = make(name)
    src, mask, tgt = _sentence(real=4)
    sal = saliency(model, src, mask, tgt)
    assert sal.shape == (T, S)
    assert (sal >= 0).all()
    torch.testing.assert_close(sal.sum(-1), torch.ones(T))
    assert (sal[:, 4:] == 0).all()  # padding columns
    assert (sal[:, :4] > 0).all()  # every real token influences every output of a dense model


def test_leaves_the_model_as_it_found_it():
    model = make("gru").train()
    src, mask, tgt = _sentence(real=S)
    saliency(model, src, mask, tgt)
    assert model.training
    assert all(p.grad is None for p in model.parameters())  # nothing leaks into a later optimizer step


def test_shared_embeddings_give_the_source_columns():
    """A Transformer sharing one table for source and target embeds the target with the
    same module; the map must still be over the source tokens."""
    model = make("transformer_post", shared_vocab=True)
    assert model.src_emb is model.tgt_emb
    src, mask, tgt = _sentence(real=5)
    tgt = tgt.clamp(max=SRC_V - 1)
    assert saliency(model, src, mask, tgt).shape == (T, S)
