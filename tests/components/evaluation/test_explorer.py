"""The attention explorer: its data from tiny real models, and the page in a real headless
Chromium (Debian's `chromium`; the test skips, saying so, where it is not installed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

from nmt.components.data.tokenizer import TextCodec, train_tokenizer
from nmt.components.evaluation.explorer import MAP_MEAN, render
from nmt.components.evaluation.figures import explorer_entry
from tests.conftest import require, tiny_net

TEXTS = ["ein Hund läuft im Park", "a dog runs in the park", "zwei Katzen schlafen", "two cats sleep"]
SENTENCES, REFS = ["ein Hund läuft", "zwei Katzen im Park"], ["a dog runs", "two cats in the park"]
MODELS = {"GRU": ("seq2seq", {"emb_dim": 8, "hidden_dim": 9}),
          "Bahdanau": ("attention", {"emb_dim": 8, "enc_hidden_dim": 6, "dec_hidden_dim": 10, "attn_dim": 7}),
          "Transformer": ("transformer", {"d_model": 12, "num_heads": 3, "ff_dim": 20, "num_encoder_layers": 1,
                                          "num_decoder_layers": 2})}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    tok = train_tokenizer(TEXTS * 5, kind="bpe", vocab_size=60)
    codec, out = TextCodec(tok, tok), []
    for label, (arch, extra) in MODELS.items():
        torch.manual_seed(0)
        model = tiny_net({"arch": arch, **extra}, tok.get_vocab_size(), tok.get_vocab_size(), shared=True).eval()
        out.append(explorer_entry(model, codec, SENTENCES, label, beam_size=3))
    return out


def test_entries_hold_every_map_and_the_beam_per_step(entries):
    gru, bahdanau, transformer = entries
    assert (gru["kind"], bahdanau["kind"], transformer["kind"]) == ("saliency", "attention", "attention")
    assert list(bahdanau["sentences"][0]["maps"]) == ["alpha"]
    maps = transformer["sentences"][0]["maps"]
    assert list(maps)[0] == MAP_MEAN and len(maps) == 1 + 2 * 3  # mean + 2 layers x 3 heads
    for e in (bahdanau, transformer):
        for s in e["sentences"]:
            for w in s["maps"].values():  # (T, S), rows are distributions over the source
                assert np.shape(w) == (len(s["tgt"]), len(s["src"]))
                np.testing.assert_allclose(np.sum(w, -1), 1.0, atol=5e-3)
    for s in transformer["sentences"]:
        assert s["beam"] and all(len(step) <= 3 for step in s["beam"])
        assert [len(h[0]) for h in s["beam"][1]] == [2] * len(s["beam"][1])  # step 2: two tokens each


def test_the_page_is_self_contained(entries):
    page = render(entries, [{"src": s, "ref": r} for s, r in zip(SENTENCES, REFS)])
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no network
    assert "<script src" not in page


def _dom(path, fragment: str, tmp_path) -> str:
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    shot = tmp_path / "explorer.png"
    subprocess.run([*args, f"--screenshot={shot}", "--window-size=1400,900", path.as_uri() + fragment],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 5000  # something was drawn
    return subprocess.run([*args, "--dump-dom", path.as_uri() + fragment], capture_output=True, text=True,
                          timeout=120, check=True).stdout


def test_page_shows_each_models_maps_in_headless_chromium(entries, tmp_path):
    if CHROMIUM is None:  # a browser is a service here: CI (.ci/run) installs it
        require("Debian's chromium", "it is not installed (apt-get install -y chromium)")
    path = tmp_path / "explorer.html"
    path.write_text(render(entries, [{"src": s, "ref": r} for s, r in zip(SENTENCES, REFS)]))
    dom = _dom(path, "#s=1&t=1", tmp_path)  # sentence 2, target step 2
    assert re.findall(r'class="model" data-model="([^"]+)"', dom) == list(MODELS)
    assert "gradient saliency" in dom and "layer 2 head 3" in dom and "beam after step 2" in dom
    assert "reference: two cats in the park" in dom
    # the Transformer panel's source cells carry the mean map's row for target step 2
    panel = dom.split('data-model="Transformer"')[1]
    shown = [float(w) for w in re.findall(r'data-weight="([0-9.]+)"', panel)]
    s = entries[2]["sentences"][1]
    np.testing.assert_allclose(shown, s["maps"][MAP_MEAN][min(1, len(s["tgt"]) - 1)], atol=1e-3)
