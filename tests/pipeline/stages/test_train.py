"""The Lightning wrapper trains a real (tiny) GRU Seq2Seq on real Multi30k pairs."""

import pytorch_lightning as pl
import torch

from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.components.training.lit_module import TranslationModule, lr_lambda
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.prepare import build_dataset
from nmt.components.models.factory import build
from nmt.pipeline.trained import model_spec


def test_inverse_sqrt_schedule_peaks_at_warmup():
    f = lr_lambda("inverse_sqrt", 100)
    assert f(0) == 0.01 and abs(f(99) - 1.0) < 1e-9
    assert abs(f(399) - 0.5) < 1e-9  # 1/sqrt(4) at 4x the warmup
    assert lr_lambda("constant", 0)(1234) == 1.0


def test_tiny_gru_overfits_32_pairs(tmp_path, nmt_home):
    cfg = load_config(["data.train_limit=32", "data.val_limit=8", "data.test_limit=4", "data.vocab_size=200",
                       "model=gru", "model.emb_dim=32", "model.hidden_dim=64", "model.dropout=0.0",
                       "model.teacher_forcing=1.0", "optim.lr=0.01", "trainer.precision=32"])
    built = build_dataset(cfg, tmp_path / "work")
    dsd, src_tok, tgt_tok, stats = built.data, built.src_tok, built.tgt_tok, built.stats
    assert stats["train/pairs"] == 32 and stats["val/pairs"] == 8
    dsd.save_to_disk(str(tmp_path / "data"))
    codec = TextCodec(src_tok, tgt_tok)
    pl.seed_everything(0)
    model = build(model_spec(cfg, codec))
    module = TranslationModule(model, optim=cfg.optim, detokenize=None)
    dm = TranslationDataModule(tmp_path / "data", max_tokens=2048)
    trainer = pl.Trainer(max_epochs=80, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         accelerator="cpu", gradient_clip_val=1.0)
    trainer.fit(module, datamodule=dm)
    final = trainer.callback_metrics["train/loss_epoch"].item()
    assert final < 0.3, f"loss {final:.3f} did not fall below 0.3 on 32 pairs"
    # and it memorised them: teacher-forced argmax reproduces the training targets
    batch = next(iter(dm.train_dataloader()))
    with torch.no_grad():
        pred = module(batch["src"], batch["src_mask"], batch["tgt_in"]).argmax(-1)
    real = batch["tgt_out"] != 0
    assert (pred[real] == batch["tgt_out"][real]).float().mean() > 0.9
