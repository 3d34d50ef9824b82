"""Checkpoint averaging: the parameter-wise mean of k checkpoints of one run.

Vaswani et al. 2017 (sec. 6.1) average the last 5 checkpoints of their base models; Wu et
al. 2021 average the last 10 on Multi30k. The mean of nearby points of one SGD trajectory
sits nearer the centre of the basin than any of them (Izmailov et al. 2018).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor


def average_state_dicts(states: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """theta_avg = (1/k) sum_i theta_i for every floating-point tensor; integer buffers
    (counters, ids) are not averaged: the newest (last) state's are kept."""
    if not states:
        raise ValueError("no checkpoints to average")
    keys = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if list(s) != keys:
            raise ValueError(f"checkpoint {i} has other parameters than checkpoint 0; average one run's only")
    out: dict[str, Tensor] = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point():
            out[k] = torch.stack([s[k].double() for s in states]).mean(0).to(first.dtype)
        else:
            out[k] = states[-1][k].clone()
    return out


def average_checkpoints(paths: list[Path], out: Path) -> Path:
    """Lightning checkpoints ``paths`` (oldest first) -> one checkpoint at ``out``: the newest
    with its ``state_dict`` replaced by the mean, and the files it came from recorded."""
    ckpts = [torch.load(p, map_location="cpu", weights_only=True) for p in paths]  # tensors and plain data only
    merged = ckpts[-1]
    merged["state_dict"] = average_state_dicts([c["state_dict"] for c in ckpts])
    merged["averaged_from"] = [Path(p).name for p in paths]
    torch.save(merged, out)
    return out
