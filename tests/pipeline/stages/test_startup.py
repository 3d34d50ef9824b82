"""Start-up and validation stay off the critical path: the train run logs where its seconds
before the first step went, the command line imports nothing heavy before it needs it,
and validation decodes a fixed, bounded subset whatever the model's state."""

from __future__ import annotations

import subprocess
import sys

import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.training import startup
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.search import greedy_in_batches, max_target_len, translate_ids
from nmt.components.training.lit_module import TranslationModule
from nmt.components.models.factory import build
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.prepare import build_dataset
from nmt.pipeline.trained import model_spec
from tests.conftest import EOS, ROOT, TINY_RUN
from tests.components.decoding.test_decoding import BigramModel


def test_the_command_line_imports_no_heavy_package_before_a_command_runs():
    """`nmt --help`, `nmt server status` or a config error must not wait for Lightning,
    torch, MLflow, Ray or datasets to import (seconds each on 2 cores)."""
    code = ("import sys, nmt.pipeline.cli; heavy = ('torch', 'pytorch_lightning', 'mlflow', 'ray', 'datasets', "
            "'optuna', 'matplotlib'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_train_logs_its_start_up_apart_from_the_process(nmt_home):
    assert main(["train", *TINY_RUN]) == 0
    client = MlflowClient()
    run = next(r for r in client.search_runs([client.get_experiment_by_name("nmt").experiment_id])
               if r.data.tags.get(N.TAG_STAGE) == "train")
    m = run.data.metrics
    process, stage = m[N.TO_FIRST_STEP], m[N.STAGE_TO_FIRST_STEP]
    assert 0 < stage < process  # the stage's own start-up leaves out the imports and prepare
    phases = {k: v for k, v in m.items() if k.startswith(N.STARTUP_PREFIX)}
    for phase in ("imports", "config", "tracking store", "prepare", "model", "fit setup", "first step"):
        assert N.startup_metric(phase) in phases, phase
    assert all(v >= 0 for v in phases.values())
    # the phases tile the time from the process's start to the first step
    assert abs(sum(phases.values()) - process) < 0.05 * process + 0.1


def test_breakdown_leaves_out_marks_older_than_the_process():
    startup.reset()
    startup._marks.append(("inherited", startup.process_start() - 5.0, 0.0))
    startup.mark("imports")
    rows = startup.breakdown()
    assert [r[0] for r in rows] == ["imports"]
    startup.reset()


def test_greedy_in_batches_is_translate_ids_in_the_input_order():
    model = bigram(0.7)
    sources = [[k % 4] + [5] * (k % 5) + [EOS] for k in range(11)]
    got = greedy_in_batches(model, sources, max_tokens=12)
    for src, ids in zip(sources, got):
        one = torch.tensor([src])
        assert ids == translate_ids(model, one, torch.ones_like(one, dtype=torch.bool))[0]


def bigram(eos_drift: float) -> BigramModel:
    model = BigramModel(eos_drift=eos_drift)
    model.anchor = torch.nn.Parameter(torch.zeros(1))  # a parameter says where the model runs (CPU)
    return model


def _counting(model):
    """Record the rows of each decoder step (the real model still computes it)."""
    calls: list[int] = []
    step = model.decode_step

    def counted(y, state):
        calls.append(int(y.shape[0]))
        return step(y, state)
    model.decode_step = counted
    return calls


def test_a_model_that_never_stops_costs_only_each_batchs_own_budget():
    """An untrained model babbles to the length budget: with length-sorted batches, that
    budget is each batch's own longest source, not the longest of the whole set."""
    model = bigram(-50.0)  # EOS never wins
    calls = _counting(model)
    sources = [[3] + [5] * n + [EOS] for n in (30, 1, 2, 1, 29, 2)]
    greedy_in_batches(model, sources, max_tokens=12)
    lengths = sorted(len(s) for s in sources)  # the batches greedy_in_batches forms, by hand
    batches, cur = [], []
    for n in lengths:
        if cur and n * (len(cur) + 1) > 12:
            batches.append(cur)
            cur = []
        cur.append(n)
    batches.append(cur)
    budget = sum(max_target_len(torch.ones(1, b[-1])) for b in batches)
    assert len(calls) == budget
    assert budget < len(batches) * max_target_len(torch.ones(1, max(lengths)))


def test_a_model_that_says_eos_at_once_costs_one_step_per_batch():
    model = bigram(0.0)
    model.table[..., EOS] = 50.0  # EOS at the first step, every row
    calls = _counting(model)
    greedy_in_batches(model, [[k % 4, 5, 5, EOS] for k in range(10)], max_tokens=16)
    assert calls == [4, 4, 2]


def _validation_setup(tmp_path, limit: int):
    cfg = load_config(["data.train_limit=64", "data.val_limit=60", "data.test_limit=4", "data.vocab_size=200"])
    built = build_dataset(cfg, tmp_path / "work")
    dsd, src_tok, tgt_tok = built.data, built.src_tok, built.tgt_tok
    dsd.save_to_disk(str(tmp_path / "data"))
    codec = TextCodec(src_tok, tgt_tok)
    torch.manual_seed(0)
    model = build(model_spec(load_config(["model=transformer_tiny", "data.vocab_size=200"]), codec))
    module = TranslationModule(model, optim=cfg.optim, detokenize=codec.decode_tgt, val_bleu_limit=limit)
    dm = TranslationDataModule(tmp_path / "data", max_tokens=256)
    dm.setup()
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", precision="32")
    return trainer, module, dm


def test_validation_decodes_the_fixed_subset_in_few_bounded_batches(tmp_path, nmt_home):
    """An untrained Transformer (no EOS yet): val/bleu decodes exactly the first
    ``val_bleu_limit`` sentences, the same ones each time, in one batch here, within the
    length budget of that batch; val/loss still covers the whole set."""
    limit = 20
    trainer, module, dm = _validation_setup(tmp_path, limit)
    calls = _counting(module.model)
    first = trainer.validate(module, datamodule=dm, verbose=False)[0]
    steps = len(calls)
    assert set(calls) == {limit}  # one batch of the 20 subset sentences, never the other 40
    longest = max(n + 1 for n in dm.ds["val"].select(range(limit))["src_len"])
    assert steps <= max_target_len(torch.ones(1, longest))
    second = trainer.validate(module, datamodule=dm, verbose=False)[0]
    assert len(calls) == 2 * steps and second[N.VAL_BLEU] == first[N.VAL_BLEU]
    assert N.VAL_LOSS in first
