"""Adding an architecture takes what the README says: one model file, one YAML and one
registry line. A throwaway one, added that way, goes through train, evaluate and decode."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import Tensor, nn

from nmt.components.decoding.search import translate_ids
from nmt.components.models import factory
from nmt.components.models.base import Seq2SeqModel, State, Vocabulary, unroll
from nmt.components.models.arch_configs import ArchConfig, check_config
from nmt.pipeline.cli import main
from nmt.components.tracking.store import RunStore
from nmt.pipeline.trained import trained_model
from tests.conftest import TINY


# -- the model file -------------------------------------------------------------------------
@dataclass(frozen=True)
class MeanPoolConfig(ArchConfig):
    arch: ClassVar[str] = "meanpool_test"
    emb_dim: int = 16
    hidden_dim: int = 24

    def validate(self, prefix: str) -> None:
        check_config(prefix, {"hidden_dim": (self.hidden_dim > 0, "must be > 0")})


class MeanPool(Seq2SeqModel):
    """The source's mean embedding starts a GRU-cell decoder: the smallest honest model."""

    def __init__(self, cfg: MeanPoolConfig, vocab: Vocabulary) -> None:
        super().__init__(vocab)
        self.cfg = cfg
        self.src_emb = nn.Embedding(vocab.src_size, cfg.emb_dim, padding_idx=vocab.pad_id)
        self.tgt_emb = nn.Embedding(vocab.tgt_size, cfg.emb_dim, padding_idx=vocab.pad_id)
        self.init = nn.Linear(cfg.emb_dim, cfg.hidden_dim)
        self.cell = nn.GRUCell(cfg.emb_dim, cfg.hidden_dim)
        self.out = nn.Linear(cfg.hidden_dim, vocab.tgt_size)

    def encode(self, src: Tensor, src_mask: Tensor) -> State:
        m = src_mask.unsqueeze(-1).float()
        return (self.src_emb(src) * m).sum(1) / m.sum(1).clamp(min=1)  # (B, E)

    def init_state(self, memory: State, src_mask: Tensor) -> State:
        return {"hidden": torch.tanh(self.init(memory))}

    def decode_step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        h = self.cell(self.tgt_emb(tokens), state["hidden"])
        return self.out(h), {"hidden": h}, h.new_empty(tokens.shape[0], 0)

    def forward(self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, *, need_weights: bool = True
                ) -> tuple[Tensor, Tensor]:
        return unroll(self, self.init_state(self.encode(src, src_mask), src_mask), tgt_in, 1.0)


@pytest.fixture
def meanpool(nmt_home, conf_copy):
    """The YAML (in a copy of ``conf/``) and the registry line; both taken back afterwards."""
    name = f"meanpool_test_{uuid.uuid4().hex[:6]}"
    yaml = conf_copy / "model" / f"{name}.yaml"
    yaml.write_text("arch: meanpool_test\nemb_dim: 16\nhidden_dim: 24\n")
    factory.register(MeanPoolConfig, MeanPool)  # the one registry line
    try:
        yield name
    finally:
        yaml.unlink()
        factory.ARCHITECTURES.pop(MeanPoolConfig.arch)


@pytest.mark.slow
def test_a_registered_architecture_trains_evaluates_and_decodes(meanpool):
    data = [o for o in TINY if not o.startswith("model")]
    assert main(["evaluate", *data, f"model={meanpool}", "trainer.max_epochs=2"]) == 0
    client = MlflowClient()
    runs = {r.data.tags.get("nmt.stage"): r for r in
            client.search_runs([client.get_experiment_by_name("nmt").experiment_id])}
    assert runs["train"].data.params["model.arch"] == "meanpool_test"
    assert runs["evaluate"].data.tags["arch"] == "meanpool_test"
    assert {"test_2016_flickr/greedy/bleu", "test_2016_flickr/beam2/bleu"} <= set(runs["evaluate"].data.metrics)
    model, spec = trained_model(RunStore.open(None, "nmt"), runs["train"].info.run_id)  # rebuilt from model_config.json
    assert isinstance(model, MeanPool) and spec.config == MeanPoolConfig()
    src = torch.tensor([[5, 6, 7, model.eos_id], [8, 9, model.eos_id, model.pad_id]])
    out = translate_ids(model, src, src != model.pad_id, beam_size=3)
    assert len(out) == 2 and all(isinstance(i, int) for ids in out for i in ids)


def test_an_unregistered_architecture_is_refused_with_the_registered_ones(nmt_home, conf_copy, capsys):
    name = f"meanpool_test_{uuid.uuid4().hex[:6]}"
    yaml = conf_copy / "model" / f"{name}.yaml"
    yaml.write_text("arch: meanpool_test\n")
    try:
        assert main(["train", f"model={name}"]) == 2
    finally:
        yaml.unlink()
    assert "model.arch: invalid choice 'meanpool_test'; valid choices: seq2seq, attention, transformer" in \
        capsys.readouterr().err
