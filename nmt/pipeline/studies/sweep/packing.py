"""Many trials on one GPU: how much memory a trial needs, and a guard that refuses a packing
that cannot fit, naming the figures, before any trial starts.

A trial's need is its measured peak (``sweep.resources.trial_memory_mb``, e.g. a run's
``gpu/peak_mem_mb``) or an estimate: the CUDA context, fp32 weights with their gradients
and Adam's two moments (16 bytes a parameter), and activations, which grow with the token
budget of a batch, the width and the depth, plus the logits over the vocabulary.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from nmt.components.system.errors import ConfigError

log = logging.getLogger("nmt")

CUDA_CONTEXT_MB = 500.0        # per process: the CUDA context and the caching allocator's slack
BYTES_PER_PARAM = 16           # fp32 weight + gradient + Adam exp_avg + exp_avg_sq
ACTIVATION_BYTES = 40          # per token, per model dimension, per layer (saved for backward)
LOGIT_BYTES = 12               # per token and vocabulary entry: logits, log-softmax and their gradient


@dataclass(frozen=True)
class TrialMemory:
    mb: float
    how: str   # "measured" or "estimated (...)"


def estimate_trial_mb(params: int, batch_tokens: int, width: int, layers: int, vocab: int) -> float:
    act = batch_tokens * (ACTIVATION_BYTES * width * layers + LOGIT_BYTES * vocab)
    return CUDA_CONTEXT_MB + (params * BYTES_PER_PARAM + act) / 2**20


def trial_memory(measured_mb: float | None, params: int, batch_tokens: int, width: int, layers: int,
                 vocab: int) -> TrialMemory:
    if measured_mb:
        return TrialMemory(float(measured_mb), "measured")
    return TrialMemory(estimate_trial_mb(params, batch_tokens, width, layers, vocab),
                       f"estimated: {params / 1e6:.1f}M parameters, {batch_tokens}-token batches")


def check_packing(per_trial_gpu: float, need: TrialMemory, gpu_mb: float, gpu_name: str = "GPU") -> int:
    """-> trials per GPU; ConfigError when that many trials' memory exceeds the card's."""
    if per_trial_gpu <= 0 or per_trial_gpu >= 1:
        return 1
    per_gpu = math.floor(1 / per_trial_gpu + 1e-9)
    total = per_gpu * need.mb
    if total > gpu_mb:
        fits = max(1, int(gpu_mb // need.mb))
        raise ConfigError(
            f"sweep.resources: {per_gpu} trials per GPU x {need.mb:,.0f} MB each ({need.how}) = {total:,.0f} MB, "
            f"more than the {gpu_mb:,.0f} MB of the {gpu_name}; pack at most {fits} "
            f"(sweep.resources.trials_per_gpu={fits}), or give a measured sweep.resources.trial_memory_mb")
    return per_gpu


def _shape(model: Any) -> tuple[int, int]:
    """(width, layers) of a model config, whatever its architecture (an estimate's inputs:
    the widest recurrent or model dimension, and encoder + decoder layers)."""
    width = getattr(model, "d_model", 0) or getattr(model, "dec_hidden_dim", 0) or getattr(model, "hidden_dim", 0) or 512
    layers = (getattr(model, "num_encoder_layers", 0) + getattr(model, "num_decoder_layers", 0)
              or 2 * getattr(model, "num_layers", 1))
    return int(width), int(layers)


def need_for(cfg: Any) -> TrialMemory:
    """A trial's GPU memory for this config (vocabulary at data.vocab_size, joint)."""
    from nmt.components.models.base import Vocabulary
    from nmt.components.models.factory import ModelSpec, build
    v = cfg.data.vocab_size
    model = build(ModelSpec(cfg.model, Vocabulary(v, v, 0, 1, 2, cfg.data.joint_vocab)))
    width, layers = _shape(cfg.model)
    return trial_memory(cfg.sweep.resources.trial_memory_mb, model.num_parameters(), cfg.trainer.batch_tokens,
                        width, layers, v)


def guard_packing(cfg: Any, trial_cfgs: list[Any]) -> None:
    """Before Ray starts: refuse a GPU packing whose largest trial would not fit the card seen here."""
    import torch
    share = cfg.sweep.resources.per_trial_gpu
    if not 0 < share < 1:
        return
    if not torch.cuda.is_available():
        log.info("sweep: no GPU visible to the driver, the packing of %g GPU per trial is not checked", share)
        return
    need = max((need_for(c) for c in trial_cfgs or [cfg]), key=lambda m: m.mb)
    props = torch.cuda.get_device_properties(0)
    check_packing(share, need, props.total_memory / 2**20, props.name)
