"""``nmt align``: word alignments of given sentence pairs by forced decoding
(:mod:`nmt.components.decoding.forced`), as Pharaoh lines; with a gold set, the AER
(:mod:`nmt.components.evaluation.aer`) of every readout the model offers (Bahdanau's alpha;
the Transformer's mean, penultimate layer, each layer and each head; the GRU's saliency),
printed as a table and logged to an ``align`` run (``aer/<readout>`` metrics and the
``alignment/aer.json`` table).

Choose a Transformer's layer on a development set (``--gold`` on held-out pairs), then read
the test set with that ``--layer``: the best layer of the test set itself is an optimistic
figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.forced import align_pairs, check_readout, default_readout, readouts
from nmt.components.evaluation.aer import AerScore, aer, aer_columns, aer_key, pharaoh, read_alignments, read_text
from nmt.components.models.base import Seq2SeqModel
from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore


@dataclass(frozen=True)
class AlignOutputs:
    lines: list[str]                      # Pharaoh, one per pair, of ``readout``
    readout: str
    table: dict[str, AerScore] | None     # readout -> its AER against the gold set
    run_id: str | None = None             # the align run the table was logged to


def read_pairs(src: Path, tgt: Path, encoding: str) -> tuple[list[str], list[str]]:
    """The two sides, one sentence a line, through the one text reader with ``encoding``."""
    sources = read_text(src, what="--src", encoding=encoding)
    targets = read_text(tgt, what="--tgt", encoding=encoding)
    if len(sources) != len(targets):
        raise ConfigError(f"--src {src} has {len(sources)} lines, --tgt {tgt} {len(targets)}; "
                          "give one target line per source line")
    return sources, targets


def run_align(model: Seq2SeqModel, codec: TextCodec, sources: list[str], targets: list[str], *,
              name: str | None = None, gold: Path | None = None, gold_one_indexed: bool = True,
              encoding: str = "utf-8", store: RunStore | None = None, model_uri: str = "") -> AlignOutputs:
    """Links of each pair under readout ``name`` (the model's default when None); with
    ``gold``, every readout scored against it (and logged to an align run in ``store``)."""
    name = name or default_readout(model)
    check_readout(name, model)  # a bad --layer fails before any work
    names = readouts(model) if gold else [name]
    gold_links = read_alignments(gold, one_indexed=gold_one_indexed, encoding=encoding) if gold else None
    if gold_links is not None and len(gold_links) != len(sources):
        raise ConfigError(f"--gold {gold} has {len(gold_links)} lines for {len(sources)} sentence pairs")
    found = align_pairs(model, codec, sources, targets, names)
    lines = [pharaoh(links) for links in found[name]]
    if gold_links is None:
        return AlignOutputs(lines, name, None)
    table = {n: aer(found[n], gold_links) for n in names}
    run_id = log_table(store, table, model, model_uri, gold) if store is not None else None
    return AlignOutputs(lines, name, table, run_id)


def log_table(store: RunStore, table: dict[str, AerScore], model: Seq2SeqModel, model_uri: str, gold: Path) -> str:
    """An ``align`` run holding ``aer/<readout>`` metrics and the whole table; its id."""
    with store.run("align", tags={N.TAG_STAGE: "align", N.TAG_ARCH: model.cfg.label},
                   params={"model": model_uri, "gold": str(gold)}) as run:
        run.log_metrics({aer_key(n): s.aer for n, s in table.items()})
        run.log_table(aer_columns(table), f"{N.ALIGNMENT_DIR}/{N.AER_TABLE}")
        return run.run_id


def format_table(table: dict[str, AerScore], label: str) -> str:
    """The table as text, best AER first; precision, recall and AER in % (lower AER is better)."""
    rows = sorted(table.items(), key=lambda kv: kv[1].aer)
    width = max(len("readout"), *(len(n) for n in table))
    lines = [f"AER of {label} ({rows[0][1].sentences} pairs; lower is better)",
             f"{'readout':{width}s}  precision  recall     AER  links"]
    lines += [f"{n:{width}s}  {s.precision:9.2f}  {s.recall:6.2f}  {s.aer:6.2f}  {s.links:5d}" for n, s in rows]
    return "\n".join(lines)
