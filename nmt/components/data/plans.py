"""From a data config to a :class:`~nmt.components.data.sources.Plan`: which corpora each split
reads. Everything that can be checked without reading the corpora (paths, split names,
fields of a dataset) is checked here, before any run starts."""

from __future__ import annotations

from pathlib import Path

from nmt.components.data.source_config import CARVED_TEST, CARVED_VAL, DataConfig, FilesData, HFData, Multi30kData
from nmt.components.data.sources import Corpus, DataError, Plan, checksums, file_corpus


def _check_file(path: Path, setting: str) -> None:
    if path.is_dir():
        raise DataError(f"{setting}: {path} is a directory; name a file (plain or .gz) instead")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{setting}: {path} is empty; give it one pair per line, or leave it out of the config")


def _checked(corpus: Corpus, setting: str) -> Corpus:
    for f in corpus.files:
        _check_file(f, setting)
    return corpus


def multi30k_plan(d: Multi30kData) -> Plan:
    """Multi30k's layout: ``<split>.<lang>.gz`` for the splits the pair has."""
    from nmt.components.data.multi30k import download, resolve_data_dir, splits_for_pair
    from nmt.components.tracking.uri import project_home

    cache = project_home() / ".nmt" / "multi30k"
    data_dir = resolve_data_dir(d.dir, cache)
    splits = splits_for_pair(d.src_lang, d.tgt_lang)
    if data_dir == cache:  # no local copy given: fetch (skips files already verified)
        download([f"{s}.{lang}.gz" for s in splits for lang in (d.src_lang, d.tgt_lang)], cache)
    limits = {"train": d.train_limit, "val": d.val_limit}
    plan = {s: [_checked(file_corpus(data_dir, f"{s}", d.src_lang, d.tgt_lang, setting=f"data.dir ({s})",
                                     limit=limits.get(s, d.test_limit)), "data.dir")] for s in splits}
    return Plan(plan, identity={"data.dir": str(data_dir), "data.source_digest": checksums(plan)},
                lineage_path=str(data_dir))


def files_plan(d: FilesData) -> Plan:
    """Local files: a stem per side, or a TSV/JSONL file, per split; missing val/test carved."""
    base = Path(d.dir).expanduser().resolve() if d.dir else Path.cwd()
    if d.dir and not base.is_dir():
        raise DataError(f"data.dir={d.dir}: no such directory; point it at the folder of your corpus files")

    def corpus(entry: str, setting: str, limit: int | None) -> Corpus:
        c = file_corpus(base, entry, d.src_lang, d.tgt_lang, setting=setting,
                        fields=(d.src_field, d.tgt_field), limit=limit)
        return _checked(c, setting)

    splits = {"train": [corpus(e, f"data.train[{i}]", d.train_limit) for i, e in enumerate(d.train)]}
    carve = {}
    if d.val:
        splits[CARVED_VAL] = [corpus(d.val, "data.val", d.val_limit)]
    else:
        carve[CARVED_VAL] = d.val_size
    for name, entry in d.tests.items():
        splits[name] = [corpus(entry, f"data.test.{name}", d.test_limit)]
    if not d.tests:
        carve[CARVED_TEST] = d.test_size
    return Plan(splits, carve, {"data.dir": str(base), "data.source_digest": checksums(splits)},
                lineage_path=str(base))


def plan_for(d: DataConfig) -> Plan:
    """The source's plan; :class:`DataError` for what is missing or malformed."""
    if isinstance(d, Multi30kData):
        return multi30k_plan(d)
    if isinstance(d, FilesData):
        return files_plan(d)
    if isinstance(d, HFData):
        from nmt.components.data.hf import hf_plan
        return hf_plan(d)
    raise DataError(f"data.kind={d.kind!r}: no reader for this source")
