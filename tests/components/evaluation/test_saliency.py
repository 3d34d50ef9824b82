"""Gradient saliency (nmt.components.evaluation.saliency): the stand-in map for the plain Seq2Seq."""

from __future__ import annotations

import pytest
import torch

from nmt.components.evaluation.saliency import saliency
from tests.conftest import PAD, SRC_V, TGT_V, make

S, T = 6, 4
ARCHS = ["gru", "lstm", "bahdanau", "transformer", "transformer_post"]


def _sentence(real: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One source of ``real`` tokens right-padded to S, and a target of T tokens."""
    g = torch.Generator().manual_seed(3)
    src = torch.randint(3, SRC_V, (1, S), generator=g)
    mask = torch.arange(S)[None, :] < real
    tgt = torch.randint(3, TGT_V, (1, T), generator=g)
    return src.masked_fill(~mask, PAD), mask, tgt


@pytest.mark.parametrize("name", ARCHS)
def test_rows_are_distributions_over_the_real_source_tokens(name):
    model = make(name)
    src, mask, tgt = _sentence(real=4)
    sal = saliency(model, src, mask, tgt)
    assert sal.shape == (1, T, S)
    assert (sal >= 0).all()
    torch.testing.assert_close(sal.sum(-1), torch.ones(1, T))
    assert (sal[..., 4:] == 0).all()  # padding columns
    assert (sal[..., :4] > 0).all()  # every real token influences every output of a dense model


@pytest.mark.parametrize("name", ARCHS)
def test_a_batch_equals_its_sentences_one_at_a_time(name):
    """The batched backward sums log p over sentences: that must not mix their gradients.
    Sources of 6, 3 and 5 tokens and targets of 5, 2 and 4, PAD after each; the models'
    dims are distinct (tests.conftest), so a transposed batch and source axis cannot pass."""
    model = make(name)
    g = torch.Generator().manual_seed(5)
    n_src, n_tgt, T_max = torch.tensor([S, 3, 5]), [5, 2, 4], 5
    mask = torch.arange(S)[None, :] < n_src[:, None]  # (3, S)
    src = torch.randint(3, SRC_V, (3, S), generator=g).masked_fill(~mask, PAD)
    tgt = torch.randint(3, TGT_V, (3, T_max), generator=g)
    tgt = tgt.masked_fill(torch.arange(T_max)[None, :] >= torch.tensor(n_tgt)[:, None], PAD)
    batched = saliency(model, src, mask, tgt)  # (3, T_max, S)
    assert batched.shape == (3, T_max, S)
    for b, n in enumerate(n_tgt):
        alone = saliency(model, src[b:b + 1], mask[b:b + 1], tgt[b:b + 1, :n])[0]  # (n, S)
        torch.testing.assert_close(batched[b, :n], alone)
        assert (batched[b, n:] == 0).all()  # rows of PAD targets


@pytest.mark.parametrize("name", ["gru", "bahdanau", "transformer"])
def test_equals_the_definition_one_backward_per_output_token(name):
    """Against ||d log p(y_t) / d e(x_s)||_2 taken straight from autograd, one backward per
    token: what saliency computed before it was batched and started below the output layer."""
    model = make(name)
    src, mask, tgt = _sentence(real=4)
    emb = []
    handle = model.src_emb.register_forward_hook(lambda m, a, out: emb.append(out) if not emb else None)
    tgt_in = torch.cat([torch.full_like(tgt[:, :1], model.bos_id), tgt[:, :-1]], dim=1)
    logits, _ = model(src, mask, tgt_in)
    handle.remove()
    logp = logits.log_softmax(-1)[0].gather(1, tgt[0].unsqueeze(1)).squeeze(1)  # (T,)
    rows = torch.stack([torch.autograd.grad(logp[t], emb[0], retain_graph=True)[0][0].norm(dim=-1)
                        for t in range(T)]) * mask[0].float()  # (T, S)
    torch.testing.assert_close(saliency(model, src, mask, tgt)[0], rows / rows.sum(-1, keepdim=True))


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
    assert saliency(model, src, mask, tgt).shape == (1, T, S)
