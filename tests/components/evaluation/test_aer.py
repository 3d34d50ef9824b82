"""AER (Och & Ney 2003) and the Pharaoh reader, against the RWTH gold set's published table."""

from __future__ import annotations

import pytest

from nmt.components.evaluation.aer import Alignment, aer, parse_line, pharaoh, read_alignments, read_text
from nmt.components.system.errors import ConfigError

LATIN1 = "latin-1"
# the README's table: file, written target-source (swap), AER % to 3 decimals
BASELINES = [("giza.test.deen.talp", 20.961), ("giza.test.deen.reverse.talp", 23.124),
             ("giza.test.deen.grow-diagonal.talp", 21.414), ("giza.test.deen.grow-diagonal-final.talp", 20.555),
             ("fastalign.test.deen.talp", 28.459), ("fastalign.test.deen.reverse.talp", 31.962),
             ("fastalign.test.deen.grow-diagonal.talp", 27.020),
             ("fastalign.test.deen.grow-diagonal-final.talp", 27.674)]


def test_the_scorer_reproduces_the_baseline_table(alignment_gold):
    gold = read_alignments(alignment_gold / "alignmentDeEn.talp", one_indexed=True, encoding=LATIN1)
    assert len(gold) == 508
    assert sum(len(g.sure) for g in gold) == 9613 and sum(len(g.possible - g.sure) for g in gold) == 921
    for name, expected in BASELINES:
        predicted = read_alignments(alignment_gold / "baselines" / name, reverse="reverse" in name)
        assert round(aer(predicted, gold).aer, 3) == expected, name


def test_the_latin1_corpus_reads_through_the_one_text_reader(alignment_gold):
    de = read_text(alignment_gold / "de", what="gold source", encoding=LATIN1)
    en = read_text(alignment_gold / "en", what="gold target", encoding=LATIN1)
    assert len(de) == len(en) == 508  # the final empty line dropped
    assert "daß" in de[0] and all(ln.strip() for ln in de + en)
    with pytest.raises(ConfigError, match=r"/de: line 1, byte \d+ \(0xdf\) is not UTF-8"):
        read_text(alignment_gold / "de", what="gold source")  # the default is UTF-8: named, one line


def test_aer_by_hand():
    """Och & Ney's formula on one pair: S = {0-0, 1-1}, P = S + {1-2}; A = {0-0, 1-2, 2-2}."""
    gold = [parse_line("1-1 2-2 2p3", one_indexed=True)]
    assert gold[0] == Alignment(frozenset({(0, 0), (1, 1)}), frozenset({(0, 0), (1, 1), (1, 2)}))
    s = aer([{(0, 0), (1, 2), (2, 2)}], gold)
    assert (s.precision, s.recall) == pytest.approx((200 / 3, 50.0))
    assert s.aer == pytest.approx(100 * (1 - (1 + 2) / (3 + 2)))
    assert aer([gold[0].sure], gold).aer == 0.0 and aer([set()], gold).aer == 100.0


def test_reverse_files_are_swapped_and_lines_printed_sorted():
    assert parse_line("3-1 0-2", reverse=True).sure == {(1, 3), (2, 0)}
    assert pharaoh([(2, 0), (0, 1), (0, 1)]) == "0-1 2-0"


def test_a_bad_link_names_the_file_and_line(tmp_path):
    f = tmp_path / "a.talp"
    f.write_text("0-1 1-2\n0-x\n")
    with pytest.raises(ConfigError, match=r"a.talp: line 2: '0-x' is not a link"):
        read_alignments(f)
    with pytest.raises(ConfigError, match="2 predicted alignments for 1 gold"):
        aer([set(), set()], [Alignment.of([])])
