"""One value check for every data source: whatever a file, ``datasets`` or Arrow hands over
(null, a number, a list, a nested object) is one line naming the file or split, the row and
the field, before any work. A header row of a TSV or JSONL file is skipped with a warning."""

from __future__ import annotations

import json
import logging

import datasets
import pytest

from nmt.components.data.plans import plan_for
from nmt.components.data.sources import DataError
from tests.components.data.test_sources import built, files_cfg, hf_cfg, texts, write

ROWS = [{"qa": f"qa satz {i}", "qb": f"qb sentence {i}"} for i in range(12)]
BAD = {"null": (None, "null"), "number": (2016, r"a number \(2016\)"), "list": (["a", "b"], "a list"),
       "object": ({"x": "a"}, "a nested object")}


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _rows(kind: str, line: int, side: str = "qb") -> list[dict]:
    rows = [dict(r) for r in ROWS]
    rows[line - 1][side] = BAD[kind][0]
    return rows


def _hf_json(tmp_path, rows):
    for split in ("train", "validation", "test"):
        write(tmp_path / f"{split}.jsonl", [json.dumps(r) for r in (rows if split == "train" else ROWS[:3])])
    files = ", ".join(f"{s}: {tmp_path / f'{s}.jsonl'}" for s in ("train", "validation", "test"))
    return hf_cfg("data.path=json", f"data.data_files={{{files}}}")


@pytest.mark.parametrize("kind", sorted(BAD))
def test_hub_json_loader(tmp_path, kind):
    with pytest.raises(DataError, match=rf"json:train \(.*train\.jsonl\): row 6, field 'qb' is {BAD[kind][1]}, "
                                        r"not a string; fix or remove that row"):
        built(_hf_json(tmp_path, _rows(kind, 6)), tmp_path)


@pytest.mark.parametrize("column, message", [([r["qa"] for r in _rows("null", 4, "qa")], "row 4, field 'qa' is null"),
                                             (list(range(2000, 2012)), r"row 1, field 'qa' is a number \(2000\)")])
def test_hub_parquet_loader(tmp_path, column, message):
    """A parquet column is one type: a null in a string column, or a column of numbers."""
    datasets.Dataset.from_dict({"qa": column, "qb": [r["qb"] for r in ROWS]}).to_parquet(str(tmp_path / "t.parquet"))
    d = hf_cfg("data.path=parquet", f"data.data_files={{train: {tmp_path / 't.parquet'}}}", "data.val=null",
               "data.test={}")
    with pytest.raises(DataError, match=rf"parquet:train \(.*t\.parquet\): {message}"):
        built(d, tmp_path)


def test_hub_translation_convention_with_a_null_pair(tmp_path):
    rows = [{"translation": {"qa": r["qa"], "qb": r["qb"]}} for r in ROWS]
    rows[2] = {"translation": None}
    write(tmp_path / "train.jsonl", [json.dumps(r) for r in rows])
    d = hf_cfg("data.path=json", f"data.data_files={{train: {tmp_path / 'train.jsonl'}}}", "data.val=null",
               "data.test={}")
    with pytest.raises(DataError, match=r"row 3, field 'translation.qa' is null"):
        built(d, tmp_path)
    assert plan_for(d).splits["train"][0].name == "json:train"  # the per-corpus count keeps its name


@pytest.mark.parametrize("kind", sorted(BAD))
def test_local_jsonl(tmp_path, kind):
    write(tmp_path / "c.jsonl", [json.dumps(r) for r in _rows(kind, 5)])
    with pytest.raises(DataError, match=rf"c\.jsonl: line 5, field 'qb' is {BAD[kind][1]}, not a string"):
        built(files_cfg(tmp_path, "data.train=[c.jsonl]"), tmp_path)


@pytest.mark.parametrize("header", [["qa\tqb"], ['{"qa": "qa", "qb": "qb"}']])
def test_a_header_row_is_skipped_with_a_warning(tmp_path, caplog, header):
    name = "c.tsv" if "\t" in header[0] else "c.jsonl"
    body = [f"{r['qa']}\t{r['qb']}" if name == "c.tsv" else json.dumps(r) for r in ROWS]
    write(tmp_path / name, header + body)
    write(tmp_path / "t.tsv", ["qa held\tqb held"])
    with caplog.at_level(logging.WARNING):
        b = built(files_cfg(tmp_path, f"data.train=[{name}]", "data.val=t.tsv", "data.test={t: t.tsv}",
                            "data.decontaminate=false"), tmp_path)
    assert ("qa", "qb") not in texts(b.data["train"]) and len(b.data["train"]) == len(ROWS)
    assert any("line 1 is a header row" in r.getMessage() and name in r.getMessage() for r in caplog.records)
