"""Greedy and beam search invariants, on a scripted model (exact answers known by brute
force) and on the tiny real architectures."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import Tensor

from nmt.components.decoding.search import (
    Hypothesis, beam_search, gnmt_penalty, greedy_decode, max_target_len, translate_ids,
)
from nmt.components.models.base import Seq2SeqModel, Vocabulary
from tests.conftest import tiny_net

PAD, BOS, EOS = 0, 1, 2


class BigramModel(Seq2SeqModel):
    """log p(y_t | y_{t-1}, src) = table[src[:, 0], y_{t-1}] with EOS growing likelier each
    step: a model whose best sequences can be found by enumeration. Tokens PAD and BOS
    are (almost) never produced."""

    def __init__(self, vocab: int = 5, keys: int = 4, eos_drift: float = 0.7, seed: int = 0):
        super().__init__(Vocabulary(keys, vocab, PAD, BOS, EOS))
        g = torch.Generator().manual_seed(seed)
        table = torch.randn(keys, vocab, vocab, generator=g) * 1.5
        table[..., [PAD, BOS]] = -30.0
        self.register_buffer("table", table)
        self.eos_drift = eos_drift

    def encode(self, src: Tensor, src_mask: Tensor):
        return src[:, 0]

    def init_state(self, memory, src_mask: Tensor):
        return {"key": memory, "step": torch.zeros_like(memory), "mask": src_mask}

    def decode_step(self, tokens: Tensor, state):
        logits = self.table[state["key"], tokens].clone()  # (B, V)
        logits[:, EOS] += self.eos_drift * state["step"].float()
        attn = state["mask"].float() / state["mask"].sum(1, keepdim=True)  # (B, S), uniform
        return logits, {**state, "step": state["step"] + 1}, attn

    def forward(self, src, src_mask, tgt_in):  # pragma: no cover - not used here
        raise NotImplementedError

    def logprob(self, key: int, tokens: list[int]) -> float:
        total, prev = 0.0, BOS
        for step, tok in enumerate(tokens):
            logits = self.table[key, prev].clone()
            logits[EOS] += self.eos_drift * step
            total += float(logits.log_softmax(-1)[tok])
            prev = tok
        return total


def brute_force(model: BigramModel, key: int, max_len: int, alpha: float):
    """All sequences over the real tokens that end in EOS, or stop at max_len."""
    real = [t for t in range(model.table.shape[-1]) if t not in (PAD, BOS, EOS)]
    seqs = []
    for n in range(max_len + 1):
        for body in itertools.product(real, repeat=n):
            seqs.append(list(body) + [EOS] if n < max_len else list(body))
    scored = [(model.logprob(key, s) / gnmt_penalty(len(s), alpha), s) for s in seqs if s]
    return sorted(scored, key=lambda x: -x[0])


def sources(keys=(0, 1, 2, 3), width: int = 6):
    src = torch.tensor([[k] + [5] * (width - 1) for k in keys])
    mask = torch.arange(width)[None, :] < torch.tensor([width, 3, 1, 4][: len(keys)])[:, None]
    return src.masked_fill(~mask, PAD), mask


def boost_eos(module, inputs, logits):
    return logits + 2.0 * (torch.arange(logits.shape[-1]) == EOS)


def tiny(arch: str):
    cfgs = {
        "seq2seq": {"arch": "seq2seq", "cell": "gru", "emb_dim": 10, "hidden_dim": 12},
        "attention": {"arch": "attention", "emb_dim": 10, "enc_hidden_dim": 6,
                      "dec_hidden_dim": 12, "attn_dim": 14},
        "transformer": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 1,
                        "num_decoder_layers": 2, "num_heads": 3, "ff_dim": 20},
    }
    torch.manual_seed(0)
    model = tiny_net(cfgs[arch], 23, 23, shared=True, pad=PAD, bos=BOS, eos=EOS)
    out = model.generator if arch == "transformer" else model.out
    out.register_forward_hook(boost_eos)  # make EOS plausible so that hypotheses do finish
    g = torch.Generator().manual_seed(3)
    src = torch.randint(3, 23, (3, 7), generator=g)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 4, 2])[:, None]
    return model.eval(), src.masked_fill(~mask, PAD), mask


ARCHS = ["seq2seq", "attention", "transformer"]


def test_max_target_len():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert max_target_len(mask) == 16
    assert max_target_len(mask, ratio=2.0, extra=0) == 8


def test_gnmt_penalty():
    assert gnmt_penalty(1, 0.6) == 1.0 and gnmt_penalty(7, 0.0) == 1.0
    assert gnmt_penalty(11, 0.6) > gnmt_penalty(10, 0.6)


def test_greedy_rows_end_at_eos_then_pad():
    model = BigramModel()
    src, mask = sources()
    ids, attn = greedy_decode(model, src, mask, max_len=12)
    assert ids.shape[1] <= 12 and attn.shape == (4, ids.shape[1], src.shape[1])
    for row in ids.tolist():
        assert BOS not in row
        if EOS in row:
            e = row.index(EOS)
            assert all(t == PAD for t in row[e + 1:])
        else:
            assert len(row) == 12
    # stops early: the drift makes every row finish well before 12 steps, and the last
    # column holds some row's EOS
    assert ids.shape[1] < 12 and (ids[:, -1] == EOS).any()


def test_greedy_stops_at_max_len():
    model = BigramModel(eos_drift=-50.0)  # EOS never wins
    src, mask = sources()
    ids, _ = greedy_decode(model, src, mask, max_len=5)
    assert ids.shape == (4, 5) and not (ids == EOS).any()


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_search_is_exact_when_it_covers_the_space(alpha):
    """With K larger than the whole search space, beam search returns the true best."""
    model = BigramModel(eos_drift=0.3)
    src, mask = sources()
    max_len = 4
    hyps = beam_search(model, src, mask, beam_size=64, max_len=max_len, length_penalty=alpha)
    for key, found in zip(range(4), hyps):
        exact = brute_force(model, key, max_len, alpha)[:5]
        assert [h.tokens for h in found[:5]] == [s for _, s in exact]
        assert [h.score for h in found[:5]] == pytest.approx([sc for sc, _ in exact], abs=1e-5)


def test_small_beam_finds_better_than_greedy_on_bigram():
    model = BigramModel(eos_drift=0.3, seed=4)
    src, mask = sources()
    greedy, _ = greedy_decode(model, src, mask, max_len=6)
    hyps = beam_search(model, src, mask, beam_size=4, max_len=6, length_penalty=0.0)
    for key, row, best in zip(range(4), greedy.tolist(), hyps):
        row = row[: row.index(EOS) + 1] if EOS in row else row
        assert best[0].score >= model.logprob(key, row) - 1e-6


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_one_equals_greedy(arch):
    model, src, mask = tiny(arch)
    ids, _ = greedy_decode(model, src, mask, max_len=9)
    hyps = beam_search(model, src, mask, beam_size=1, max_len=9, length_penalty=0.0)
    for row, hs in zip(ids.tolist(), hyps):
        row = row[: row.index(EOS) + 1] if EOS in row else row
        assert len(hs) == 1 and hs[0].tokens == row


def test_beam_one_equals_greedy_bigram():
    model = BigramModel(seed=2)
    src, mask = sources()
    ids, _ = greedy_decode(model, src, mask, max_len=8)
    for row, hs in zip(ids.tolist(), beam_search(model, src, mask, 1, 8, length_penalty=0.0)):
        assert hs[0].tokens == row[: row.index(EOS) + 1]


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_hypotheses_sorted_and_well_formed(arch):
    model, src, mask = tiny(arch)
    max_len, K = 8, 4
    hyps = beam_search(model, src, mask, beam_size=K, max_len=max_len)
    assert len(hyps) == src.shape[0]
    for hs in hyps:
        assert len(hs) == K
        scores = [h.score for h in hs]
        assert scores == sorted(scores, reverse=True)
        for h in hs:
            assert isinstance(h, Hypothesis) and BOS not in h.tokens
            assert (h.tokens[-1] == EOS and EOS not in h.tokens[:-1]) or len(h.tokens) == max_len
            assert h.attention is not None and h.attention.shape[-2] == len(h.tokens)


@pytest.mark.parametrize("arch", ARCHS)
def test_beam_batched_equals_one_by_one(arch):
    model, src, mask = tiny(arch)
    together = beam_search(model, src, mask, beam_size=3, max_len=8)
    for i in range(src.shape[0]):
        n = int(mask[i].sum())
        alone = beam_search(model, src[i: i + 1, :n], mask[i: i + 1, :n], beam_size=3, max_len=8)
        assert [h.tokens for h in alone[0]] == [h.tokens for h in together[i]]
        expected = [h.score for h in together[i]]
        assert [h.score for h in alone[0]] == pytest.approx(expected, abs=1e-4)


def test_beam_attention_rows_match_mask():
    model, src, mask = tiny("attention")
    for i, hs in enumerate(beam_search(model, src, mask, beam_size=2, max_len=6)):
        for h in hs:
            assert (h.attention[:, ~mask[i]] == 0).all()
            torch.testing.assert_close(h.attention.sum(-1), torch.ones(len(h.tokens)))


def test_an_attention_view_keeps_that_view_of_each_step():
    """--align keeps one readout row per step; the hypotheses and their maps are those of the
    full search, cut down (the penultimate layer, heads averaged)."""
    model, src, mask = tiny("transformer")
    full = beam_search(model, src, mask, beam_size=3, max_len=6)
    viewed = beam_search(model, src, mask, beam_size=3, max_len=6, attention_view=lambda a: a[:, 0].mean(1))
    for hs, vs in zip(full, viewed):
        assert [h.tokens for h in hs] == [v.tokens for v in vs]
        for h, v in zip(hs, vs):
            assert h.attention.dim() == 4 and v.attention.dim() == 2  # (L, nh, T, S) -> (T, S)
            torch.testing.assert_close(v.attention, h.attention[0].mean(0))


@pytest.mark.parametrize("arch", ARCHS)
def test_translate_ids_strips_specials(arch):
    model, src, mask = tiny(arch)
    greedy = translate_ids(model, src, mask, beam_size=1, max_len_extra=2)
    ids, _ = greedy_decode(model, src, mask, max_target_len(mask, 1.5, 2))
    for out, row in zip(greedy, ids.tolist()):
        assert not {PAD, BOS, EOS} & set(out)
        assert out == (row[: row.index(EOS)] if EOS in row else row)
    beam = translate_ids(model, src, mask, beam_size=3, max_len_extra=2)
    assert len(beam) == 3 and all(not {PAD, BOS, EOS} & set(o) for o in beam)
