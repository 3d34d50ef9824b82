"""A word-alignment gold set given by folder (``evaluate.alignment_gold``), and a model's AER on
it for every readout of its attention (:mod:`nmt.components.decoding.forced`).

The folder holds the sentence pairs as one file per language, named by its code (``de``,
``en``: the RWTH layout), and the gold links in one ``*.talp`` file, 1-indexed (``i-j`` sure,
``ipj`` possible). Every file is read through the one text reader with the set's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.forced import align_pairs, readouts
from nmt.components.evaluation.aer import AerScore, Alignment, aer, read_alignments, read_text
from nmt.components.models.base import Seq2SeqModel
from nmt.components.system.errors import ConfigError


@dataclass(frozen=True)
class GoldSet:
    path: Path
    sources: list[str]
    targets: list[str]
    links: list[Alignment]   # per pair, 0-indexed (source word, target word)


def read_gold_set(folder: str | Path, src_lang: str, tgt_lang: str, encoding: str,
                  what: str = "evaluate.alignment_gold") -> GoldSet:
    """The pairs and gold links of ``folder``; a one-line ConfigError naming ``what`` for a
    missing folder, file or *.talp, or sides and links of different lengths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{what}: no folder {folder}; give a gold set's folder (<src>, <tgt>, one *.talp) or null")
    talp = sorted(folder.glob("*.talp"))
    if len(talp) != 1:
        raise ConfigError(f"{what}: {folder} holds {len(talp)} *.talp files; it needs exactly one, the gold links")
    for lang in (src_lang, tgt_lang):
        if not (folder / lang).is_file():
            raise ConfigError(f"{what}: {folder} has no file {lang!r}; the sentences go in files named by language")
    sources = read_text(folder / src_lang, what=f"{what} {src_lang}", encoding=encoding)
    targets = read_text(folder / tgt_lang, what=f"{what} {tgt_lang}", encoding=encoding)
    links = read_alignments(talp[0], one_indexed=True, encoding=encoding)
    if not len(sources) == len(targets) == len(links):
        raise ConfigError(f"{what}: {folder} has {len(sources)} {src_lang} lines, {len(targets)} {tgt_lang} lines "
                          f"and {len(links)} gold lines; they must match")
    return GoldSet(folder, sources, targets, links)


def score_readouts(model: Seq2SeqModel, codec: TextCodec, gold: GoldSet) -> dict[str, AerScore]:
    """Readout -> AER of ``model`` on ``gold`` (forced decoding on each reference)."""
    names = readouts(model)
    found = align_pairs(model, codec, gold.sources, gold.targets, names)
    return {n: aer(found[n], gold.links) for n in names}
