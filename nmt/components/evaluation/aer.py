"""Alignment Error Rate (Och & Ney 2003, section 5) of word alignments against human gold
links, and the reader of alignment files in the Pharaoh format.

A gold set marks each link *sure* (S, ``i-j``) or *possible* (``ipj``); the possible set
P includes S. For predicted links A, summed over the corpus (not averaged per sentence):

    precision = |A ∩ P| / |A|         recall = |A ∩ S| / |S|
    AER       = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)            (Och & Ney 2003, eq. 6)

All three on the project's one 0-100 scale; lower AER is better. A link ``(i, j)`` is
0-indexed source word i to target word j, whatever the file's own convention (the RWTH gold
is 1-indexed; ``--one-indexed`` files are shifted on reading; ``reverse`` files, written
target-source, are swapped).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.components.data.text import ENCODING, TextDecodeError, read_lines
from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N

Link = tuple[int, int]  # (source word, target word), 0-indexed


@dataclass(frozen=True)
class Alignment:
    """One sentence pair's links: ``sure`` and ``possible`` (possible includes sure; a
    prediction has only sure links)."""

    sure: frozenset[Link]
    possible: frozenset[Link]

    @classmethod
    def of(cls, links: Iterable[Link]) -> Alignment:
        s = frozenset(links)
        return cls(s, s)


@dataclass(frozen=True)
class AerScore:
    precision: float  # 0-100
    recall: float     # 0-100
    aer: float        # 0-100, lower is better
    links: int        # |A|, predicted links
    sentences: int


def parse_line(line: str, *, one_indexed: bool = False, reverse: bool = False, where: str = "") -> Alignment:
    """``"1-2 3p4"`` -> its links, 0-indexed, source first; ConfigError naming ``where`` for a
    token that is not ``i-j`` / ``ipj``."""
    sure, possible = set(), set()
    shift = 1 if one_indexed else 0
    for tok in line.split():
        sep = "-" if "-" in tok else "p"
        i, _, j = tok.partition(sep)
        if not (i.isdigit() and j.isdigit()) or int(i) < shift or int(j) < shift:
            raise ConfigError(f"{where}: {tok[:20]!r} is not a link i-j or ipj "
                              f"({'1' if one_indexed else '0'}-indexed); fix that line")
        link = (int(i) - shift, int(j) - shift)
        link = (link[1], link[0]) if reverse else link
        possible.add(link)
        if sep == "-":
            sure.add(link)
    return Alignment(frozenset(sure), frozenset(possible))


def read_alignments(path: Path, *, one_indexed: bool = False, reverse: bool = False,
                    encoding: str = ENCODING) -> list[Alignment]:
    """One :class:`Alignment` per line of a Pharaoh file; a final empty line (the RWTH files
    end with one) is dropped. Errors name the file and line."""
    lines = read_text(path, what="alignment file", encoding=encoding)
    return [parse_line(ln, one_indexed=one_indexed, reverse=reverse, where=f"{path}: line {n}")
            for n, ln in enumerate(lines, start=1)]


def read_text(path: Path, *, what: str, encoding: str = ENCODING) -> list[str]:
    """The lines of a corpus or alignment file through the project's one text reader, with
    ``encoding`` (the RWTH gold set is Latin-1); the one empty line its files end with is
    dropped. ConfigError (one line) for a missing file or undecodable bytes."""
    try:
        lines = list(read_lines(Path(path), what=what, encoding=encoding))
    except (FileNotFoundError, TextDecodeError) as err:
        raise ConfigError(str(err)) from None
    if lines and not lines[-1].strip():
        lines.pop()
    return lines


def aer(predicted: Sequence[Alignment | Iterable[Link]], gold: Sequence[Alignment]) -> AerScore:
    """Corpus precision, recall and AER of ``predicted`` links against ``gold`` (module doc)."""
    if len(predicted) != len(gold):
        raise ConfigError(f"{len(predicted)} predicted alignments for {len(gold)} gold ones; "
                          "give one line per sentence pair of the gold set")
    a_s = a_p = n_a = n_s = 0
    for pred, g in zip(predicted, gold):
        a = pred.sure if isinstance(pred, Alignment) else frozenset(pred)
        a_s += len(a & g.sure)
        a_p += len(a & g.possible)
        n_a += len(a)
        n_s += len(g.sure)
    precision = a_p / n_a if n_a else 0.0
    recall = a_s / n_s if n_s else 0.0
    error = 1.0 - (a_s + a_p) / (n_a + n_s) if n_a + n_s else 0.0
    return AerScore(100 * precision, 100 * recall, 100 * error, n_a, len(gold))


def pharaoh(links: Iterable[Link]) -> str:
    """Links as one Pharaoh line, ``i-j`` 0-indexed, sorted by source then target word."""
    return " ".join(f"{i}-{j}" for i, j in sorted(set(links)))


def aer_key(readout: str) -> str:
    """``aer/layer_2_head_1`` for readout ``layer 2 head 1``."""
    return N.AER_PREFIX + readout.replace(" ", "_")


def aer_columns(table: dict[str, AerScore]) -> dict[str, list]:
    """The table as columns, for ``log_table`` (``alignment/aer.json``)."""
    return {"readout": list(table), "precision": [s.precision for s in table.values()],
            "recall": [s.recall for s in table.values()], "aer": [s.aer for s in table.values()],
            "links": [s.links for s in table.values()]}
