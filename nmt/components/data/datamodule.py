"""LightningDataModule over prepare's tokenized ``DatasetDict``: length-bucketed batches
under a token budget, so padding waste stays small (the same idea as fairseq's
``--max-tokens`` batching).

Given the model's ``max_positions``, nothing longer reaches it: training pairs that do not
fit are left out of the batches (counted in ``dropped`` and logged: prepare's
``data.max_tokens`` may be above a small model's positions), and validation and test pairs
are cut to fit (their references stay whole, so a test set is still scored in full).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from datasets import DatasetDict, load_from_disk
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from nmt.components.data.batching import pad
from nmt.components.data.sources import DataError
from nmt.components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

log = logging.getLogger("nmt")


def _batch_starts(lengths: np.ndarray, max_tokens: int) -> np.ndarray:
    """Where each batch begins in ``lengths`` (sorted ascending): greedy, a batch takes the
    next pair while ``(size + 1) * its length <= max_tokens`` (at least one pair).

    Sorted, the newest pair is the batch's longest, so inside a run of one length L the
    batches are chunks of ``max_tokens // L``: one Python step per distinct length (a few
    hundred), numpy within it."""
    first = np.concatenate([[0], np.flatnonzero(np.diff(lengths)) + 1]) if len(lengths) else np.zeros(0, np.int64)
    counts = np.diff(np.append(first, len(lengths)))
    starts: list[np.ndarray] = []
    open_size = 0  # pairs in the batch still open when the run begins
    for length, at, count in zip(lengths[first].tolist(), first.tolist(), counts.tolist()):
        cap = max(1, max_tokens // max(length, 1))
        join = min(count, max(cap - open_size, 0)) if open_size else 0  # into the open batch
        rest = count - join
        if rest:
            begin = np.arange(at + join, at + count, cap)
            starts.append(begin)
            open_size = at + count - int(begin[-1])
        else:
            open_size += join
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


def _compact(lengths: np.ndarray) -> np.ndarray:
    """uint16 where lengths fit: numpy's stable argsort is then a radix sort, O(n)."""
    return lengths.astype(np.uint16) if len(lengths) and 0 <= lengths.min() and lengths.max() < 2**16 else lengths


def token_budget_batches(src_lens: ArrayLike, tgt_lens: ArrayLike, max_tokens: int,
                         *, shuffle: bool, seed: int) -> list[np.ndarray]:
    """Indices (int64 arrays) grouped so that ``batch_size * longest side <= max_tokens``
    (a longer pair goes alone), each index exactly once.

    Sorting by length buckets similar lengths together (fairseq's ``--max-tokens``);
    shuffled, pairs of equal length are drawn in random order and the batch order is
    permuted, all from ``numpy.random.default_rng(seed)``: the same seed, the same batches.
    Cost: O(n) (a stable radix sort of small integers) plus O(#batches)."""
    longest = _compact(np.maximum(np.asarray(src_lens), np.asarray(tgt_lens)))
    if shuffle:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(longest))
        order = perm[np.argsort(longest[perm], kind="stable")]
    else:
        order = np.lexsort((np.asarray(src_lens), longest))
    batches = np.split(order, _batch_starts(longest[order], max_tokens)[1:])
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class TokenBudgetSampler(Sampler[list[int]]):
    """Token-budget batches, reshuffled each epoch (``set_epoch``, which Lightning calls);
    with ``world > 1`` (DDP) rank ``rank`` takes every ``world``-th batch, all ranks the
    same number of them.

    ``resume(epoch, consumed)``: the next iteration is epoch ``epoch`` without its first
    ``consumed`` batches (this rank's), which an interrupted run trained already; the
    length stays the epoch's, as Lightning counts the consumed ones itself."""

    def __init__(self, src_lens: ArrayLike, tgt_lens: ArrayLike, max_tokens: int,
                 shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1, rows: np.ndarray | None = None):
        self.src_lens, self.tgt_lens = np.asarray(src_lens), np.asarray(tgt_lens)
        self.rows = rows  # the dataset's row of each length given; None: row i is length i
        self.max_tokens, self.shuffle, self.seed, self.epoch = max_tokens, shuffle, seed, 0
        self.rank, self.world, self.skip = rank, world, 0
        # the count depends only on the sorted lengths, the same for every shuffle
        self._len = len(_batch_starts(np.sort(_compact(np.maximum(self.src_lens, self.tgt_lens))), max_tokens)) // world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, consumed: int) -> None:
        self.epoch, self.skip = (epoch + 1, 0) if consumed >= self._len else (epoch, consumed)

    def __iter__(self) -> Iterator[list[int]]:
        batches = token_budget_batches(self.src_lens, self.tgt_lens, self.max_tokens,
                                       shuffle=self.shuffle, seed=self.seed + self.epoch)
        mine, self.skip = batches[self.rank::self.world][self.skip: self._len], 0
        return ((b if self.rows is None else self.rows[b]).tolist() for b in mine)

    def __len__(self) -> int:
        return self._len


def collate(rows: list[dict], limit: int | None = None) -> dict[str, Tensor | list[str]]:
    """src (B, S); tgt_in = BOS y (B, T); tgt_out = y EOS (B, T); masks True at real tokens.
    ``limit``: tokens a side keeps (EOS or BOS takes one more position); the reference
    text ``ref`` stays whole."""
    src = pad([r["src_ids"][:limit] + [EOS_ID] for r in rows])
    tgt_in = pad([[BOS_ID] + r["tgt_ids"][:limit] for r in rows])
    tgt_out = pad([r["tgt_ids"][:limit] + [EOS_ID] for r in rows])
    return {"src": src, "src_mask": src != PAD_ID, "tgt_in": tgt_in, "tgt_out": tgt_out,
            "ref": [r["tgt"] for r in rows], "idx": [r["idx"] for r in rows]}


def _column(d: Any, name: str) -> np.ndarray:
    """A numeric column as one numpy array, read through Arrow: never a Python list."""
    return d.with_format("arrow")[name].to_numpy()


class TranslationDataModule(pl.LightningDataModule):
    def __init__(self, data_dir: str | Path, *, max_tokens: int, eval_max_tokens: int | None = None,
                 train_limit: int | None = None, val_limit: int | None = None, seed: int = 0,
                 num_workers: int = 0, max_positions: int | None = None):
        super().__init__()
        self.data_dir, self.max_tokens, self.seed = Path(data_dir), max_tokens, seed
        # tokens a side may keep: BOS/EOS take the last of the model's positions
        self.limit = None if max_positions is None else max_positions - 1
        self.dropped: dict[str, int] = {}  # training pairs left out because they exceed the limit
        self.eval_max_tokens = eval_max_tokens or max_tokens * 2
        self.train_limit, self.val_limit, self.num_workers = train_limit, val_limit, num_workers
        self.ds: DatasetDict | None = None
        self._resume: dict[str, int] | None = None  # from a checkpoint: where the epoch stopped

    def state_dict(self) -> dict[str, Any]:
        """Saved in every checkpoint (Lightning calls it): the training epoch and how many of
        its batches (per rank) were trained, so a resumed run goes on from the next one."""
        trainer = self.trainer
        if trainer is None:
            return {}
        consumed = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        batches = trainer.num_training_batches
        return {"epoch": trainer.current_epoch, "consumed": consumed, "seed": self.seed,
                "batches": int(batches) if batches != float("inf") else -1}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called by Lightning when resuming, before the train dataloader is built."""
        self._resume = dict(state) if state else None

    def setup(self, stage: str | None = None) -> None:
        if self.ds is None:
            ds = load_from_disk(str(self.data_dir))
            if self.train_limit:
                ds["train"] = ds["train"].select(range(min(self.train_limit, len(ds["train"]))))
            if self.val_limit:
                ds["val"] = ds["val"].select(range(min(self.val_limit, len(ds["val"]))))
            self.ds = ds

    def _lengths(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Each pair's side lengths as the model sees them (+ EOS/BOS) and, for training with a
        limit, the rows that fit it (the others dropped, counted and logged); else None."""
        d = self.ds[split]
        src, tgt = _column(d, "src_len"), _column(d, "tgt_len")
        if self.limit is None:
            return src + 1, tgt + 1, None
        if split != "train":  # cut to fit in collate
            return np.minimum(src, self.limit) + 1, np.minimum(tgt, self.limit) + 1, None
        fits = np.maximum(src, tgt) <= self.limit
        if fits.all():
            return src + 1, tgt + 1, None
        rows = np.flatnonzero(fits)
        self.dropped["train"] = len(src) - len(rows)
        if not len(rows):
            raise DataError(f"every training pair is longer than the model's {self.limit + 1} positions "
                            f"(model.max_positions); raise it, or prepare with data.max_tokens below {self.limit + 1}")
        log.warning("train: %d training pairs have a side over %d tokens, more than the model's positions "
                    "(model.max_positions=%d) hold; left out (prepare with data.max_tokens=%d to drop them there)",
                    self.dropped["train"], self.limit, self.limit + 1, self.limit)
        return src[rows] + 1, tgt[rows] + 1, rows

    def _loader(self, split: str, shuffle: bool, max_tokens: int) -> DataLoader:
        assert self.ds is not None, "call setup() first"
        d = self.ds[split]
        trainer = self.trainer  # None outside a Trainer
        shard = (trainer.global_rank, trainer.world_size) if trainer is not None and split == "train" else (0, 1)
        src_lens, tgt_lens, rows = self._lengths(split)
        sampler = TokenBudgetSampler(src_lens, tgt_lens, max_tokens, shuffle=shuffle, seed=self.seed,
                                     rank=shard[0], world=shard[1], rows=rows)
        if split == "train" and self._resume:
            if self._resume.get("seed", self.seed) != self.seed:
                raise ValueError(f"the checkpoint's batches were drawn with trainer.seed={self._resume['seed']}, "
                                 f"this run has {self.seed}: resume with the same seed")
            sampler.resume(int(self._resume["epoch"]), int(self._resume["consumed"]))
            self._resume = None
        return DataLoader(d.with_format(None, columns=["idx", "src_ids", "tgt_ids", "tgt"]),
                          batch_sampler=sampler, collate_fn=functools.partial(collate, limit=self.limit),
                          num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.max_tokens)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_max_tokens)

    def split_loader(self, split: str) -> DataLoader:
        return self._loader(split, False, self.eval_max_tokens)
