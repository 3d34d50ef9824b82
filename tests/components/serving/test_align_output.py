"""``align: true``: each translation with its Pharaoh word alignment (``translation ||| i-j``),
on the words shown; sentences with subwords and punctuation, an empty output, a max-length cut."""

from __future__ import annotations

import pytest
import torch

from nmt.components.data.tokenizer import EOS_ID, TextCodec, train_tokenizer
from nmt.components.serving.bounds import DecodeParams
from nmt.components.serving.inference import ALIGN_SEP, parse_params, translate_texts
from nmt.components.serving.requests import RequestError
from tests.conftest import tiny_net

CORPUS = ["Ein Hund läuft im Park.", "A dog runs in the park.", "Zwei Männer spielen Fußball.",
          "Two men play football.", "Eine Frau liest ein Buch.", "A woman reads a book."] * 5
TEXTS = ["Ein Hund läuft im Park.", "", "Zwei Männer spielen Fußball, glücklich!", "Frau"]
NETS = {
    "transformer": {"arch": "transformer", "d_model": 12, "num_encoder_layers": 1, "num_decoder_layers": 2,
                    "num_heads": 2, "ff_dim": 16, "dropout": 0.0, "max_positions": 24},
    "bahdanau": {"arch": "attention", "emb_dim": 10, "enc_hidden_dim": 6, "dec_hidden_dim": 12, "attn_dim": 14,
                 "dropout": 0.0},
    "gru": {"arch": "seq2seq", "cell": "gru", "emb_dim": 10, "hidden_dim": 12, "dropout": 0.0},
}


@pytest.fixture(scope="module")
def codec() -> TextCodec:
    tok = train_tokenizer(CORPUS, kind="bpe", vocab_size=60)  # small: words split into subwords
    return TextCodec(tok, tok)


def net(name: str, codec: TextCodec):
    torch.manual_seed(0)
    v = codec.src.get_vocab_size()
    return tiny_net(NETS[name], v, v, shared=True).eval()


def _check(line: str, source: str) -> tuple[str, list[tuple[int, int]]]:
    """The line's translation and links; each target word shown has exactly one link, to a
    word of the source as given."""
    hyp, links = line.split(ALIGN_SEP)
    pairs = [tuple(map(int, t.split("-"))) for t in links.split()]
    assert sorted(j for _, j in pairs) == list(range(len(hyp.split())))
    assert all(0 <= i < len(source.split()) for i, _ in pairs)
    return hyp, pairs


@pytest.mark.parametrize("name, beam", [("transformer", 1), ("transformer", 3), ("bahdanau", 1), ("bahdanau", 3),
                                        ("gru", 1), ("gru", 3)])  # saliency: forced on the outputs
def test_pharaoh_lines_on_the_words_shown(codec, name, beam):
    """Untrained, each model decodes to its full budget: every greedy output is a max-length cut."""
    model = net(name, codec)
    assert len(codec.encode_src(["glücklich!"])[0]) > 2  # a word of several subwords, punctuation inside
    plain = translate_texts(model, codec, TEXTS, DecodeParams(beam_size=beam, max_len_ratio=0.5))
    aligned = translate_texts(model, codec, TEXTS, DecodeParams(beam_size=beam, max_len_ratio=0.5, align=True))
    assert len(aligned) == len(TEXTS) and aligned[1] == ALIGN_SEP  # a blank line: still a valid line
    for line, source, hyp in zip(aligned, TEXTS, plain):
        if source:
            assert _check(line, source)[0] == hyp  # --align changes no translation
            assert hyp.split() or beam > 1  # greedy: cut at max length, so words and links


def test_the_gru_aligns_a_batch_as_its_sentences_one_at_a_time(codec):
    """Its saliency is forced on the batch's outputs together (one backward per position)."""
    model = net("gru", codec)
    params = DecodeParams(beam_size=2, max_len_ratio=0.5, align=True)
    together = translate_texts(model, codec, TEXTS, params)
    assert together == [translate_texts(model, codec, [t], params)[0] for t in TEXTS]


@pytest.mark.parametrize("name", ["bahdanau", "gru"])
def test_an_output_of_only_eos_is_an_empty_alignment(codec, name):
    model = net(name, codec)
    with torch.no_grad():
        model.out.bias[EOS_ID] = 1e4  # the first step says EOS
    for beam in (1, 2):
        assert translate_texts(model, codec, TEXTS[:1], DecodeParams(beam_size=beam, align=True)) == [ALIGN_SEP]


def test_align_is_a_boolean_param():
    assert parse_params({"align": True}).align and not parse_params(None).align
    for bad in ("yes", 1, 1.0):
        with pytest.raises(RequestError, match="params.align must be true or false"):
            parse_params({"align": bad})
