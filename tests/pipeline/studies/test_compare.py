"""Every architecture through `nmt run`, then `nmt compare` over the three."""

import re

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from tests.conftest import TINY

pytestmark = pytest.mark.slow

BASE = [o for o in TINY if not o.startswith("model")] + ["evaluate.splits=[test_2016_flickr,test_2017_flickr]"]
ARCHS = {
    "gru": ["model=gru", "model.emb_dim=24", "model.hidden_dim=40"],
    "attention": ["model=attention", "model.emb_dim=24", "model.enc_hidden_dim=20", "model.dec_hidden_dim=36",
                  "model.attn_dim=16"],
    "transformer": ["model=transformer", "model.d_model=32", "model.num_heads=4", "model.ff_dim=48",
                    "model.num_encoder_layers=2", "model.num_decoder_layers=2", "optim=noam", "optim.warmup_steps=10"],
}


def test_each_architecture_runs_end_to_end_and_compares(nmt_home, tmp_path, capsys):
    for arch, extra in ARCHS.items():
        assert main(["run", *BASE, *extra]) == 0, arch
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    evals = client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'evaluate'")
    assert sorted(r.data.tags["arch"] for r in evals) == ["attention", "seq2seq-gru", "transformer"]
    for r in evals:
        arts = {a.path for a in client.list_artifacts(r.info.run_id, "length")}
        assert "length/bleu_by_length.png" in arts
        attn = {a.path for a in client.list_artifacts(r.info.run_id, "attention")}
        if r.data.tags["arch"] == "transformer":
            assert {"attention/sample0.png", "attention/sample0_layers.png", "attention/sample0_heads.png"} <= attn
        else:
            assert "attention/sample0.png" in attn
        assert r.data.tags["analysis.map"] == ("saliency" if r.data.tags["arch"] == "seq2seq-gru" else "attention")
    versions = client.search_model_versions("name = 'nmt-de-en'")
    assert len(versions) == 3

    out = tmp_path / "report"
    assert main(["compare", "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    for split in ("test_2016_flickr", "test_2017_flickr"):
        section = md.split(f"## {split}")[1].split("##")[0]
        assert len(re.findall(r"^\| \S+ \(", section, flags=re.M)) == 3
    assert "test_2017_mscoco" not in md  # not evaluated: no empty table
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # length, params, time + 3 maps of one sentence
    assert "seq2seq-gru" in page and "its map is gradient saliency" in page
    compare = client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'compare'")
    assert len(compare) == 1

    # a run of the wrong kind for its flag, or none: one line, before any report is written
    train_id = evals[0].data.params["upstream.train_run_id"]
    for argv, message in [
        (["--runs", train_id], f"--runs {train_id} is a FINISHED train run; it takes a FINISHED evaluate run"),
        (["--runs", "0123456789abcdef"], "--runs 0123456789abcdef: no such run in sqlite:"),
        (["--sweep-run", evals[0].info.run_id], f"--sweep-run {evals[0].info.run_id} is a FINISHED evaluate run; "
                                                "it takes a sweep, journey or pipeline run"),
    ]:
        capsys.readouterr()
        assert main(["compare", *argv, "--out", str(tmp_path / "bad")]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"nmt: error: {message}"), line
    assert not (tmp_path / "bad").exists()
    assert len(client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'compare'")) == 1
