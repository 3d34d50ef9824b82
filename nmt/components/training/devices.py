"""Where models run and in what precision: the GPU when one is visible, else the CPU;
bf16 only where the hardware computes it natively; a readable device label for run tags
(``nmt.device``), so a run says what it ran on; and, for CPU training, the C allocator
(:func:`keep_freed_memory`)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

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


# The C allocator under CPU training: freed tensors' memory kept for the next step.
#
# A training step allocates and frees the same large buffers every time (activations, the
# logits and their gradient: tens of MB for the tiny Transformer's 8k vocabulary). glibc serves
# a block above its mmap threshold (which grows to at most 32 MiB) with ``mmap`` and returns it
# to the kernel on ``free``, so the next step faults the same pages in again, zeroed. Measured
# on 2 cores of a Zen 4 EPYC (BENCHMARKS.md, "The allocator"): a quarter of each step's CPU time
# was that system time. With ``mmap`` off (``M_MMAP_MAX`` 0) and a high trim threshold, large
# blocks come from the heap and stay there: the steps' system time goes to ~0, at the price of
# a resident size that keeps the step's peak (here about +0.4 GB). ``mallopt`` acts on later
# allocations, so a process calls this once training begins (prepare's streaming, which must
# stay flat in memory, is done by then). Linux glibc only; elsewhere nothing changes.
log = logging.getLogger("nmt")
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4   # glibc's <malloc.h>
TRIM_BYTES = 1 << 30     # the heap top is given back only beyond 1 GiB free
TOP_PAD_BYTES = 64 << 20  # grow the heap in 64 MiB steps, not page by page
_applied = False


def keep_freed_memory() -> bool:
    """Turn glibc's ``mmap`` of large blocks off for this process (once). Returns whether
    the settings are in place."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    ok = all(mallopt(param, value) == 1 for param, value in
             ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_BYTES), (M_TOP_PAD, TOP_PAD_BYTES)))
    if not ok:
        log.debug("mallopt refused a setting: glibc's defaults stay")
    _applied = ok
    return ok
