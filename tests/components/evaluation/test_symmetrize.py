"""Symmetrization of two directions, against lilt/alignment-scripts' combined files of the
RWTH set (GIZA++ link for link) and by hand."""

from __future__ import annotations

import pytest

from nmt.components.evaluation.aer import aer, read_alignments
from nmt.components.evaluation.symmetrize import symmetrize

LATIN1 = "latin-1"


def _directions(base, system):
    fwd = read_alignments(base / f"{system}.test.deen.talp")
    rev = read_alignments(base / f"{system}.test.deen.reverse.talp", reverse=True)
    return [(f.sure, r.sure) for f, r in zip(fwd, rev)]


@pytest.mark.parametrize("heuristic, file", [("intersection", "intersection"), ("union", "union"),
                                             ("grow-diag", "grow-diagonal"), ("grow-diag-final-and", "grow-diagonal-final")])
def test_giza_combinations_come_out_link_for_link(alignment_gold, heuristic, file):
    base = alignment_gold / "baselines"
    expected = read_alignments(base / f"giza.test.deen.{file}.talp")
    got = [symmetrize(f, r, heuristic, grow_both_unaligned=True) for f, r in _directions(base, "giza")]
    assert [e.sure for e in expected] == got


def test_fast_align_combinations_within_a_few_links(alignment_gold):
    """5 of 508 fast_align lines differ by a link or two (which neighbour the grow step
    takes first); the AER agrees to 0.03."""
    base = alignment_gold / "baselines"
    gold = read_alignments(alignment_gold / "alignmentDeEn.talp", one_indexed=True, encoding=LATIN1)
    pairs = _directions(base, "fastalign")
    for heuristic, file in (("grow-diag", "grow-diagonal"), ("grow-diag-final-and", "grow-diagonal-final")):
        expected = read_alignments(base / f"fastalign.test.deen.{file}.talp")
        got = [symmetrize(f, r, heuristic, grow_both_unaligned=True) for f, r in pairs]
        assert sum(g != e.sure for g, e in zip(got, expected)) <= 5
        assert aer(got, gold).aer == pytest.approx(aer(expected, gold).aer, abs=0.03)


def test_by_hand():
    """fwd = {0-0, 1-1, 2-1}, rev = {0-0, 1-1, 1-2, 3-3}: the intersection {0-0, 1-1} grows
    to its neighbours 2-1 (source 2 unaligned) and 1-2 (target 2 unaligned); 3-3 touches no
    kept link, so only a final step adds it."""
    fwd, rev = {(0, 0), (1, 1), (2, 1)}, {(0, 0), (1, 1), (1, 2), (3, 3)}
    assert symmetrize(fwd, rev, "intersection") == {(0, 0), (1, 1)}
    assert symmetrize(fwd, rev, "grow-diag") == {(0, 0), (1, 1), (2, 1), (1, 2)}
    assert symmetrize(fwd, rev, "grow-diag-final-and") == {(0, 0), (1, 1), (2, 1), (1, 2), (3, 3)}
    assert symmetrize(fwd, rev, "grow-diag", grow_both_unaligned=True) == {(0, 0), (1, 1)}
    assert symmetrize(set(), set()) == set()
    with pytest.raises(ValueError, match="unknown symmetrization 'gdfa'; valid: intersection, union"):
        symmetrize(fwd, rev, "gdfa")
