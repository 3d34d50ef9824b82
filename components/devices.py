"""Where models run: the GPU when one is visible, else the CPU; and a readable label of
a device for run tags (``nmt.device``), so a run says what it ran on."""

from __future__ import annotations

import torch


def inference_device() -> torch.device:
    """Decoding (evaluate, translate, serve) uses the first GPU when one is visible."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device: torch.device | str) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
