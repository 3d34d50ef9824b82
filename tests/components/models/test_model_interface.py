"""The abstract :class:`Seq2SeqModel` is the whole contract: a model written to exactly its
signatures, and nothing more (the README's throwaway architecture, ``MeanPool``), trains
through the real LightningModule and Trainer."""

from __future__ import annotations

import inspect

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from nmt.components.training.lit_module import TranslationModule
from nmt.components.models.base import Seq2SeqModel, Vocabulary
from nmt.pipeline.config import load_config
from tests.components.models.test_new_architecture import MeanPool, MeanPoolConfig

SRC_V, TGT_V, EMB, HID, B, S, T = 19, 23, 6, 10, 4, 7, 5  # distinct, so a transposed dim cannot pass
PAD, BOS, EOS = 0, 1, 2


def _batches(n: int) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        src = torch.randint(3, SRC_V, (B, S), generator=g)
        src[1, 4:] = PAD                                              # one padded row
        tgt = torch.randint(3, TGT_V, (B, T + 1), generator=g)
        tgt[:, 0] = BOS
        out.append({"src": src, "src_mask": src != PAD, "tgt_in": tgt[:, :-1], "tgt_out": tgt[:, 1:]})
    return out


def test_the_models_signatures_are_the_abstract_ones():
    for name in ("encode", "init_state", "decode_step", "forward"):
        assert inspect.signature(getattr(MeanPool, name)) == inspect.signature(getattr(Seq2SeqModel, name)), name


def test_a_model_written_to_the_interface_trains(tmp_path):
    torch.manual_seed(0)
    model = MeanPool(MeanPoolConfig(emb_dim=EMB, hidden_dim=HID), Vocabulary(SRC_V, TGT_V, PAD, BOS, EOS))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module = TranslationModule(model, optim=load_config(["optim.lr=0.01"]).optim, fused_adam=False)
    loader = DataLoader(_batches(3), batch_size=None)
    trainer = pl.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         default_root_dir=str(tmp_path))
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    assert trainer.global_step == 3
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert {"cell.weight_ih", "init.weight", "out.weight", "src_emb.weight"} <= set(changed)
