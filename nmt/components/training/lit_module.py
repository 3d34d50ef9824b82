"""The LightningModule: a thin wrapper around any :class:`Seq2SeqModel`, one shared step;
and checkpoint averaging (:func:`average_checkpoints`).

Metric keys: ``train/loss``, ``val/loss``, ``val/bleu`` (greedy, sacreBLEU on a val
subset, tokenized for the target language; chrF where the language has no tokenizer:
:func:`~nmt.components.evaluation.scoring.choose_metric`), ``val/bleu_best``, ``train/lr``,
``train/tokens_per_s``, ``train/tokens_seen`` (target tokens trained on so far, all ranks: the x axis of compute
curves); on a GPU also ``gpu/peak_mem_mb`` (peak allocated memory so far).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from nmt.components.tracking import names as N
from nmt.components.decoding import LEN_RATIO
from nmt.components.decoding.search import greedy_in_batches
from nmt.components.evaluation.scoring import MetricChoice, selection_score
from nmt.components.models.base import Seq2SeqModel
from nmt.components.training.callbacks import budget_progress


def lr_lambda(schedule: str, warmup_steps: int, cooldown: float = 0.0,
              progress: Callable[[], float] = lambda: 0.0) -> Callable[[int], float]:
    """Multiplier on the peak lr. ``inverse_sqrt``: Vaswani et al. 2017, eq. 3, rescaled so
    that the peak (at ``warmup_steps``) is exactly ``lr``. Over the last ``cooldown`` of the
    budget (``progress()``: the fraction spent, 0..1) it falls linearly to 0: Hagele et al.
    2024's cooldown, which a run cut by a budget otherwise never gets (Li et al. 2020)."""
    def f(step: int) -> float:
        s = step + 1
        warm = min(1.0, s / warmup_steps) if warmup_steps > 0 else 1.0
        rate = warm
        if schedule == "inverse_sqrt" and s > max(warmup_steps, 1):
            rate = math.sqrt(max(warmup_steps, 1) / s)
        if cooldown > 0 and step > 0:  # step 0: the scheduler's own first call, before the trainer runs
            rate *= min(1.0, max(0.0, 1.0 - progress()) / cooldown)
        return rate
    return f


class TranslationModule(pl.LightningModule):
    """Trains any :class:`Seq2SeqModel` on teacher-forced cross-entropy (label smoothing in
    training only) with Adam and the configured schedule; validation adds greedy BLEU on the
    first ``val_bleu_limit`` sentences, which early stopping and checkpointing follow."""

    def __init__(self, model: Seq2SeqModel, *, optim: Any, detokenize: Callable[[list[list[int]]], list[str]] | None = None,
                 val_bleu_limit: int = 500, max_len_ratio: float = LEN_RATIO, grad_clip: float | None = None,
                 fused_adam: bool = True, metric: MetricChoice = MetricChoice()):
        super().__init__()
        self.metric = metric  # what val/bleu scores: BLEU with the target's tokenizer, or chrF
        self.grad_clip, self.fused_adam = grad_clip, fused_adam
        self.model = model
        self.optim = optim
        self.detokenize = detokenize
        self.val_bleu_limit = val_bleu_limit
        self.max_len_ratio = max_len_ratio
        self._hyps: list[tuple[int, list[int], str]] = []  # (idx, source ids, reference)
        self._tick: float | None = None
        self.best_bleu = float("-inf")
        self.tokens_seen = 0

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor) -> Tensor:
        return self.model(src, src_mask, tgt_in, need_weights=False)[0]

    def shared_step(self, batch: dict, stage: str) -> Tensor:
        logits = self(batch["src"], batch["src_mask"], batch["tgt_in"])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["tgt_out"].flatten(),
                               ignore_index=self.model.pad_id,
                               label_smoothing=self.optim.label_smoothing if stage == "train" else 0.0)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=batch["src"].size(0),
                 on_step=stage == "train", on_epoch=True)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.shared_step(batch, "train")
        now = time.perf_counter()
        ntok = (batch["tgt_out"] != self.model.pad_id).sum().item()
        self.tokens_seen += ntok * self.trainer.world_size  # ranks' batches hold about equal tokens
        self.log(N.TOKENS_SEEN, float(self.tokens_seen), on_step=True, on_epoch=False)
        if self._tick is not None:  # target tokens per second between consecutive steps
            self.log(N.TOKENS_PER_S, ntok / max(now - self._tick, 1e-9), on_step=True, on_epoch=False)
        self._tick = now
        self.log(N.TRAIN_LR, self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_start(self) -> None:
        self._tick = None

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.shared_step(batch, "val")
        if self.detokenize is None:
            return
        # the fixed BLEU subset (the first val_bleu_limit sentences) is decoded at the epoch's
        # end in a few length-sorted batches, not here in one small batch per loader batch
        src, mask = batch["src"].cpu(), batch["src_mask"].cpu()
        for i, idx in enumerate(batch["idx"]):
            if idx < self.val_bleu_limit:
                self._hyps.append((idx, src[i, mask[i]].tolist(), batch["ref"][i]))

    def on_validation_epoch_end(self) -> None:
        if not self._hyps:
            return
        self._hyps.sort()
        with self.trainer.precision_plugin.forward_context():  # as the steps: bf16 where they are
            ids = greedy_in_batches(self.model, [src for _, src, _ in self._hyps], max_len_ratio=self.max_len_ratio)
        bleu = selection_score(self.detokenize(ids), [r for _, _, r in self._hyps], self.metric)
        self._hyps = []
        if not self.trainer.sanity_checking:
            self.best_bleu = max(self.best_bleu, bleu)
        self.log(N.VAL_BLEU, bleu, prog_bar=True)
        self.log(N.VAL_BLEU_BEST, max(self.best_bleu, bleu))
        if self.device.type == "cuda":  # the peak a trial reached: what sizes a fractional GPU share
            self.log(N.GPU_PEAK_MEM, torch.cuda.max_memory_allocated(self.device) / 2**20)

    def configure_optimizers(self) -> Any:
        o = self.optim
        # fused: one kernel for all parameters, ~5x faster steps than the default loop on CPU
        opt = torch.optim.Adam(self.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay,
                               fused=self.fused_adam)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lr_lambda(o.schedule, o.warmup_steps, o.cooldown, lambda: budget_progress(self.trainer)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Clipping here, not through Trainer(gradient_clip_val): Lightning refuses that
        # with a fused optimizer under mixed precision, although bf16 needs no unscaling.
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.parameters(), self.grad_clip)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["best_bleu"] = self.best_bleu
        checkpoint["tokens_seen"] = self.tokens_seen  # a resumed run's curve goes on, not from 0

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.best_bleu = checkpoint.get("best_bleu", float("-inf"))
        self.tokens_seen = checkpoint.get("tokens_seen", 0)


# Checkpoint averaging: the parameter-wise mean of k checkpoints of one run.
#
# Vaswani et al. 2017 (sec. 6.1) average the last 5 checkpoints of their base models; Wu et
# al. 2021 average the last 10 on Multi30k. The mean of nearby points of one SGD trajectory
# sits nearer the centre of the basin than any of them (Izmailov et al. 2018).


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
