"""TrainedModel: what the train stage and a sweep's winner publish loads back as the same model."""

from __future__ import annotations

import torch
from mlflow.tracking import MlflowClient

from nmt.components.models.base import Vocabulary
from nmt.components.models.factory import ModelSpec, build, parse_model
from nmt.components.tracking.store import RunStore
from nmt.pipeline.trained import TrainedModel, trained_model
from tests.conftest import TINY_NETS


def test_a_published_model_loads_back(nmt_home, tmp_path):
    store = RunStore.open(None, "nmt")
    client = MlflowClient(store.uri)
    run_id = client.create_run(store.experiment_id).info.run_id
    spec = ModelSpec(parse_model(TINY_NETS["gru"]), Vocabulary(23, 29, 0, 1, 2, False))
    net = build(spec)
    ckpt = tmp_path / "epoch3.ckpt"  # as Lightning saves it: the network under "model."
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}, ckpt)
    TrainedModel.publish(store, run_id, spec, ckpt, 12.5)
    client.set_terminated(run_id)

    loaded = TrainedModel.load(store, run_id)
    assert (loaded.run_id, loaded.spec, loaded.best_val_bleu) == (run_id, spec, 12.5)
    model, loaded_spec = trained_model(store, run_id)
    assert loaded_spec == spec and not model.training
    for (k, v), (k2, v2) in zip(net.state_dict().items(), model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {a.path for a in client.list_artifacts(run_id, "checkpoints")}
    assert {"model_config.json", "checkpoints/best.ckpt"} <= artifacts
