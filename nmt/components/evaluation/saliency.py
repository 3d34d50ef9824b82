"""Gradient saliency: which source tokens a translation depends on, for models that have
no attention to show (the plain Seq2Seq squeezes the source into one vector).

Row t of the map is ``|| d log p(y_t | y_<t, x) / d e(x_s) ||_2`` over the source
embeddings e(x_s), normalised to sum to 1 like an attention row (gradient saliency:
Simonyan et al. 2014; for NMT, Ding et al. 2019). It says what the output is sensitive
to, not where the model "looks": a different quantity from the attention alpha_ij.

Batched, with one backward pass per target position for the whole batch, each as short as
it can be:

* Sentences do not mix. In eval mode no sentence's output depends on another's source (no
  batch statistics; padding is packed away or masked), so the gradient of
  ``sum_b log p(y_bt)`` with respect to sentence b's embeddings is that of ``log p(y_bt)``.
* The vocabulary is crossed once, not T times. ``log p(y_bt)`` depends on the logits of
  position (b, t) alone, so one backward of ``sum log p`` gives every position's
  ``g_bt = d log p(y_bt) / d z_bt``. When the logits are one position-wise linear layer
  z = W x + b (the Seq2Seq's ``out``, the Transformer's ``generator``), ``W^T g_bt`` is then
  taken once too, and the T passes start from x, below the (B, T, V) logits: the output
  layer was ~90% of each pass's time at V = 8000.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.components.models.base import Seq2SeqModel


def saliency(model: Seq2SeqModel, src: Tensor, src_mask: Tensor, tgt: Tensor) -> Tensor:
    """src, src_mask (B, S); tgt (B, T) the tokens after BOS (EOS included where the
    sentence has one), PAD after each sentence's last token.
    Returns (B, T, S): each row of a real target token sums to 1 over the real source
    tokens, 0 on padding; rows of PAD targets are 0."""
    captured: list[Tensor] = []
    linear_calls: list[tuple[Tensor, Tensor]] = []  # (input, output) of every nn.Linear call

    def keep_first(module: nn.Module, args: tuple, out: Tensor) -> None:
        if not captured:  # encode() embeds the source first; a shared table embeds targets later
            captured.append(out)

    def keep_linear(module: nn.Module, args: tuple, out: Tensor) -> None:
        linear_calls.append((args[0], out))

    bos = torch.full_like(tgt[:, :1], model.bos_id)
    tgt_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T): teacher-forced on the given target
    real = tgt != model.pad_id  # (B, T)
    handles = [model.src_emb.register_forward_hook(keep_first)]
    handles += [m.register_forward_hook(keep_linear) for m in model.modules() if isinstance(m, nn.Linear)]
    was_training = model.training
    model.eval()  # no dropout: the map is deterministic, and sentences stay independent (above)
    try:
        # cuDNN computes RNN gradients in training mode only; the plain kernels work in eval
        with torch.inference_mode(False), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            logits, _ = model(src, src_mask, tgt_in)  # (B, T, V)
            logp = logits.float().log_softmax(-1).gather(2, tgt.unsqueeze(2)).squeeze(2)  # (B, T)
            emb = captured[0]  # (B, S, E)
            g = torch.autograd.grad(logp.sum(), logits, retain_graph=True)[0]  # (B, T, V): g_bt
            start, grad = logits, g
            x = next((i for i, o in linear_calls if o is logits), None)  # z = W x + b, if one layer made z
            if x is not None:
                start, grad = x, torch.autograd.grad(logits, x, g, retain_graph=True)[0]  # (B, T, D): W^T g_bt
            T = tgt.shape[1]
            at = torch.arange(T, device=tgt.device)
            rows = [torch.autograd.grad(start, emb, grad * (at == t).view(1, T, 1), retain_graph=t + 1 < T)[0]
                    .norm(dim=-1) for t in range(T)]  # each (B, S): sentence b's gradient in row b
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    sal = torch.stack(rows, dim=1) * src_mask[:, None, :].float() * real[:, :, None].float()  # (B, T, S)
    return sal / sal.sum(-1, keepdim=True).clamp_min(1e-12)
