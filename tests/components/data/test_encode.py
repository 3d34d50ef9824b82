"""prepare's vectorised passes against the reference they replace: Arrow's cleaning equals
:func:`nmt.components.data.text.normalize` and ``len(text.split())``, and the piece-dictionary
encoder equals ``Tokenizer.encode_batch``, on text chosen to break them."""

from __future__ import annotations

import pyarrow as pa
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from nmt.components.data.clean import clean_batch, normalize_column, text_hash
from nmt.components.data.encode import encode_column, supports
from nmt.components.data.tokenizer import train_tokenizer
from nmt.components.data.text import normalize

AWKWARD = ["", " ", "  a  b ", "a\tb", "x\u00a0y", "caf\u00e9\u200b  here", "e\u0301 \u0301x", "A\u030a \u212b",
           "\u1100\u1161 \uac00\u11a8", "Zo\u00eb \u201eHi\u201c \u2013 \u65e5\u672c \u2603", "a\x85b\u2028c", "\U0001f600 a",
           "a\x7fb", "soft\u00adhyphen", "x\u3000y", "\ufeffbom", "\u2581", "\u2581a", "a\u2581b", "a \u2581b",
           "\u2581 \u2581", "  lead and trail  ", "\u0301", "unk \u0f00\u0f01"]
CORPUS = [f"der hund {i} l\u00e4uft \u00fcber die wiese nummer {i % 13}" for i in range(300)] + AWKWARD * 2


def test_normalize_column_equals_normalize_on_every_bmp_character():
    chars = [chr(cp) for cp in range(0x20, 0x10000) if not 0xD800 <= cp < 0xE000]
    texts = AWKWARD + [f"a{c} {c}b{c}" for c in chars] + [f"{b}{m}" for b in "a\u03b1\u1100\uac00\u0915"
                                                           for m in map(chr, range(0x300, 0x370))]
    got = normalize_column(pa.array(texts)).to_pylist()
    assert [t for t, g in zip(texts, got) if g != normalize(t)] == []


def test_clean_batch_counts_characters_flags_changes_and_hashes_like_python():
    raw = pa.record_batch([pa.array(AWKWARD), pa.array(list(reversed(AWKWARD)))], names=["src", "tgt"])
    text, work = clean_batch(raw)
    src, tgt = text.column("src").to_pylist(), text.column("tgt").to_pylist()
    assert src == [normalize(t) for t in AWKWARD]
    assert work["src_chars"].tolist() == [len(t) for t in src]
    assert work["tgt_chars"].tolist() == [len(t) for t in tgt]
    assert work["changed"].tolist() == [a != normalize(a) or b != normalize(b)
                                        for a, b in zip(AWKWARD, reversed(AWKWARD))]
    assert (work["src_hash"] == text_hash(src)).all()


@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_encode_column_equals_encode_batch(kind):
    tok = train_tokenizer(CORPUS, kind=kind, vocab_size=120)
    assert supports(tok)
    texts = AWKWARD + CORPUS[:50] + ["v\u00f6llig neue w\u00f6rter \u4e2d"]
    column = pa.chunked_array([texts[:10], texts[10:]])  # as a table's column arrives
    assert encode_column(tok, column).to_pylist() == [e.ids for e in tok.encode_batch(texts)]
    assert encode_column(tok, pa.array(texts).slice(3, 7)).to_pylist() == [e.ids for e in tok.encode_batch(texts[3:10])]


def test_other_pre_tokenizers_fall_back_to_encode_batch():
    tok = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    assert not supports(tok)
    assert encode_column(tok, pa.array(["a b", "b  c", ""])).to_pylist() == [[0, 1], [1, 2], []]
