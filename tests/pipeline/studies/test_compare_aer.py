"""A gold set in the config (evaluate.alignment_gold): evaluate logs every readout's AER, and
`nmt compare` and the journey report show an AER column. Two tiny models, one step each."""

from __future__ import annotations

import re

import pytest
from mlflow.tracking import MlflowClient

from nmt.components.evaluation.goldset import read_gold_set
from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.journey_report import _tables, aer_by_arm
from tests.conftest import TINY_RUN

pytestmark = pytest.mark.slow

# made-up pairs in the RWTH layout (files named by language, one *.talp, 1-indexed, p = possible)
DE = ["Ein Hund läuft im Park .", "Zwei Männer spielen Fußball .", "Kinder spielen im Schnee ."]
EN = ["A dog runs in the park .", "Two men play soccer .", "Children play in the snow ."]
TALP = ["1-1 2-2 3-3 4-4 4p5 5-6 6-7", "1-1 2-2 3-3 4-4 5-5", "1-1 2-2 3-3 3p4 4-5 5-6"]
BASE = [o for o in TINY_RUN if not o.startswith("model")] + ["evaluate.splits=[test_2016_flickr]"]
ARCHS = {
    "attention": ["model=attention", "model.emb_dim=24", "model.enc_hidden_dim=20", "model.dec_hidden_dim=36",
                  "model.attn_dim=16"],
    "transformer": ["model=transformer", "model.d_model=32", "model.num_heads=4", "model.ff_dim=48",
                    "model.num_encoder_layers=2", "model.num_decoder_layers=2"],
}


@pytest.fixture
def gold(tmp_path):
    folder = tmp_path / "gold"
    folder.mkdir()
    for name, lines in (("de", DE), ("en", EN), ("gold.talp", TALP)):
        (folder / name).write_text("".join(ln + "\n" for ln in lines), encoding="latin-1")
    return folder


def test_evaluate_logs_aer_and_compare_and_the_journey_show_it(nmt_home, gold, tmp_path):
    ids = {}
    for arch, extra in ARCHS.items():
        assert main(["run", *BASE, *extra, f"evaluate.alignment_gold={gold}", "evaluate.alignment_encoding=latin-1",
                     "evaluate.attention_samples=2"]) == 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    for r in client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'evaluate'"):
        ids[r.data.tags["arch"]] = r
    bahdanau, transformer = ids["attention"], ids["transformer"]
    assert bahdanau.data.tags[N.TAG_ALIGN_READOUT] == "alpha"
    assert transformer.data.tags[N.TAG_ALIGN_READOUT] == "penultimate"
    aer = {k: v for k, v in transformer.data.metrics.items() if k.startswith(N.AER_PREFIX)}
    assert len(aer) == 2 + 2 + 2 * 4 and all(0 <= v <= 100 for v in aer.values())  # mean, penultimate, 2 layers, 8 heads
    assert set(k for k in bahdanau.data.metrics if k.startswith(N.AER_PREFIX)) == {"aer/alpha"}
    assert f"{N.ALIGNMENT_DIR}/{N.AER_TABLE}" in {a.path for a in client.list_artifacts(bahdanau.info.run_id, N.ALIGNMENT_DIR)}
    assert {f"{N.ATTENTION_DIR}/{n}" for n in (N.EXPLORER_GOLD_HTML, N.EXPLORER_GOLD_JSON)} <= \
        {a.path for a in client.list_artifacts(transformer.info.run_id, N.ATTENTION_DIR)}

    out = tmp_path / "report"
    assert main(["compare", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    section = md.split("## Word alignment: AER against the gold set")[1].split("##")[0]
    rows = re.findall(r"^\| (\S+) \(\w+\) \| \S+ \| ([a-z0-9 ]+) \| ([0-9.]+) \|", section, flags=re.M)
    assert sorted((arch, readout) for arch, readout, _ in rows) == [("attention", "alpha"), ("transformer", "penultimate")]
    assert float(dict((a, v) for a, _, v in rows)["attention"]) == pytest.approx(bahdanau.data.metrics["aer/alpha"], abs=0.01)
    page = (out / N.EXPLORER_GOLD_HTML).read_text()  # both models on the first 2 gold pairs, the links with them
    assert page.count('"label": "attention (') == 1 and page.count('"label": "transformer (') == 1
    assert '"gold": {"sure": [[0, 0], [1, 1], [2, 2], [3, 3], [4, 5], [5, 6]], "possible": [[3, 4]]}' in page
    assert "explorer_gold.html beside it" in md

    # the journey's table: the AER column from the same evaluate runs (arm -> its runs)
    runs = {(arch, 0): (r.data.params[N.PARAM_PREPARE_RUN], r.data.params[N.PARAM_TRAIN_RUN], r.info.run_id)
            for arch, r in ids.items()}
    aer_arms = aer_by_arm(RunStore.from_config(load_config([]).tracking), runs)
    assert aer_arms["transformer"]["readout"] == "penultimate"
    assert aer_arms["attention"]["seeds"] == [pytest.approx(bahdanau.data.metrics["aer/alpha"])]


def test_journey_table_without_a_gold_set_has_no_aer_column():
    cfg = load_config(["journey=smoke"])
    assert "AER" not in "\n".join(_tables(cfg, {}, [], "beam5"))
    assert "AER (readout)" in _tables(cfg, {}, [], "beam5", {"a": {"readout": "alpha", "seeds": [50.0], "mean": 50.0}})[2]


def test_a_bad_gold_folder_is_one_line_before_any_run(nmt_home, tmp_path, capsys):
    assert main(["evaluate", *BASE, *ARCHS["attention"], f"evaluate.alignment_gold={tmp_path / 'g'}"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert "evaluate.alignment_gold: no folder" in err[-1] and len([ln for ln in err if "alignment_gold" in ln]) == 1
    exp = MlflowClient().get_experiment_by_name("nmt")  # not even prepare and train ran first
    assert exp is None or not MlflowClient().search_runs([exp.experiment_id])


@pytest.mark.parametrize("setup, message", [
    (lambda g: g.mkdir(), "holds 0 *.talp files; it needs exactly one"),
    (lambda g: (g.mkdir(), (g / "x.talp").write_text("1-1\n")), "has no file 'de'"),
    (lambda g: (g.mkdir(), (g / "x.talp").write_text("1-1\n"), (g / "de").write_text("a\n"), (g / "en").write_text("")),
     "has 1 de lines, 0 en lines and 1 gold lines"),
])
def test_gold_folder_errors(tmp_path, setup, message):
    folder = tmp_path / "g"
    setup(folder)
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_gold_set(folder, "de", "en", "utf-8")
