"""End to end through the ``nmt`` command on a real SQLite MLflow store and real data."""

import gzip
import shutil

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from components.devices import describe, inference_device, resolve_precision
from pipeline.cli import main

pytestmark = pytest.mark.slow


def _runs(client):
    exp = client.get_experiment_by_name("nmt")
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def test_run_chains_stages_registers_and_reuses(nmt_home, tiny, capsys):
    assert main(["run", *tiny]) == 0
    out = capsys.readouterr().out
    client = MlflowClient()
    runs = _runs(client)
    parents = [r for r in runs if r.data.tags.get("nmt.pipeline") == "true"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["nmt.stage"] for r in children) == ["evaluate", "prepare", "register", "train"]
    assert {r.info.status for r in runs} == {"FINISHED"}

    train = next(r for r in children if r.data.tags["nmt.stage"] == "train")
    assert {"train/loss_step", "val/loss", "val/bleu", "train/lr", "train/tokens_per_s"} <= set(train.data.metrics)
    # trainer.precision=auto, resolved for this machine and recorded; the device too
    assert train.data.params["trainer.precision"] == "auto"
    acc = "gpu" if torch.cuda.is_available() else "cpu"
    assert train.data.tags["nmt.precision"] == {"32": "32-true"}.get(p := resolve_precision("auto", acc), p)
    assert train.data.tags["nmt.device"] == describe(inference_device())
    evaluate = next(r for r in children if r.data.tags["nmt.stage"] == "evaluate")
    for search in ("greedy", "beam2"):
        for metric in ("bleu", "chrf", "ter"):
            assert f"test_2016_flickr/{search}/{metric}" in evaluate.data.metrics
    assert evaluate.data.tags["signature.bleu"].startswith("nrefs:1|case:mixed")
    prepare = next(r for r in children if r.data.tags["nmt.stage"] == "prepare")
    assert prepare.data.metrics["train/pairs"] == 200 and prepare.data.metrics["test_2016_flickr/pairs"] == 30

    mv = client.get_model_version_by_alias("nmt-de-en", "champion")
    assert str(mv.version) == "1"
    assert out.count("  hyp: ") == 2

    # register -> load the champion -> one translation per input
    model = mlflow.pyfunc.load_model("models:/nmt-de-en@champion")
    preds = model.predict(["Ein Hund läuft.", "Zwei Männer.", "Ein Kind spielt im Park."], params={"beam_size": 2})
    assert len(preds) == 3 and all(isinstance(p, str) for p in preds)

    # the same command again reuses all four stages and logs no new run
    assert main(["run", *tiny]) == 0
    assert "(reused)" in capsys.readouterr().out
    assert len(_runs(client)) == len(runs)

    # evaluate a model trained earlier: no prepare or train run, the label is the model's own
    before = {r.info.run_id for r in _runs(client)}
    assert main(["evaluate", *tiny, "evaluate.beam_size=1", f"evaluate.train_run_id={train.info.run_id}"]) == 0
    new = [r for r in _runs(client) if r.info.run_id not in before]
    assert sorted(r.data.tags.get("nmt.stage", "pipeline") for r in new) == ["evaluate", "pipeline"]
    again = next(r for r in new if r.data.tags.get("nmt.stage") == "evaluate")
    assert again.data.params["upstream.train_run_id"] == train.info.run_id
    assert again.data.params["upstream.prepare_run_id"] == prepare.info.run_id
    assert again.data.tags["arch"] == "seq2seq-gru"
    assert "test_2016_flickr/greedy/bleu" in again.data.metrics
    assert not any("beam" in k for k in again.data.metrics)
    runs = _runs(client)

    # a changed training parameter re-trains but reuses prepare
    assert main(["train", *tiny, "trainer.seed=7"]) == 0
    new = [r for r in _runs(client) if r.info.run_id not in {x.info.run_id for x in runs}]
    assert sorted(r.data.tags.get("nmt.stage", "pipeline") for r in new) == ["pipeline", "train"]
    new_train = next(r for r in new if r.data.tags.get("nmt.stage") == "train")
    assert new_train.data.params["upstream.prepare_run_id"] == prepare.info.run_id


def _assert_nothing_finished_or_running():
    for r in _runs(MlflowClient()):
        assert r.info.status not in ("RUNNING", "FINISHED"), (r.data.tags, r.info.status)


def test_missing_data_dir_fails_clearly(nmt_home, tiny, tmp_path, capsys):
    missing = tmp_path / "no-such-dir"
    assert main(["run", *tiny, f"data.dir={missing}"]) == 2
    assert f"Multi30k directory not found: {missing}" in capsys.readouterr().err
    _assert_nothing_finished_or_running()


def test_mismatched_line_counts_fail_naming_file_and_line(nmt_home, tiny, tmp_path, multi30k_dir, capsys):
    data = tmp_path / "m30k"
    shutil.copytree(multi30k_dir, data)
    with gzip.open(data / "val.en.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    with gzip.open(data / "val.en.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines[:-5]) + "\n")
    assert main(["run", *tiny, f"data.dir={data}"]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'val.de.gz'} has 1014 lines" in err and "val.en.gz has 1009" in err and "line 1010" in err
    _assert_nothing_finished_or_running()
    assert {r.info.status for r in _runs(MlflowClient())} == {"FAILED"}  # prepare + parent


@pytest.mark.parametrize("override, message", [
    ("data.src_lang=klingon", "unknown language code 'klingon'; valid: en, de, fr, cs"),
    ("trainer.max_epochz=3", "unknown config key 'trainer.max_epochz'; valid keys under 'trainer'"),
    ("model=rnn", "Available options in 'model'"),
])
def test_bad_input_exits_nonzero_with_clear_message(nmt_home, tiny, override, message, capsys):
    assert main(["run", *tiny, override]) == 2
    assert message in capsys.readouterr().err
    _assert_nothing_finished_or_running()


@pytest.mark.parametrize("command, message", [
    ("evaluate", "evaluate.train_run_id=0123abc: no such run in this tracking store"),
    ("run", "evaluate.train_run_id is for `nmt evaluate`, not the stages up to register; to register a trained "
            "model: nmt promote --run 0123abc"),
])
def test_evaluating_a_given_train_run_checks_it(nmt_home, tiny, command, message, capsys):
    assert main([command, *tiny, "evaluate.train_run_id=0123abc"]) == 2
    assert message in capsys.readouterr().err
    _assert_nothing_finished_or_running()
