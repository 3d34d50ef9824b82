"""``nmt align``: Pharaoh lines by forced decoding with a registered tiny Transformer, and the
AER table against a gold file (logged to an align run)."""

from __future__ import annotations

import io
import os
import re
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.pipeline.cli import main

pytestmark = pytest.mark.slow

SRC = ["Ein Hund läuft im Park .", "Zwei Männer spielen Fußball.", "", "Kinder"]
TGT = ["A dog runs in the park .", "Two men play soccer.", "Nothing", "Children are playing in the snow ."]


@pytest.fixture
def store(transformer_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", transformer_store)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(transformer_store)
    yield transformer_store
    mlflow.set_tracking_uri(before)


@pytest.fixture
def pairs(tmp_path):
    src, tgt = tmp_path / "in.de", tmp_path / "in.en"
    src.write_text("".join(s + "\n" for s in SRC), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in TGT), encoding="utf-8")
    return src, tgt


def _links(line: str) -> list[tuple[int, int]]:
    return [tuple(map(int, tok.split("-"))) for tok in line.split()]


def test_pharaoh_lines_on_the_words_given(store, pairs, tmp_path, capsys):
    src, tgt = pairs
    out = tmp_path / "out.talp"
    assert main(["align", "--src", str(src), "--tgt", str(tgt), "--out", str(out), "--layer", "1", "--head", "2"]) == 0
    assert "links from attention, cross-attention layer 1 head 2" in capsys.readouterr().err  # what was read
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines[:-1]) == len(SRC)
    for line, s, t in zip(lines, SRC, TGT):
        links = _links(line)
        # one link per target word (argmax), every index on the words as given
        assert sorted(j for _, j in links) == (list(range(len(t.split()))) if s else [])
        assert all(0 <= i < len(s.split()) for i, _ in links)
    assert lines[2] == ""  # an empty source: a valid, empty line


def test_gold_gives_the_aer_table_logged_to_a_run(store, pairs, tmp_path, capsys):
    src, tgt = pairs
    gold = tmp_path / "gold.talp"
    gold.write_text("1-1 2-2 3-3 4p4 5-6 6-7\n1-1 2-2 3-3 4-4 4p5\n\n1-1\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["align", "--src", str(src), "--tgt", str(tgt), "--gold", str(gold)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == len(SRC)
    assert re.search(r"readout +precision +recall +AER", captured.err)
    run_id = captured.err.strip().rsplit("align run ", 1)[1].rstrip(")")
    metrics = MlflowClient(store).get_run(run_id).data.metrics
    assert set(metrics) == {f"{N.AER_PREFIX}{k}" for k in
                            ("mean", "penultimate", "layer_1", "layer_1_head_1", "layer_1_head_2")}
    assert all(0 <= v <= 100 for v in metrics.values())
    # one decoder layer: its penultimate is layer 1, the mean is layer 1's head average
    assert metrics[f"{N.AER_PREFIX}penultimate"] == metrics[f"{N.AER_PREFIX}layer_1"] == metrics[f"{N.AER_PREFIX}mean"]


@pytest.mark.parametrize("extra, message", [
    (["--layer", "3"], "--layer 'layer 3': not a readout of this transformer; valid: mean, penultimate, layer 1"),
    (["--layer", "mean", "--head", "1"], "--head 1 needs --layer N"),
    # paths, in and out, answered before the model loads
    (["--gold", "missing.talp"], "--gold missing.talp: no such file; give a file of links"),
    (["--src", "."], "--src .: is a directory; give a text file"),
    (["--out", "."], "--out . is a folder; give the path of a file to write"),
    (["--out", "no-such-folder/links.txt"], "the folder {cwd}/no-such-folder does not exist; make it first"),
    (["--out", "/proc/links.txt"], "--out /proc/links.txt: cannot write in /proc"),
])
def test_bad_input_is_one_line(store, pairs, capsys, extra, message):
    src, tgt = pairs
    message = message.format(cwd=os.getcwd())
    capsys.readouterr()
    argv = ["align", "--src", str(src), "--tgt", str(tgt), *extra]
    if "--src" in extra:  # the case's own --src replaces the good one
        argv = ["align", "--tgt", str(tgt), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("nmt: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_translate_align_prints_each_translation_with_its_links(store, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(s + "\n" for s in SRC)))
    capsys.readouterr()
    assert main(["translate", "--align", "--beam", "1"]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == len(SRC) and lines[2] == " ||| "  # a blank line: an empty translation, no links
    for line, s in zip(lines, SRC):
        hyp, links = line.split(" ||| ")
        assert sorted(j for _, j in _links(links)) == list(range(len(hyp.split())))
        assert all(i < len(s.split()) for i, _ in _links(links))


def test_the_rwth_gold_set_is_scored_in_latin1(store, alignment_gold, tmp_path, capsys):
    """The research gold set, read in place (never copied into the project): 508 lines on its
    own words, and an AER for every readout."""
    out = tmp_path / "rwth.talp"
    capsys.readouterr()
    assert main(["align", "--src", str(alignment_gold / "de"), "--tgt", str(alignment_gold / "en"),
                 "--encoding", "latin-1", "--gold", str(alignment_gold / "alignmentDeEn.talp"),
                 "--out", str(out)]) == 0
    assert "AER of transformer (508 pairs" in capsys.readouterr().err
    de = (alignment_gold / "de").read_text(encoding="latin-1").split("\n")
    en = (alignment_gold / "en").read_text(encoding="latin-1").split("\n")
    lines = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == 508 and sum(bool(line) for line in lines) == 508
    for line, s, t in zip(lines, de, en):
        assert all(i < len(s.split()) and j < len(t.split()) for i, j in _links(line))
