"""``nmt run data=files`` on a corpus per script family (tests/scripts_corpora.py: Chinese,
Japanese, Korean, Arabic, Persian, Hindi, Thai, Greek, Russian), each ending with a
registered model, BLEU tokenized for its target language and an ``nmt translate`` that keeps
joiners and marks; and no training pair, however long, crashes training or evaluation.
One project home for the module; each family's run is made once, when a test first needs it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from datasets import load_from_disk
from mlflow.tracking import MlflowClient

from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import main
from nmt.pipeline.upstream import PreparedData
from tests.components.data.test_scripts import long_corpus
from tests.conftest import TINY_RUN, module_home
from tests.scripts_corpora import EVERY_TARGET, KEPT, LANGUAGES, files_overrides, pairs

pytestmark = pytest.mark.slow
# TINY_RUN's tiny GRU, trained for a few epochs of the 176 pairs: enough to write the
# target's script (a Persian verb with its ZWNJ); about 3 s of training a family
RUN = [o for o in TINY_RUN if not o.startswith(("data.", "trainer.max_steps", "trainer.max_epochs"))] + [
    "trainer.max_steps=-1", "trainer.max_epochs=6", "trainer.batch_tokens=1024", "optim.lr=0.01"]
TOKENIZE = {"zh": "zh", "ja": "char", "ko": "char", "th": "char"}  # mecab is not installed here; 13a for the rest


@pytest.fixture(scope="module")
def family(tmp_path_factory, multi30k_dir):
    """lang -> {stage: run} of its `nmt run` in the module's home (made on first use)."""
    runs: dict[str, dict] = {}
    with module_home(tmp_path_factory, multi30k_dir, "every-language") as (home, _):
        def get(lang: str) -> dict:
            if lang not in runs:
                with contextlib.redirect_stdout(io.StringIO()):
                    assert main(["run", *RUN, *files_overrides(home.parent, lang)]) == 0
                runs[lang] = _stages(lang)
            return runs[lang]
        yield get


def _stages(lang: str) -> dict:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    (prep,) = client.search_runs([exp], f"params.`data.tgt_lang` = '{lang}' and tags.`nmt.stage` = 'prepare'")
    out = {"prepare": prep}
    for stage in ("train", "evaluate", "register"):
        (out[stage],) = client.search_runs([exp], f"params.`upstream.prepare_run_id` = '{prep.info.run_id}' "
                                                  f"and tags.`nmt.stage` = '{stage}'")
    return out


def _translate(lines: list[str], lang: str, folder: Path) -> list[str]:
    (folder / "in.txt").write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["translate", "--file", str(folder / "in.txt"), "--beam", "1",
                     "--model", f"models:/nmt-en-{lang}@champion"]) == 0
    return out.getvalue().split("\n")[:-1]


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_each_script_family_runs_to_a_registered_model_scored_for_its_language(family, lang, tmp_path):
    runs = family(lang)
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert str(MlflowClient().get_model_version_by_alias(f"nmt-en-{lang}", "champion").version) == "1"
    tok = TOKENIZE.get(lang, "13a")
    evaluate, train = runs["evaluate"], runs["train"]
    assert f"|tok:{tok}|" in evaluate.data.tags["signature.bleu"]
    assert f"bleu.tok:{tok}|" in evaluate.data.params["metric.signature"] == train.data.params["metric.signature"]
    assert train.data.tags["nmt.val_metric"].startswith("chrF2|" if tok == "char" else "BLEU|")
    assert "test/greedy/bleu" in evaluate.data.metrics and "val/bleu" in train.data.metrics
    # translate gives what evaluate scored, line for line, and the script's marks come out
    data = load_from_disk(str(PreparedData.load(_store(), runs["prepare"].info.run_id).data_dir))
    hyps = _translate(data["test"]["src"], lang, tmp_path)
    scored = MlflowClient().download_artifacts(evaluate.info.run_id, "hypotheses/test.greedy.txt", str(tmp_path))
    assert hyps == Path(scored).read_text(encoding="utf-8").split("\n")[:-1]
    assert set(data["test"]["tgt"]) <= {t for _, t in pairs(lang)}  # references as written
    if lang in EVERY_TARGET:
        assert any(KEPT[lang] in h for h in hyps), hyps[:5]


def _store() -> RunStore:
    from nmt.pipeline.config import load_config
    return RunStore.from_config(load_config([]).tracking)


def test_no_training_pair_however_long_crashes_training_or_evaluation(family, tmp_path):
    """Issue #32, case 3, past prepare: with ``data.max_tokens=null`` prepare keeps 10 pairs of
    1,500 letters; a Transformer of 64 positions trains without them (counted) and evaluates
    a test split holding one, cut to fit."""
    family("ru")  # the module's home, as the other tests use it
    overrides = [*[o for o in RUN if not o.startswith("model")], *long_corpus(tmp_path), "data.max_tokens=null",
                 "model=transformer_tiny", "model.d_model=16", "model.num_encoder_layers=1",
                 "model.num_decoder_layers=1", "model.num_heads=2", "model.ff_dim=32", "model.max_positions=64",
                 "trainer.max_epochs=1"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", *overrides]) == 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    (train,) = client.search_runs([exp], "tags.`nmt.stage` = 'train' and params.`model.max_positions` = '64'")
    (evaluate,) = client.search_runs([exp], f"params.`upstream.train_run_id` = '{train.info.run_id}'")
    assert train.info.status == evaluate.info.status == "FINISHED"
    assert train.data.metrics["train/dropped_positions"] == 10
    assert "test/greedy/bleu" in evaluate.data.metrics
