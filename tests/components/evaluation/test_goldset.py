"""The gold set's explorer data: forced maps over the pieces, each piece's word and the gold
links, and the page's overlay rule (in node, and drawn in headless Chromium where installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from nmt.components.data.tokenizer import TextCodec, train_tokenizer
from nmt.components.evaluation.aer import parse_line
from nmt.components.evaluation.explorer import MAP_MEAN, PAGE, render
from nmt.components.evaluation.goldset import GoldSet, explorer_entry, explorer_sentences
from tests.components.evaluation.test_explorer import CHROMIUM, MODELS, TEXTS, _dom
from tests.conftest import require, tiny_net

SOURCES, TARGETS = ["ein Hund läuft", "zwei Katzen im Park"], ["a dog runs", "two cats in the park"]
LINKS = ["1-1 2-2 3-3", "1-1 2-2 3p3 3-4 4-5 4p4"]  # 1-indexed, as a gold file
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def gold_entries() -> tuple[GoldSet, list[dict]]:
    tok = train_tokenizer(TEXTS * 5, kind="bpe", vocab_size=60)
    codec = TextCodec(tok, tok)
    gold = GoldSet(Path("gold"), SOURCES, TARGETS, [parse_line(ln, one_indexed=True) for ln in LINKS])
    out = []
    for label, (arch, extra) in MODELS.items():
        torch.manual_seed(0)
        model = tiny_net({"arch": arch, **extra}, tok.get_vocab_size(), tok.get_vocab_size(), shared=True).eval()
        out.append(explorer_entry(model, codec, gold, 2, label))
    return gold, out


def test_entries_hold_forced_maps_and_each_pieces_word(gold_entries):
    _, entries = gold_entries
    assert [e["kind"] for e in entries] == ["saliency", "attention", "attention"]
    for e in entries:
        for s, text, ref in zip(e["sentences"], SOURCES, TARGETS):
            assert len(s["src_words"]) == len(s["src"]) and len(s["tgt_words"]) == len(s["tgt"])
            assert s["src_words"][-1] is None and s["tgt_words"][-1] is None  # EOS belongs to no word
            assert sorted(set(s["src_words"][:-1])) == list(range(len(text.split())))
            assert sorted(set(s["tgt_words"][:-1])) == list(range(len(ref.split())))
            for w in s["maps"].values():
                assert np.shape(w) == (len(s["tgt"]), len(s["src"]))
                if e["kind"] == "attention":
                    np.testing.assert_allclose(np.sum(w, -1), 1.0, atol=5e-3)
            assert ref in s["output"] and s["beam"] == []
    assert MAP_MEAN in entries[2]["sentences"][0]["maps"]


def test_page_sentences_hold_sure_and_possible_links_0_indexed(gold_entries):
    gold, _ = gold_entries
    sentences = explorer_sentences(gold, 2)
    assert sentences[0] == {"src": SOURCES[0], "ref": TARGETS[0], "gold": {"sure": [[0, 0], [1, 1], [2, 2]], "possible": []}}
    assert sentences[1]["gold"] == {"sure": [[0, 0], [1, 1], [2, 3], [3, 4]], "possible": [[2, 2], [3, 3]]}
    assert len(explorer_sentences(gold, 1)) == 1


def _marks_in_node(sentence: dict, gold: dict) -> list[list[str]]:
    """The page's own goldMark (cut out of it) for every (target token, source token)."""
    fn = PAGE.split("// goldMark:begin")[1].split("// goldMark:end")[0]
    script = fn + f"const s = {json.dumps(sentence)}, g = {json.dumps(gold)};\n" + \
        "console.log(JSON.stringify(s.tgt_words.map(tw => s.src_words.map(sw => goldMark(g, sw, tw)))));"
    return json.loads(subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True, timeout=60).stdout)


def test_the_overlay_frames_the_gold_links_of_the_words_under_the_mouse(gold_entries):
    if NODE is None:
        pytest.skip("node is not installed: the page's overlay rule runs in node here")
    gold, entries = gold_entries
    page_sentences = explorer_sentences(gold, 2)
    for e in entries:
        for s, page in zip(e["sentences"], page_sentences):
            sure, possible = ({tuple(x) for x in page["gold"][k]} for k in ("sure", "possible"))
            expected = [["sure" if (sw, tw) in sure else "possible" if (sw, tw) in possible else ""
                         for sw in s["src_words"]] for tw in s["tgt_words"]]
            assert _marks_in_node(s, page["gold"]) == expected
    # sentence 2, "in" (target word 2): "im" (source word 2) is only a possible link
    s = entries[1]["sentences"][1]
    marks = _marks_in_node(s, page_sentences[1]["gold"])
    t = s["tgt_words"].index(2)
    assert {m for m, w in zip(marks[t], s["src_words"]) if w == 2} == {"possible"}
    assert _marks_in_node(s, None) == [[""] * len(s["src"]) for _ in s["tgt"]]  # no gold set: no frames


def test_the_page_draws_the_frames_in_headless_chromium(gold_entries, tmp_path):
    if CHROMIUM is None:  # a browser is a service here: CI (.ci/run) installs it
        require("Debian's chromium", "it is not installed (apt-get install -y chromium)")
    gold, entries = gold_entries
    path = tmp_path / "explorer_gold.html"
    path.write_text(render(entries, explorer_sentences(gold, 2)))
    s = entries[1]["sentences"][1]
    t = s["tgt_words"].index(3)  # "the": sure link to source word 2, possible to 3
    dom = _dom(path, f"#s=1&t={t}", tmp_path)
    assert "solid green frame = sure" in dom
    panel = dom.split('data-model="Bahdanau"')[1].split('class="model"')[0]
    cells = re.findall(r'<span class="tok cell(?: gold-(\w+))?"([^>]*)>', panel)
    marks = [g for g, _ in cells]
    assert all(f'data-gold="{g}"' in attrs for g, attrs in cells if g)
    expected = ["sure" if w == 2 else "possible" if w == 3 else "" for w in s["src_words"]]
    assert marks == expected
