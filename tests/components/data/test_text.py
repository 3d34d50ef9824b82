"""The normalization rule: characters that are spelling stay (joiners, directional marks,
variation selectors), only noise goes (BOM, zero-width space, soft hyphen, ...); prepare's
Arrow fast path and ``normalize`` agree, and the tokenizer gives every kept character back."""

from __future__ import annotations

import pyarrow as pa
import pytest

from nmt.components.data.clean import clean_batch, normalize_column
from nmt.components.data.text import dropped, normalize
from nmt.components.data.tokenizer import TextCodec, train_tokenizer

PERSIAN = "من می\u200cخواهم به خانه\u200cام بروم."          # ZWNJ: spelling, not noise
KEPT = {
    "persian": PERSIAN,
    "sinhala": "\u0dc1\u0dca\u200d\u0dbb\u0dd3 \u0dbd\u0d82\u0d9a\u0dcf",  # ZWJ after al-lakuna: a touching letter
    "hindi": "\u0915\u094d\u200d\u0937 \u0938\u094d\u200c\u0915\u0942\u0932",  # ZWJ half form, ZWNJ explicit virama
    "emoji_zwj": "she codes \U0001f469\u200d\U0001f4bb today",
    "emoji_vs16": "I \u2764\ufe0f tea",
    "cjk_ivs": "\u845b\U000e0100 city",                   # an ideographic variation sequence
    "marks": "\u05e9\u05dc\u05d5\u05dd ABC\u200f! \u0627\u0644\u0631\u0642\u0645\u061c 5 \u200e(x)",
    "mongolian": "\u1820\u180b\u1821 \u1822\u180e\u1820",
    "cgj": "a\u034f\u0301 b",                            # CGJ keeps the marks in the order written
    "arabic_sign": "\u0600\u0661\u0662 \u06dd\u0663",
}
REMOVED = {
    "a\ufeffb": "ab", "a\u200bb": "ab", "soft\u00adhyphen": "softhyphen", "word\u2060joiner": "wordjoiner",
    "f\u2061(x)": "f(x)", "x\u202eevil\u202c y": "xevil y", "a\u2067b\u2069c": "abc",
    "flag \U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f": "flag \U0001f3f4",
    "\u115f\u1160\uac00": "\uac00",
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_characters_that_are_spelling_are_kept(name):
    text = KEPT[name]
    assert normalize(text) == text
    raw = pa.record_batch([pa.array([text]), pa.array([text])], names=["src", "tgt"])
    cleaned, work = clean_batch(raw)  # prepare's fast path
    assert cleaned.column("tgt").to_pylist() == [text] and not work["changed"][0]


@pytest.mark.parametrize("text, expected", sorted(REMOVED.items()))
def test_noise_is_removed(text, expected):
    assert normalize(text) == expected
    assert normalize_column(pa.array([text])).to_pylist() == [expected]


def test_one_predicate_decides():
    assert [dropped(cp) for cp in (0x200C, 0x200D, 0x200E, 0x200F, 0x061C, 0xFE0F, 0xE0100)] == [False] * 7
    assert [dropped(cp) for cp in (0xFEFF, 0x200B, 0x00AD, 0x2060, 0x202E, 0x2066, 0xE0041, 0xD800)] == [True] * 8


@pytest.mark.parametrize("line", ["\u200e \u200f", "\u200c", "\u200d\u200d", "\ufe0f", "\u061c \u0301"])
def test_a_line_of_only_joiners_and_marks_is_blank(line):
    assert normalize(line) == ""


def test_supplementary_characters_take_the_same_path_in_arrow():
    texts = [KEPT["cjk_ivs"], KEPT["emoji_zwj"], "x\U000e0041y", "\U0001d173a\U0001d17a", "a\U0001f600 b"]
    assert normalize_column(pa.array(texts)).to_pylist() == [normalize(t) for t in texts]


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_the_tokenizer_gives_every_kept_character_back(kind):
    """A Persian sentence with ZWNJ in, the same ZWNJ out of ``codec.decode_tgt``: NFC,
    Metaspace and the decoder leave joiners, marks and selectors alone."""
    texts = list(KEPT.values())
    tok = train_tokenizer(texts * 20, kind=kind, vocab_size=200)
    codec = TextCodec(tok, tok)
    assert codec.decode_tgt(codec.encode_src(texts)) == texts
