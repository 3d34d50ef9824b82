"""Subword attention -> word links (nmt.components.decoding.alignment) on a real tokenizer."""

from __future__ import annotations

import pytest
import torch

from nmt.components.data.tokenizer import EOS_ID, UNK_ID, train_tokenizer
from nmt.components.decoding.alignment import given_words, links, output_words, word_matrix
from nmt.components.evaluation.aer import pharaoh

TEXTS = ["a dog runs in the park .", "two men , playing football !", "the girl is happy ."] * 20


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(TEXTS, kind="bpe", vocab_size=60)


@pytest.mark.parametrize("text", ["a dog runs , happily .", "dogs. run!", "☃ a ☃x"])
def test_every_word_of_a_given_text_is_one_group(tok, text):
    """Subwords, punctuation glued to a word, unknown characters: groups = the text's words."""
    ids = tok.encode(text).ids
    words = given_words(tok, ids)
    assert len(ids) > len(text.split())  # really split into subwords
    assert words == sorted(words) and words[-1] + 1 == len(text.split())


def test_output_words_are_the_words_the_user_sees(tok):
    ids = tok.encode("happily the ☃ dogs .").ids
    assert UNK_ID in ids
    words = output_words(tok, ids)
    shown = tok.decode(ids).split()  # <unk> is not shown: "☃" is no word of the output
    assert shown == ["happily", "the", "dogs", "."]
    assert max(w for w in words if w is not None) + 1 == len(shown)
    assert [w for w, i in zip(words, ids) if i == UNK_ID] == [None]
    assert output_words(tok, []) == []


def test_source_mass_sums_target_rows_average():
    """Pieces: source [w0, w0, w1] + EOS; target [v0, v0, v1] + EOS."""
    attn = torch.tensor([[0.2, 0.2, 0.1, 0.5],
                         [0.0, 0.1, 0.8, 0.1],
                         [0.3, 0.0, 0.6, 0.1],
                         [0.0, 0.0, 0.0, 1.0]])  # (T+1, S+1): EOS row and column dropped
    m = word_matrix(attn, [0, 0, 1], [0, 0, 1])
    torch.testing.assert_close(m, torch.tensor([[(0.4 + 0.1) / 2, (0.1 + 0.8) / 2], [0.3, 0.6]]))
    assert links(attn, [0, 0, 1], [0, 0, 1]) == {(1, 0), (1, 1)}
    # weight piled on EOS (fairseq#4446) does not take the link: the real words still compete
    assert links(attn, [0, 0, 1], [0, 0, None]) == {(1, 0)}


def test_an_empty_output_is_an_empty_line():
    attn = torch.tensor([[0.3, 0.7]])  # only the EOS step
    assert links(attn, [0], []) == set() and pharaoh(links(attn, [0], [])) == ""
    assert EOS_ID not in (0, 1)  # the EOS row is past the output's pieces, not a word
