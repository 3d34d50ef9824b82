"""Where models run and in what precision: the GPU when one is visible, else the CPU;
bf16 only where the hardware computes it natively; a readable device label for run tags
(``nmt.device``), so a run says what it ran on."""

from __future__ import annotations

import torch


def inference_device() -> torch.device:
    """Decoding (evaluate, translate, serve) uses the first GPU when one is visible."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_of(model: torch.nn.Module) -> torch.device:
    """Where a model's parameters are: inputs are moved there before decoding."""
    return next(model.parameters()).device


def describe(device: torch.device | str) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def native_bf16(accelerator: str) -> bool:
    """bf16 matmuls in hardware: a GPU that supports them (Ampere and later), or a CPU
    with AMX or AVX512-BF16. Elsewhere torch emulates bf16 on the CPU, ~150x slower than
    fp32 (seen on an AVX2-only AMD EPYC: a 2048x512x2048 matmul took 12.4 s vs 0.08 s)."""
    if accelerator == "gpu":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto``: bf16-mixed where bf16 is native, else fp16 mixed on a GPU, else 32."""
    if precision != "auto":
        return precision
    if native_bf16(accelerator):
        return "bf16-mixed"
    return "16-mixed" if accelerator == "gpu" else "32"
