"""Token ids to padded tensors, as training sees them. Torch only: serving builds its batches
here without importing Lightning or ``datasets`` (seconds of ``nmt translate``'s start-up)."""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.components.data.tokenizer import EOS_ID, PAD_ID


def pad(seqs: list[list[int]]) -> Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def source_batch(codec_src_ids: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Raw source ids -> (src (B, S), src_mask) exactly as training sees them (EOS added)."""
    src = pad([ids + [EOS_ID] for ids in codec_src_ids])
    return src, src != PAD_ID
