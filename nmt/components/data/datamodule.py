"""LightningDataModule over prepare's tokenized ``DatasetDict``: length-bucketed batches
under a token budget, so padding waste stays small (the same idea as fairseq's
``--max-tokens`` batching)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytorch_lightning as pl
import torch
from datasets import DatasetDict, load_from_disk
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from nmt.components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


def token_budget_batches(src_lens: list[int], tgt_lens: list[int], max_tokens: int,
                         *, shuffle: bool, seed: int) -> list[list[int]]:
    """Indices grouped so that ``batch_size * longest side <= max_tokens``.

    Sorting by length (with a little random jitter when shuffling) buckets similar lengths
    together; the batch order is then shuffled."""
    rng = random.Random(seed)
    order = sorted(range(len(src_lens)),
                   key=lambda i: (max(src_lens[i], tgt_lens[i]) + (rng.random() if shuffle else 0),
                                  src_lens[i]))
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = max(src_lens[i], tgt_lens[i])
        if cur and max(longest, n) * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches


class TokenBudgetSampler(Sampler[list[int]]):
    """Token-budget batches, reshuffled each epoch; with ``world > 1`` (DDP) rank ``rank``
    takes every ``world``-th batch, all ranks the same number of them."""

    def __init__(self, src_lens: list[int], tgt_lens: list[int], max_tokens: int,
                 shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        self.src_lens, self.tgt_lens = src_lens, tgt_lens
        self.max_tokens, self.shuffle, self.seed, self.epoch = max_tokens, shuffle, seed, 0
        self.rank, self.world = rank, world
        self._len = len(token_budget_batches(src_lens, tgt_lens, max_tokens, shuffle=False, seed=0)) // world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        batches = token_budget_batches(self.src_lens, self.tgt_lens, self.max_tokens,
                                       shuffle=self.shuffle, seed=self.seed + self.epoch)
        self.epoch += 1
        return iter(batches[self.rank::self.world][: self._len])

    def __len__(self) -> int:
        return self._len


def pad(seqs: list[list[int]]) -> Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(rows: list[dict]) -> dict[str, Tensor | list[str]]:
    """src (B, S); tgt_in = BOS y (B, T); tgt_out = y EOS (B, T); masks True at real tokens."""
    src = pad([r["src_ids"] + [EOS_ID] for r in rows])
    tgt_in = pad([[BOS_ID] + r["tgt_ids"] for r in rows])
    tgt_out = pad([r["tgt_ids"] + [EOS_ID] for r in rows])
    return {"src": src, "src_mask": src != PAD_ID, "tgt_in": tgt_in, "tgt_out": tgt_out,
            "ref": [r["tgt"] for r in rows], "idx": [r["idx"] for r in rows]}


def source_batch(codec_src_ids: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Raw source ids -> (src (B, S), src_mask) exactly as training sees them (EOS added)."""
    src = pad([ids + [EOS_ID] for ids in codec_src_ids])
    return src, src != PAD_ID


class TranslationDataModule(pl.LightningDataModule):
    def __init__(self, data_dir: str | Path, *, max_tokens: int, eval_max_tokens: int | None = None,
                 train_limit: int | None = None, val_limit: int | None = None, seed: int = 0,
                 num_workers: int = 0):
        super().__init__()
        self.data_dir, self.max_tokens, self.seed = Path(data_dir), max_tokens, seed
        self.eval_max_tokens = eval_max_tokens or max_tokens * 2
        self.train_limit, self.val_limit, self.num_workers = train_limit, val_limit, num_workers
        self.ds: DatasetDict | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.ds is None:
            ds = load_from_disk(str(self.data_dir))
            if self.train_limit:
                ds["train"] = ds["train"].select(range(min(self.train_limit, len(ds["train"]))))
            if self.val_limit:
                ds["val"] = ds["val"].select(range(min(self.val_limit, len(ds["val"]))))
            self.ds = ds

    def _loader(self, split: str, shuffle: bool, max_tokens: int) -> DataLoader:
        assert self.ds is not None, "call setup() first"
        d = self.ds[split]
        trainer = self.trainer  # None outside a Trainer
        shard = (trainer.global_rank, trainer.world_size) if trainer is not None and split == "train" else (0, 1)
        sampler = TokenBudgetSampler([n + 1 for n in d["src_len"]], [n + 1 for n in d["tgt_len"]],
                                     max_tokens, shuffle=shuffle, seed=self.seed, rank=shard[0], world=shard[1])
        return DataLoader(d.with_format(None, columns=["idx", "src_ids", "tgt_ids", "tgt"]),
                          batch_sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.max_tokens)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_max_tokens)

    def split_loader(self, split: str) -> DataLoader:
        return self._loader(split, False, self.eval_max_tokens)
