"""The token-budget sampler: vectorised, deterministic, every pair once per epoch, the
budget kept, DDP ranks disjoint, and a resumed epoch that neither replays nor skips."""

from __future__ import annotations

import numpy as np
import pytest

from nmt.components.data.datamodule import TokenBudgetSampler, token_budget_batches


def greedy_reference(order: np.ndarray, longest: np.ndarray, max_tokens: int) -> list[list[int]]:
    """The plain-Python greedy pass the vectorised one must reproduce on the same order."""
    batches, cur, top = [], [], 0
    for i in order.tolist():
        n = int(longest[i])
        if cur and max(top, n) * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, top = [], 0
        cur.append(i)
        top = max(top, n)
    return batches + ([cur] if cur else [])


def lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(1, 120, n)
    return src, np.clip(src + rng.integers(-10, 11, n), 1, None)


@pytest.mark.parametrize("max_tokens", [50, 512, 4096])
def test_batches_are_the_greedy_pass_cover_every_pair_once_and_keep_the_budget(max_tokens):
    src, tgt = lengths(3000)
    longest = np.maximum(src, tgt)
    for shuffle in (False, True):
        batches = token_budget_batches(src, tgt, max_tokens, shuffle=shuffle, seed=7)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(3000))  # each pair exactly once
        for b in batches:
            assert len(b) * longest[b].max() <= max_tokens or len(b) == 1
        # the same grouping as the greedy pass over the (length-sorted) order they came in
        order = np.concatenate(sorted(batches, key=lambda b: (longest[b].max(), longest[b].min(), -len(b))))
        assert sorted(map(tuple, greedy_reference(order, longest, max_tokens))) == sorted(map(tuple, batches))


def test_pairs_longer_than_the_budget_go_alone():
    batches = token_budget_batches([30, 2, 40, 3], [1, 2, 1, 3], 20, shuffle=False, seed=0)
    assert [b.tolist() for b in batches] == [[1, 3], [0], [2]]


def test_same_seed_same_batches_other_epoch_other_order():
    src, tgt = lengths(500)
    s = TokenBudgetSampler(src, tgt, 400, shuffle=True, seed=3)
    first, again = list(s), list(s)
    assert first == again  # the epoch, not the call, changes the order
    s.set_epoch(1)
    second = list(s)
    assert second != first and len(second) == len(first) == len(s)
    assert sorted(i for b in second for i in b) == list(range(500))


def test_ranks_get_disjoint_equal_shares():
    src, tgt = lengths(777)
    shards = [list(TokenBudgetSampler(src, tgt, 300, True, 5, rank=r, world=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    seen = [i for shard in shards for b in shard for i in b]
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize("world", [1, 2])
def test_resume_yields_exactly_the_remaining_batches(world):
    src, tgt = lengths(600)
    full = TokenBudgetSampler(src, tgt, 300, True, 9, rank=world - 1, world=world)
    full.set_epoch(4)
    expected = list(full)
    resumed = TokenBudgetSampler(src, tgt, 300, True, 9, rank=world - 1, world=world)
    resumed.resume(4, 5)
    assert list(resumed) == expected[5:] and len(resumed) == len(expected)
    assert list(resumed)[:5] == expected[:5]  # the skip is for that one iteration only
    at_end = TokenBudgetSampler(src, tgt, 300, True, 9, rank=world - 1, world=world)
    at_end.resume(4, len(expected))  # saved at the epoch's last batch: the next epoch, whole
    nxt = TokenBudgetSampler(src, tgt, 300, True, 9, rank=world - 1, world=world)
    nxt.set_epoch(5)
    assert list(at_end) == list(nxt)
