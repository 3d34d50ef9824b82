"""HuggingFace datasets as a source: ``load_dataset(path, name, revision=, data_files=)``, the
split names mapped by config, the fields named by config or found by the hub's convention
(``translation: {xx: ..., yy: ...}``, as WMT and IWSLT use), else a column per language."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

from nmt.components.data.source_config import CARVED_TEST, CARVED_VAL, HFData
from nmt.components.data.sources import BATCH, Batch, Corpus, DataError, Plan, sha256_file

HUB = ("huggingface.co", 443)


def hub_reachability() -> str:
    """A few words on whether the hub could have answered: offline mode, a 3 s probe."""
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return "the hub was not consulted (offline mode: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)"
    try:
        socket.create_connection(HUB, timeout=3).close()
    except OSError as err:
        return f"the hub is not reachable from here ({err.__class__.__name__}: {err})"
    return "the hub is reachable, so the name, config or revision is wrong"


def load(d: HFData):
    """The ``DatasetDict`` the config names; a :class:`DataError` saying why it cannot load."""
    import datasets

    what = f"data.path={d.path!r}" + (f" data.name={d.name!r}" if d.name else "")
    try:
        ds = datasets.load_dataset(d.path, d.name, revision=d.revision, data_files=d.data_files)
    except Exception as err:  # noqa: BLE001 - the loader raises a dozen kinds; all mean "cannot load"
        first = (str(err).strip().splitlines() or [err.__class__.__name__])[0][:300]
        raise DataError(f"{what}: cannot load the dataset ({first}); {hub_reachability()}. Check the name "
                        "and config on the hub, or point data.path at a local dataset folder") from None
    if not isinstance(ds, datasets.DatasetDict):
        raise DataError(f"{what}: load_dataset gave one split, not named splits; set data.data_files per split")
    return ds


def _columns(dset, d: HFData, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (column, key) path to each side: (field,) or ("translation", lang)."""
    cols = list(dset.column_names)
    trans = dset.features.get("translation")
    langs = list(getattr(trans, "languages", None) or (trans.keys() if isinstance(trans, dict) else []))
    out = []
    for field, lang, key in ((d.src_field, d.src_lang, "src"), (d.tgt_field, d.tgt_lang, "tgt")):
        if field is not None:
            if field not in cols:
                raise DataError(f"data.{key}_field={field!r}: split {split!r} of {d.path} has no such field; "
                                f"it has: {', '.join(cols)}")
            out.append((field,))
        elif lang in langs:
            out.append(("translation", lang))
        elif lang in cols:
            out.append((lang,))
        else:
            have = f"translation languages: {', '.join(langs)}" if langs else f"fields: {', '.join(cols)}"
            raise DataError(f"data.{key}_lang={lang!r}: split {split!r} of {d.path} has no such language "
                            f"({have}); set data.{key}_lang, or data.{key}_field to a field")
    return out[0], out[1]


def _pick(batch: dict, path: tuple[str, ...]) -> list:
    """The side's values as they are (a row's null ``translation`` gives None): Corpus.pairs checks them."""
    col = batch[path[0]]
    return [row.get(path[1]) if isinstance(row, dict) else None for row in col] if len(path) == 2 else list(col)


def _corpus(dset, d: HFData, split: str, limit: int | None) -> Corpus:
    src, tgt = _columns(dset, d, split)
    part = dset.select_columns(list(dict.fromkeys([src[0], tgt[0]])))
    if limit:
        part = part.select(range(min(limit, len(part))))

    def batches() -> Iterator[Batch]:
        for b in part.iter(batch_size=BATCH):
            yield _pick(b, src), _pick(b, tgt)

    files = (d.data_files or {}).get(split) if isinstance(d.data_files, dict) else None
    where = f"{d.path}:{split}" + (f" ({files})" if isinstance(files, str) else "")
    return Corpus(name=f"{d.path}:{split}", batches=batches, fields=(".".join(src), ".".join(tgt)), row="row",
                  label=where)


def _split(ds, name: str, setting: str):
    if name not in ds:
        raise DataError(f"{setting}={name!r}: the dataset has no such split; it has: {', '.join(ds)}")
    return ds[name]


def _local_files(d: HFData) -> list[Path]:
    """Files of a local dataset folder or local ``data_files``, sorted: what the checksum covers."""
    root = Path(d.path).expanduser()
    found = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    for value in (d.data_files or {}).values():
        for f in [value] if isinstance(value, str) else list(value):
            if Path(f).expanduser().is_file():
                found.append(Path(f).expanduser())
    return list(dict.fromkeys(found))


def hf_plan(d: HFData) -> Plan:
    """Load (from the cache, the hub or a local folder) and map the splits; nothing read yet."""
    ds = load(d)
    splits = {"train": [_corpus(_split(ds, s, "data.train"), d, s, d.train_limit) for s in d.train]}
    carve = {}
    if d.val:
        splits[CARVED_VAL] = [_corpus(_split(ds, d.val, "data.val"), d, d.val, d.val_limit)]
    else:
        carve[CARVED_VAL] = d.val_size
    for ours, theirs in d.tests.items():
        splits[ours] = [_corpus(_split(ds, theirs, f"data.test.{ours}"), d, theirs, d.test_limit)]
    if not d.tests:
        carve[CARVED_TEST] = d.test_size
    used = [*d.train, *([d.val] if d.val else []), *d.tests.values()]
    identity = {"data.source.dataset": f"{d.path}/{d.name or ''}@{d.revision or 'default'}",
                "data.source.fingerprint": ",".join(ds[s]._fingerprint for s in dict.fromkeys(used))}
    local = _local_files(d)
    if local:  # local data: its content, not only its path and mtime, names it
        identity["data.source.sha256"] = ",".join(sha256_file(f)[:12] for f in local)
    return Plan(splits, carve, identity, lineage_path=d.path)
