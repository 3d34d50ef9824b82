"""Gradient saliency: which source tokens a translation depends on, for models that have
no attention to show (the plain Seq2Seq squeezes the source into one vector).

Row t of the map is ``|| d log p(y_t | y_<t, x) / d e(x_s) ||_2`` over the source
embeddings e(x_s), normalised to sum to 1 like an attention row (gradient saliency:
Simonyan et al. 2014; for NMT, Ding et al. 2019). It says what the output is sensitive
to, not where the model "looks": a different quantity from the attention alpha_ij.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.components.models.base import Seq2SeqModel


def saliency(model: Seq2SeqModel, src: Tensor, src_mask: Tensor, tgt: Tensor) -> Tensor:
    """One sentence: src, src_mask (1, S), tgt (1, T) the tokens after BOS (EOS included).
    Returns (T, S): each row sums to 1 over the real source tokens, 0 on padding."""
    assert src.shape[0] == 1 and tgt.shape[0] == 1, "one sentence at a time"
    captured: list[Tensor] = []

    def keep_first(module: torch.nn.Module, args: tuple, out: Tensor) -> None:
        if not captured:  # encode() embeds the source first; a shared table embeds targets later
            captured.append(out)

    bos = torch.full_like(tgt[:, :1], model.bos_id)
    tgt_in = torch.cat([bos, tgt[:, :-1]], dim=1)  # (1, T): teacher-forced on the given target
    handle = model.src_emb.register_forward_hook(keep_first)
    was_training = model.training
    model.eval()
    try:
        # cuDNN computes RNN gradients in training mode only; the plain kernels work in eval
        with torch.inference_mode(False), torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            logits, _ = model(src, src_mask, tgt_in)  # (1, T, V)
            logp = logits.float().log_softmax(-1)[0].gather(1, tgt[0].unsqueeze(1)).squeeze(1)  # (T,)
            emb = captured[0]  # (1, S, E)
            rows = [torch.autograd.grad(logp[t], emb, retain_graph=t + 1 < len(logp))[0][0].norm(dim=-1)
                    for t in range(len(logp))]  # each (S,)
    finally:
        handle.remove()
        model.train(was_training)
    sal = torch.stack(rows) * src_mask[0].float()  # (T, S)
    return sal / sal.sum(-1, keepdim=True).clamp_min(1e-12)
