"""The GPU paths, on a real CUDA device (skipped without one): the pipeline at each
precision, decoding on the GPU, and a sweep packing two fractional-GPU trials on one card.
`make test` runs them wherever a GPU is visible."""

from __future__ import annotations

import math

import pytest
import torch
from mlflow.tracking import MlflowClient

from nmt.components.decoding.search import greedy_decode, max_target_len, translate_ids
from nmt.components.evaluation.saliency import saliency
from nmt.pipeline.cli import main
from tests.conftest import TGT_V, batch, make, step_through

pytestmark = [pytest.mark.gpu, pytest.mark.services]


def _runs() -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    return client.search_runs([exp.experiment_id], max_results=1000)


def _stage(runs: list, stage: str) -> list:
    return [r for r in runs if r.data.tags.get("nmt.stage") == stage]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed", "32"])
def test_pipeline_trains_evaluates_and_registers_on_the_gpu(nmt_home, tiny, precision):
    assert main(["run", *tiny, "trainer.accelerator=gpu", f"trainer.precision={precision}",
                 "trainer.max_epochs=2"]) == 0
    runs = _runs()
    (train,) = _stage(runs, "train")
    assert train.data.tags["nmt.device"].startswith("cuda:")
    assert train.data.params["trainer.precision"] == precision
    assert train.data.metrics["gpu/peak_mem_mb"] > 0
    assert math.isfinite(train.data.metrics["train/loss_epoch"])
    assert train.data.metrics["epochs"] == 2
    (evaluate,) = _stage(runs, "evaluate")
    assert evaluate.data.tags["nmt.device"].startswith("cuda:")
    assert 0 <= evaluate.data.metrics["test_2016_flickr/beam2/bleu"] <= 100
    assert MlflowClient().get_model_version_by_alias("nmt-de-en", "champion").tags["train_run_id"] == \
        train.info.run_id


@pytest.mark.parametrize("name", ["gru", "bahdanau", "transformer"])
def test_incremental_decoding_matches_forward_on_the_gpu(name):
    model = make(name).cuda()
    src, mask, tgt_in = (t.cuda() for t in batch())
    full, _ = model(src, mask, tgt_in)
    steps, _ = step_through(model, src, mask, tgt_in)
    torch.testing.assert_close(steps, full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["gru", "bahdanau", "transformer"])
def test_gpu_decoding_matches_the_cpu(name):
    cpu_model = make(name)
    model = make(name).cuda()
    src, mask, _ = batch()  # CPU tensors: translate_ids moves them to the model's device
    greedy = translate_ids(model, src, mask, beam_size=1)
    assert greedy == translate_ids(cpu_model, src, mask, beam_size=1)
    ids, _ = greedy_decode(model, src.cuda(), mask.cuda(), max_target_len(mask))
    assert ids.device.type == "cuda"
    assert translate_ids(model, src, mask, beam_size=3) == translate_ids(cpu_model, src, mask, beam_size=3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        beam = translate_ids(model, src, mask, beam_size=3)
    assert len(beam) == src.shape[0]
    assert all(0 <= t < TGT_V and t not in (model.pad_id, model.bos_id, model.eos_id) for row in beam for t in row)


@pytest.mark.slow
def test_sweep_packs_two_half_gpu_trials_on_one_card(nmt_home, tiny):
    args = [*tiny, "sweep=smoke", "trainer.max_epochs=2", "sweep.scheduler.type=fifo",
            "sweep.resources.gpu=0.5", "sweep.max_concurrent_trials=2"]
    assert main(["sweep", *args]) == 0
    trials = _stage(_runs(), "trial")
    assert len(trials) == 4 and all(r.info.status == "FINISHED" for r in trials)
    assert {r.data.tags["nmt.resources"] for r in trials} == {"CPU=1 GPU=0.5"}
    assert all(r.data.metrics["gpu/peak_mem_mb"] > 0 for r in trials)
    spans = sorted((r.info.start_time, r.info.end_time) for r in trials)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:])), \
        f"no two trials shared the GPU at once: {spans}"


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_saliency_on_the_gpu_matches_the_cpu(name):
    """cuDNN refuses RNN gradients in eval mode; saliency falls back to the plain kernels."""
    src, mask, tgt_in = batch()
    src, mask, tgt = src[:1], mask[:1], tgt_in[:1, 1:]
    on_cpu = saliency(make(name), src, mask, tgt)
    on_gpu = saliency(make(name).cuda(), src.cuda(), mask.cuda(), tgt.cuda())
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=1e-3)
