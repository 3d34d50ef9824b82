"""A word-alignment gold set given by folder (``evaluate.alignment_gold``), a model's AER on
it for every readout of its attention (:mod:`nmt.components.decoding.forced`), and its maps on
the first pairs for the attention explorer, with the gold links to overlay.

The folder holds the sentence pairs as one file per language, named by its code (``de``,
``en``: the RWTH layout), and the gold links in one ``*.talp`` file, 1-indexed (``i-j`` sure,
``ipj`` possible). Every file is read through the one text reader with the set's encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nmt.components.data.batching import pad, source_batch
from nmt.components.data.text import normalize
from nmt.components.data.tokenizer import EOS, EOS_ID, TextCodec
from nmt.components.decoding.alignment import given_words
from nmt.components.decoding.forced import align_pairs, forced_attention, kind, readouts
from nmt.components.evaluation.explorer import map_set, render
from nmt.components.evaluation.aer import AerScore, Alignment, aer, read_alignments, read_text
from nmt.components.models.base import Seq2SeqModel
from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N
from nmt.components.tracking.run import RunLog
from nmt.components.training.devices import device_of


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


def explorer_entry(model: Seq2SeqModel, codec: TextCodec, gold: GoldSet, n: int, label: str) -> dict:
    """One model's attention-explorer data (:mod:`nmt.components.evaluation.explorer`) on the
    first ``n`` gold pairs: forced decoding on each reference, every map over the pieces (EOS
    last on both sides), and each piece's word (``src_words``, ``tgt_words``; None for EOS;
    pieces past ``max_positions`` are cut), so that the page can frame the gold links."""
    limit = None if model.max_positions is None else model.max_positions - 1  # EOS goes after
    entry: dict = {"label": label, "kind": kind(model), "sentences": []}
    for src_text, ref in zip(gold.sources[:n], gold.targets[:n]):
        src_ids = codec.encode_src([normalize(src_text)])[0][:limit]
        tgt_ids = codec.tgt.encode(normalize(ref)).ids[:limit]
        src, mask = (t.to(device_of(model)) for t in source_batch([src_ids]))
        attn = forced_attention(model, src, mask, pad([tgt_ids + [EOS_ID]]).to(src.device))[0]
        entry["sentences"].append({
            "src": [codec.src.id_to_token(i) for i in src_ids] + [EOS],
            "tgt": [codec.tgt.id_to_token(i) for i in tgt_ids] + [EOS],
            "src_words": [*given_words(codec.src, src_ids), None], "tgt_words": [*given_words(codec.tgt, tgt_ids), None],
            "maps": map_set(attn.float().cpu().numpy()), "output": f"(forced on the reference) {ref}", "beam": []})
    return entry


def explorer_sentences(gold: GoldSet, n: int) -> list[dict]:
    """The page's sentence list for :func:`explorer_entry`: source, reference and gold links
    (``sure``; ``possible``: the possible links that are not sure), as [source word, target word]."""
    return [{"src": s, "ref": r, "gold": {"sure": sorted(map(list, a.sure)), "possible": sorted(map(list, a.possible - a.sure))}}
            for s, r, a in zip(gold.sources[:n], gold.targets[:n], gold.links[:n])]


def log_explorer(run: RunLog, model: Seq2SeqModel, codec: TextCodec, gold: GoldSet, n: int, label: str, out: Path) -> None:
    """``attention/explorer_gold.html`` (the first ``n`` gold pairs, gold links framed) and its
    data ``explorer_gold.json`` (the entry, and under ``page`` the page's sentences with their
    gold links, which `nmt compare` merges), written under ``out`` and logged to ``run``."""
    out.mkdir(parents=True, exist_ok=True)
    entry = explorer_entry(model, codec, gold, n, label)
    (out / N.EXPLORER_GOLD_JSON).write_text(json.dumps({**entry, "page": explorer_sentences(gold, n)}))
    (out / N.EXPLORER_GOLD_HTML).write_text(render([entry], explorer_sentences(gold, n)))
    for name in (N.EXPLORER_GOLD_JSON, N.EXPLORER_GOLD_HTML):
        run.log_artifact(out / name, N.ATTENTION_DIR)
