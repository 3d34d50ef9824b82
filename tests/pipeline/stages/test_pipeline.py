"""End to end through the ``nmt`` command on a real SQLite MLflow store and real data."""

import contextlib
import gzip
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from nmt.components.training.devices import describe, inference_device, resolve_precision
from nmt.pipeline.cli import main
from tests.conftest import TINY, module_home

pytestmark = pytest.mark.slow


def _runs(client):
    exp = client.get_experiment_by_name("nmt")
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


@dataclass(frozen=True)
class FirstRun:
    out: str                 # what `nmt run` printed
    parent: Run
    stages: dict[str, Run]   # prepare, train, evaluate, register


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, multi30k_dir) -> FirstRun:
    """One `nmt run` of the tiny config in a store of this module; each test reads one part."""
    with module_home(tmp_path_factory, multi30k_dir, "pipeline"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["run", *TINY]) == 0
        runs = _runs(MlflowClient())
        (parent,) = [r for r in runs if r.data.tags.get("nmt.pipeline") == "true"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        yield FirstRun(out.getvalue(), parent, {r.data.tags["nmt.stage"]: r for r in children})


def test_run_nests_the_four_stages_under_one_finished_parent(first_run):
    assert sorted(first_run.stages) == ["evaluate", "prepare", "register", "train"]
    assert {r.info.status for r in [first_run.parent, *first_run.stages.values()]} == {"FINISHED"}
    assert first_run.parent.info.run_name == "seq2seq-gru de-en quick"


def test_train_run_records_metrics_precision_and_device(first_run):
    train = first_run.stages["train"]
    assert {"train/loss_step", "val/loss", "val/bleu", "train/lr", "train/tokens_per_s"} <= set(train.data.metrics)
    # trainer.precision=auto, resolved for this machine and recorded; the device too
    assert train.data.params["trainer.precision"] == "auto"
    acc = "gpu" if torch.cuda.is_available() else "cpu"
    assert train.data.tags["nmt.precision"] == {"32": "32-true"}.get(p := resolve_precision("auto", acc), p)
    assert train.data.tags["nmt.device"] == describe(inference_device())
    assert train.data.params["model.arch"] == "seq2seq" and train.data.params["model.cell"] == "gru"


def test_evaluate_scores_every_search_with_signatures(first_run):
    evaluate = first_run.stages["evaluate"]
    for search in ("greedy", "beam2"):
        for metric in ("bleu", "chrf", "ter", "bleu_moses_lc", "bleu_lc"):  # the papers' conventions beside
            assert f"test_2016_flickr/{search}/{metric}" in evaluate.data.metrics
    assert evaluate.data.tags["signature.bleu"].startswith("nrefs:1|case:mixed")
    assert "case:lc" in evaluate.data.tags["signature.bleu_moses_lc"] and "moses-tok" in evaluate.data.tags[
        "signature.bleu_moses_lc"]
    assert evaluate.data.tags["arch"] == "seq2seq-gru"


def test_the_registered_model_lives_in_the_runs_experiment_under_the_home(first_run):
    """Not in MLflow's Default experiment, whose artifacts go to <cwd>/mlruns/0: the model's
    files stay with the store, whatever folder the command ran in."""
    register = first_run.stages["register"]
    model_id = register.data.params["registered.model_uri"].removeprefix("models:/")
    logged = MlflowClient().get_logged_model(model_id)
    assert logged.experiment_id == register.info.experiment_id != "0"
    assert not logged.artifact_location.startswith((str(Path.cwd() / "mlruns"), "file://" + str(Path.cwd() / "mlruns")))


def test_prepare_counts_the_pairs_it_kept(first_run):
    prepare = first_run.stages["prepare"]
    assert prepare.data.metrics["train/pairs"] == 200 and prepare.data.metrics["test_2016_flickr/pairs"] == 30


def test_the_champion_is_registered_and_translates(first_run, tmp_path):
    mv = MlflowClient().get_model_version_by_alias("nmt-de-en", "champion")
    assert str(mv.version) == "1" and mv.tags["train_run_id"] == first_run.stages["train"].info.run_id
    assert first_run.out.count("  hyp: ") == 2  # demo_sentences=2
    model = mlflow.pyfunc.load_model("models:/nmt-de-en@champion", dst_path=str(tmp_path))
    preds = model.predict(["Ein Hund läuft.", "Zwei Männer.", "", "Ein Kind spielt im Park."], params={"beam_size": 2})
    assert len(preds) == 4 and all(isinstance(p, str) for p in preds) and preds[2] == ""


def test_the_same_command_again_reuses_every_stage(first_run, capsys):
    before = len(_runs(MlflowClient()))
    assert main(["run", *TINY]) == 0
    assert capsys.readouterr().out.count("(reused)") == 4
    assert len(_runs(MlflowClient())) == before


def _new_runs(before: set[str]) -> list[Run]:
    return [r for r in _runs(MlflowClient()) if r.info.run_id not in before]


def test_evaluate_of_an_earlier_train_run_uses_its_prepare_run_and_label(first_run):
    train, prepare = first_run.stages["train"], first_run.stages["prepare"]
    before = {r.info.run_id for r in _runs(MlflowClient())}
    assert main(["evaluate", *TINY, "evaluate.beam_size=1", f"evaluate.train_run_id={train.info.run_id}"]) == 0
    new = _new_runs(before)
    assert sorted(r.data.tags.get("nmt.stage", "pipeline") for r in new) == ["evaluate", "pipeline"]
    again = next(r for r in new if r.data.tags.get("nmt.stage") == "evaluate")
    assert again.data.params["upstream.train_run_id"] == train.info.run_id
    assert again.data.params["upstream.prepare_run_id"] == prepare.info.run_id
    assert again.data.tags["arch"] == "seq2seq-gru"
    assert "test_2016_flickr/greedy/bleu" in again.data.metrics
    assert not any("beam" in k for k in again.data.metrics)


def test_a_changed_training_parameter_retrains_but_reuses_prepare(first_run):
    before = {r.info.run_id for r in _runs(MlflowClient())}
    assert main(["train", *TINY, "trainer.seed=7"]) == 0
    new = _new_runs(before)
    assert sorted(r.data.tags.get("nmt.stage", "pipeline") for r in new) == ["pipeline", "train"]
    new_train = next(r for r in new if r.data.tags.get("nmt.stage") == "train")
    assert new_train.data.params["upstream.prepare_run_id"] == first_run.stages["prepare"].info.run_id


def test_the_tiny_transformer_config_trains_and_decodes(nmt_home, capsys, tmp_path):
    """conf/model/transformer_tiny.yaml as it is (d128, 4+4 layers), one epoch of 200 pairs:
    it trains, and evaluate decodes every test sentence greedily and with a beam."""
    data = [o for o in TINY if not o.startswith("model")]
    assert main(["evaluate", *data, "model=transformer_tiny", "optim=noam", "evaluate.attention_samples=1"]) == 0
    runs = {r.data.tags.get("nmt.stage"): r for r in _runs(MlflowClient())}
    assert runs["train"].data.params["model.d_model"] == "128" and runs["train"].data.params["model.ff_dim"] == "256"
    assert runs["train"].data.metrics["num_params"] > 0
    for search in ("greedy", "beam2"):
        hyps = mlflow.artifacts.download_artifacts(run_id=runs["evaluate"].info.run_id,
                                                   artifact_path=f"hypotheses/test_2016_flickr.{search}.txt",
                                                   dst_path=str(tmp_path))
        assert len(open(hyps, encoding="utf-8").read().splitlines()) == 30
        assert f"test_2016_flickr/{search}/bleu" in runs["evaluate"].data.metrics


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


@pytest.mark.parametrize("damage", [b"not gzip at all", None])  # None: a truncated gzip
def test_a_damaged_gz_fails_naming_the_file(nmt_home, tiny, tmp_path, multi30k_dir, capsys, damage):
    data = tmp_path / "m30k"
    shutil.copytree(multi30k_dir, data)
    path = data / "val.en.gz"
    path.write_bytes(damage if damage is not None else path.read_bytes()[:200])
    assert main(["run", *tiny, f"data.dir={data}"]) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("nmt: error")]  # MLflow's INFO lines aside
    assert line.startswith(f"nmt: error: {path}: a damaged gzip file") and "Traceback" not in err
    _assert_nothing_finished_or_running()


@pytest.mark.parametrize("override, message", [
    ("trainer.max_epochs=-1", "trainer.max_epochs=-1 would train for ever: set trainer.max_minutes"),
    ("data.src_lang=klingon", "unknown language code 'klingon'; valid: en, de, fr, cs"),
    ("trainer.max_epochz=3", "unknown config key 'trainer.max_epochz'; valid keys under 'trainer'"),
    ("model=rnn", "model=rnn: no such option; valid: attention"),
])
def test_bad_input_exits_nonzero_with_clear_message(nmt_home, tiny, override, message, capsys):
    assert main(["run", *tiny, override]) == 2
    assert message in capsys.readouterr().err
    _assert_nothing_finished_or_running()


@pytest.mark.parametrize("command, message", [
    ("evaluate", "evaluate.train_run_id=0123abc: no such run in sqlite:"),
    ("run", "evaluate.train_run_id is for `nmt evaluate`, not the stages up to register; to register a trained "
            "model: nmt promote --run 0123abc"),
])
def test_evaluating_a_given_train_run_checks_it(nmt_home, tiny, command, message, capsys):
    assert main([command, *tiny, "evaluate.train_run_id=0123abc"]) == 2
    assert message in capsys.readouterr().err
    _assert_nothing_finished_or_running()
