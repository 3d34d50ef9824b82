"""Symmetrization of two directional word alignments (Och & Ney 2003, section 4.1; Koehn
et al. 2003, section 3.3), as Moses describes it (``train-model.perl --alignment``): how a
statistical aligner's two directions are combined before scoring (``grow-diag-final-and`` is
what eflomal's and fast_align's authors use).

Links are ``(source word, target word)``, 0-indexed, both directions in that order (a
target-source file is swapped on reading: :func:`nmt.components.evaluation.aer.parse_line`).

- intersection: high precision; union: high recall;
- grow-diag: start from the intersection; visiting the grid source word by source word,
  target word by target word, pass after pass until nothing is added, add each union link
  next to a kept one (8 neighbours, diagonals included) whose source *or* target word is
  still unaligned;
- final / final-and: then, for the forward links and after them the reverse ones, add each
  link whose source *or* (final-and: *and*) target word is still unaligned.

``grow_both_unaligned=True`` is the stricter grow step of ``lilt/alignment-scripts``
(``combine_bidirectional_alignments.py``: a neighbour is added only when *both* its words are
unaligned); its ``grow-diagonal`` is ``grow-diag`` and its ``grow-diagonal-final`` is
``grow-diag-final-and`` with it, link for link (tests/components/evaluation/test_symmetrize.py).
"""

from __future__ import annotations

from collections.abc import Iterable

Link = tuple[int, int]
HEURISTICS = ("intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and")
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def symmetrize(forward: Iterable[Link], reverse: Iterable[Link], heuristic: str = "grow-diag-final-and", *,
               grow_both_unaligned: bool = False) -> set[Link]:
    """One sentence pair's links from its two directions, by ``heuristic`` (one of HEURISTICS)."""
    if heuristic not in HEURISTICS:
        raise ValueError(f"unknown symmetrization {heuristic!r}; valid: {', '.join(HEURISTICS)}")
    fwd, rev = set(forward), set(reverse)
    union = fwd | rev
    if heuristic == "intersection" or not union:
        return fwd & rev
    if heuristic == "union":
        return union
    grid = (max(i for i, _ in union) + 1, max(j for _, j in union) + 1)  # no link lies outside
    kept = _Kept(fwd & rev)
    kept.grow_diag(union, grid, both=grow_both_unaligned)
    if heuristic != "grow-diag":
        for direction in (fwd, rev):
            kept.final(direction, grid, both=heuristic == "grow-diag-final-and")
    return kept.links


class _Kept:
    """The links kept so far, and which source and target words they align."""

    def __init__(self, links: set[Link]) -> None:
        self.links = set(links)
        self.src = {i for i, _ in links}
        self.tgt = {j for _, j in links}

    def _free(self, i: int, j: int, both: bool) -> bool:
        return (i not in self.src and j not in self.tgt) if both else (i not in self.src or j not in self.tgt)

    def _add(self, i: int, j: int) -> None:
        self.links.add((i, j))
        self.src.add(i)
        self.tgt.add(j)

    def grow_diag(self, union: set[Link], grid: tuple[int, int], *, both: bool) -> None:
        added = True
        while added:
            added = False
            for i in range(grid[0]):
                for j in range(grid[1]):
                    if (i, j) not in self.links:
                        continue
                    for p in ((i + di, j + dj) for di, dj in _NEIGHBOURS):
                        if p in union and p not in self.links and self._free(*p, both):
                            self._add(*p)
                            added = True

    def final(self, direction: set[Link], grid: tuple[int, int], *, both: bool) -> None:
        for i in range(grid[0]):
            for j in range(grid[1]):
                if (i, j) in direction and (i, j) not in self.links and self._free(i, j, both):
                    self._add(i, j)
