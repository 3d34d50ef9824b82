"""Data sources on small local data the tests write: local files (a file per side, TSV,
JSONL; plain and .gz) and HuggingFace datasets (parquet files and a local dataset folder,
through the same ``load_dataset`` call as a hub name), each bad input a one-line error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import numpy as np
import pytest

from nmt.components.system.errors import ConfigError
from nmt.components.data.build import build
from nmt.components.data.plans import plan_for
from nmt.components.data.sources import DataError
from nmt.pipeline.config import load_config

PAIRS = [(f"qa sentence {i} number {i % 7}", f"qb phrase {i} count {i % 5}") for i in range(60)]


def write(path: Path, lines: list[str]) -> Path:
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def files_cfg(tmp_path: Path, *extra: str):
    return load_config(["data=files", f"data.dir={tmp_path}", "data.src_lang=qa", "data.tgt_lang=qb",
                        "data.vocab_size=100", "data.val_size=5", "data.test_size=5", *extra]).data


def built(d, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir(parents=True, exist_ok=True)
    return build(plan_for(d), d, work)


def texts(ds) -> list[tuple[str, str]]:
    return list(zip(ds["src"], ds["tgt"]))


@pytest.mark.parametrize("layout", ["sides", "sides.gz", "tsv", "tsv.gz", "jsonl", "jsonl.gz"])
def test_each_file_layout_reads_the_same_pairs(tmp_path, layout):
    kind, gz = layout.split(".")[0], ".gz" if layout.endswith(".gz") else ""
    if kind == "sides":
        write(tmp_path / f"c.qa{gz}", [s for s, _ in PAIRS])
        write(tmp_path / f"c.qb{gz}", [t for _, t in PAIRS])
        entry = "c"
    elif kind == "tsv":
        entry = write(tmp_path / f"c.tsv{gz}", [f"{s}\t{t}" for s, t in PAIRS]).name
    else:  # half of the rows in the hub's translation convention
        rows = [{"qa": s, "qb": t} if i % 2 else {"translation": {"qa": s, "qb": t}} for i, (s, t) in enumerate(PAIRS)]
        entry = write(tmp_path / f"c.jsonl{gz}", [json.dumps(r) for r in rows]).name
    b = built(files_cfg(tmp_path, f"data.train=[{entry}]", "data.decontaminate=false"), tmp_path)
    everything = texts(b.data["train"]) + texts(b.data["val"]) + texts(b.data["test"])
    assert sorted(everything) == sorted(PAIRS)
    assert b.stats["train/corpus0/raw_pairs"] == 60 and b.stats["train/pairs"] == 50
    assert list(b.data["train"]["idx"]) == list(range(50))


def test_several_training_corpora_are_concatenated_and_counted(tmp_path):
    write(tmp_path / "a.tsv", [f"{s}\t{t}" for s, t in PAIRS[:40]])
    write(tmp_path / "b.qa.gz", [s for s, _ in PAIRS[40:]])
    write(tmp_path / "b.qb.gz", [t for _, t in PAIRS[40:]])
    write(tmp_path / "held.tsv", ["qa held one\tqb held one", "qa held two\tqb held two"])
    b = built(files_cfg(tmp_path, "data.train=[a.tsv,b]", "data.val=held.tsv", "data.test={news: held.tsv}",
                        "data.decontaminate=false"), tmp_path)
    assert b.corpora == {str(tmp_path / "a.tsv"): 40, str(tmp_path / "b"): 20}
    assert texts(b.data["train"]) == PAIRS and list(b.data) == ["train", "val", "news"]


def test_carved_splits_follow_the_pair_not_its_position(tmp_path):
    write(tmp_path / "c.tsv", [f"{s}\t{t}" for s, t in PAIRS])
    write(tmp_path / "r.tsv", [f"{s}\t{t}" for s, t in reversed(PAIRS)])
    forward = built(files_cfg(tmp_path, "data.train=[c.tsv]"), tmp_path / "f")
    backward = built(files_cfg(tmp_path, "data.train=[r.tsv]"), tmp_path / "b")
    for split in ("val", "test"):
        assert sorted(texts(forward.data[split])) == sorted(texts(backward.data[split]))
        assert len(forward.data[split]) == 5
    carved = set(texts(forward.data["val"]) + texts(forward.data["test"]))
    assert not carved & set(texts(forward.data["train"]))
    other_seed = built(files_cfg(tmp_path, "data.train=[c.tsv]", "data.seed=7"), tmp_path / "s")
    assert set(texts(other_seed.data["val"])) != set(texts(forward.data["val"]))


def test_cleaning_counts_each_filter(tmp_path):
    rows = ["qa one two\tqb one two", "qa one two\tqb one two",          # a duplicate
            " \tqb nothing", "qa a b c d e f g h\tqb x",                  # empty; ratio 9
            "qa " + "w " * 30 + "\tqb " + "w " * 30,                      # over max_tokens=20
            "qa caf\u00e9\u200b  here\tqb held target", "qa fine\tqb fine", "qa other\tqb other"]
    write(tmp_path / "c.tsv", rows)
    write(tmp_path / "t.tsv", ["qa held source\tqb held target", "qa fine\tqb unrelated"])
    b = built(files_cfg(tmp_path, "data.train=[c.tsv]", "data.val=t.tsv", "data.test={test: t.tsv}",
                        "data.max_tokens=20"), tmp_path)
    s = b.stats
    assert (s["train/dropped_empty"], s["train/dropped_long"], s["train/dropped_ratio"]) == (1, 1, 1)
    assert (s["train/dropped_duplicate"], s["train/dropped_contaminated"], s["train/normalized"]) == (1, 2, 3)
    assert texts(b.data["train"]) == [("qa one two", "qb one two"), ("qa other", "qb other")]


def test_a_corpus_that_cleaning_empties_says_which_filter(tmp_path):
    write(tmp_path / "c.tsv", [f"qa {i} " + "w " * 30 + f"\tqb w {i}" for i in range(12)] + ["\tqb"] * 3)
    write(tmp_path / "t.tsv", ["qa held\tqb held"])
    with pytest.raises(DataError, match=r"no pairs in split 'train' \(15 read; removed: empty 3, long 12\); "
                                        r"raise data.max_tokens \(now 20; subword tokens per side\)"):
        built(files_cfg(tmp_path, "data.train=[c.tsv]", "data.max_tokens=20", "data.val=t.tsv",
                        "data.test={t: t.tsv}"), tmp_path)


BAD_FILES = {  # file name -> (content, the message expected)
    "counts": ({"c.qa": ["a", "b", "c"], "c.qb": ["a", "b"]},
               r"line counts differ: .*c\.qa has 3 lines, .*c\.qb has 2; the first unpaired line is line 3"),
    "tsv": ({"c.tsv": ["a\tb", "a\tb\tc"]}, r"c\.tsv: line 2 has 3 tab-separated fields, expected 2"),
    "json": ({"c.jsonl": ['{"qa": "a", "qb": "b"}', '{"qa": "a", ']}, r"c\.jsonl: line 2 is not valid JSON"),
    "field": ({"c.jsonl": ['{"de": "a", "en": "b"}']}, r"line 1 has no field 'qa' \(it has: de, en\); set data.src_field"),
    "json_type": ({"c.jsonl": ['{"qa": null, "qb": "b"}']}, r"c\.jsonl: line 1, field 'qa' is null, not a string"),
    "json_list": ({"c.jsonl": ['["a", "b"]']}, r"c\.jsonl: line 1 is a JSON list, expected an object"),
    # a "translation" that is text, not the hub's {lang: text}: its characters are not fields
    "translation_text": ({"c.jsonl": ['{"translation": "oops"}']},
                         r"line 1 has no field 'qa' \(it has: translation\); set data.src_field"),
    "encoding": ({"c.tsv": None}, r"c\.tsv: line 2, byte 4 \(0xe9\) is not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_name_the_file_and_line(tmp_path, case):
    content, message = BAD_FILES[case]
    for name, lines in content.items():
        if lines is None:
            (tmp_path / name).write_bytes(b"qa ok\tqb ok\nqa \xe9\tqb\n")
        else:
            write(tmp_path / name, lines)
    entry = "c" if "c.qa" in content else next(iter(content))
    with pytest.raises(DataError, match=message):
        built(files_cfg(tmp_path, f"data.train=[{entry}]"), tmp_path)


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "no_dir"])
def test_missing_empty_or_directory_files_fail_before_reading(tmp_path, case):
    write(tmp_path / "c.tsv", ["qa a\tqb b"])
    extra = {"missing": ["data.test={t: gone.tsv}"], "directory": ["data.val=sub.tsv"],
             "empty": ["data.val=empty.tsv"], "no_dir": [f"data.dir={tmp_path / 'nope'}"]}[case]
    (tmp_path / "sub.tsv").mkdir()
    (tmp_path / "empty.tsv").write_bytes(b"")
    expected = {"missing": r"data.test.t: missing data file .*gone\.tsv", "directory": r"sub\.tsv is a directory",
                "empty": r"empty\.tsv is empty", "no_dir": r"data.dir=.*nope: no such directory"}[case]
    with pytest.raises(DataError, match=expected):
        plan_for(files_cfg(tmp_path, "data.train=[c.tsv]", *extra))


def test_a_missing_side_file_names_both_candidates(tmp_path):
    write(tmp_path / "c.qa", ["a"])
    with pytest.raises(DataError, match=r"data.train\[0\]='c': neither .*c\.qb nor its \.gz exists"):
        plan_for(files_cfg(tmp_path, "data.train=[c]"))


@pytest.mark.parametrize("overrides, message", [
    (["data=files", "data.src_lang=qa", "data.tgt_lang=qb"], r"data.train: name at least one training corpus"),
    (["data=files", "data.train=[x]"], r"data.src_lang is required for data=files"),
    (["data=hf", "data.src_lang=qa", "data.tgt_lang=qb"], r"data.path is required"),
    (["data=files", "data.train=[x]", "data.src_lang=qa", "data.tgt_lang=qb", "data.primary_test_split=news"],
     r"data.primary_test_split='news' is not a test split of this source; valid: test"),
    (["data=files", "data.train=[x]", "data.src_lang=qa", "data.tgt_lang=qb", "evaluate.splits=[test_2016_flickr]"],
     r"evaluate.splits: unknown split 'test_2016_flickr'; valid: test, all, primary"),
    (["data.max_words=80"], r"^data.max_words is now data.max_tokens: the length bound counts subword tokens now"),
    (["data=files", "data.max_words=80"], r"^data.max_words is now data.max_tokens"),
])
def test_data_config_is_checked_before_any_run(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides)


def test_multi30k_stays_the_default_with_its_primary_split():
    cfg = load_config([])
    assert cfg.data.kind == "multi30k" and cfg.data.primary == "test_2016_flickr"
    assert cfg.evaluate.resolve(cfg.data) == ("test_2016_flickr",)  # profile quick: the primary only
    assert load_config(["evaluate.splits=[all]", "data.src_lang=cs"]).evaluate.resolve(
        load_config(["data.src_lang=cs"]).data) == ("test_2016_flickr",)


# ---------------------------------------------------------------- HuggingFace datasets
@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An own datasets cache; the hub offline, as everywhere here."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def parquet_folder(root: Path, splits: dict[str, list[tuple[str, str]]], translation: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        rows = ({"translation": [{"qa": s, "qb": t} for s, t in pairs]} if translation else
                {"source_text": [s for s, _ in pairs], "target_text": [t for _, t in pairs]})
        datasets.Dataset.from_dict(rows).to_parquet(str(root / f"{split}.parquet"))
    return root


def hf_cfg(*extra: str):
    return load_config(["data=hf", "data.src_lang=qa", "data.tgt_lang=qb", "data.vocab_size=100",
                        "data.val_size=4", "data.test_size=4", *extra]).data


def test_a_local_dataset_folder_in_the_hubs_translation_convention(tmp_path, hf_cache):
    root = parquet_folder(tmp_path / "ds", {"train": PAIRS[:50], "validation": PAIRS[50:55], "test": PAIRS[55:]})
    b = built(hf_cfg(f"data.path={root}", "data.decontaminate=false"), tmp_path)
    assert texts(b.data["train"]) == PAIRS[:50] and texts(b.data["test"]) == PAIRS[55:]
    assert b.stats["val/pairs"] == 5


def test_parquet_files_with_named_fields_and_mapped_splits(tmp_path, hf_cache):
    root = parquet_folder(tmp_path / "pq", {"a": PAIRS[:30], "b": PAIRS[30:]}, translation=False)
    d = hf_cfg("data.path=parquet", f"data.data_files={{first: {root / 'a.parquet'}, second: {root / 'b.parquet'}}}",
               "data.train=[first,second]", "data.val=null", "data.test={}",
               "data.src_field=source_text", "data.tgt_field=target_text")
    plan = plan_for(d)
    assert plan.identity["data.source.dataset"] == "parquet/@default" and plan.identity["data.source.sha256"]
    b = built(d, tmp_path)
    assert len(b.data["val"]) == len(b.data["test"]) == 4
    assert sorted(texts(b.data["train"]) + texts(b.data["val"]) + texts(b.data["test"])) == sorted(PAIRS)


def test_a_dataset_that_cannot_load_says_the_hub_was_not_consulted(hf_cache):
    with pytest.raises(DataError, match=r"data.path='nobody/no-such-corpus' data.name='xx-yy': cannot load the "
                                        r"dataset .*the hub was not consulted \(offline mode"):
        plan_for(hf_cfg("data.path=nobody/no-such-corpus", "data.name=xx-yy"))


@pytest.mark.parametrize("extra, message", [
    (["data.src_lang=de"], r"data.src_lang='de': split 'train' of .* has no such language \(translation languages: qa, qb\)"),
    (["data.tgt_field=text"], r"data.tgt_field='text': split 'train' of .* has no such field; it has: translation"),
    (["data.val=dev"], r"data.val='dev': the dataset has no such split; it has: train, validation, test"),
])
def test_a_field_language_or_split_the_dataset_lacks_lists_what_it_has(tmp_path, hf_cache, extra, message):
    root = parquet_folder(tmp_path / "ds", {"train": PAIRS[:50], "validation": PAIRS[50:55], "test": PAIRS[55:]})
    with pytest.raises(DataError, match=message):
        plan_for(hf_cfg(f"data.path={root}", *extra))


def test_hashes_and_carving_are_numpy_and_deterministic():
    from nmt.components.data.clean import carve, text_hash
    h = text_hash(["a", "b", "a"])
    assert h.dtype == np.uint64 and h[0] == h[2] != h[1]
    pairs = text_hash([f"p{i}" for i in range(100)])
    ok = np.ones(100, bool)
    val, test = carve(pairs, ok, [10, 10], seed=3)
    again = carve(pairs[::-1], ok, [10, 10], seed=3)
    assert set(pairs[val]) == set(pairs[::-1][again[0]]) and not set(val) & set(test)


def test_save_to_disk_moves_the_arrow_files_into_a_layout_load_from_disk_reads(tmp_path):
    from nmt.components.data.build import save_to_disk
    write(tmp_path / "c.tsv", [f"{s}\t{t}" for s, t in PAIRS])
    b = built(files_cfg(tmp_path, "data.train=[c.tsv]"), tmp_path)
    before = {s: ds[:] for s, ds in b.data.items()}
    sources = [Path(ds.cache_files[0]["filename"]) for ds in b.data.values()]
    save_to_disk(b.data, tmp_path / "saved")
    loaded = datasets.load_from_disk(str(tmp_path / "saved"))
    assert list(loaded) == list(b.data) == ["train", "val", "test"]
    assert {s: ds[:] for s, ds in loaded.items()} == before == {s: ds[:] for s, ds in b.data.items()}
    assert loaded["train"].features == b.data["train"].features and not any(p.exists() for p in sources)
