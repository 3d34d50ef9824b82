"""prepare on a corpus per script family (tests/scripts_corpora.py): nothing respelled, the
length filters counted in subword tokens, and one line naming the filter and the split
when cleaning leaves a split empty."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nmt.components.data.build import save_to_disk
from nmt.components.data.datamodule import TranslationDataModule
from nmt.components.data.sources import DataError
from nmt.components.data.tokenizer import TextCodec
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.prepare import build_dataset
from tests.scripts_corpora import KEPT, LANGUAGES, files_overrides, pairs, write_tsv


def _build(tmp_path: Path, overrides: list[str]):
    return build_dataset(load_config(overrides), tmp_path / "work")


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_each_script_family_prepares_whole(tmp_path, lang):
    """Every prepared target is a corpus target as written (joiners, marks and selectors
    included), the splits hold their pairs, and the tokenizer gives each target back."""
    built = _build(tmp_path, files_overrides(tmp_path, lang))
    targets = {t for _, t in pairs(lang)}
    for split, ds in built.data.items():
        assert set(ds["tgt"]) <= targets, split
    assert built.stats["val/pairs"] == built.stats["test/pairs"] == 20
    assert built.stats["train/pairs"] >= 140 and built.stats["train/normalized"] == 0
    for mark in KEPT.get(lang, ""):
        assert sum(t.count(mark) for t in built.data["train"]["tgt"]) > 0, f"{lang}: U+{ord(mark):04X} lost"
    codec = TextCodec(built.src_tok, built.tgt_tok)
    for ds in built.data.values():
        assert codec.decode_tgt(ds["tgt_ids"]) == ds["tgt"]


def test_an_english_chinese_corpus_keeps_its_pairs_under_the_default_ratio(tmp_path):
    """Issue #32, case 1: the default data.max_len_ratio=3.0 counted whitespace words, a
    Chinese sentence is one, and prepare failed on an empty val split. In tokens, measured
    from the corpus's typical ratio, no pair of a well-aligned corpus is dropped."""
    built = _build(tmp_path, files_overrides(tmp_path, "zh"))
    assert load_config(files_overrides(tmp_path, "zh")).data.max_len_ratio == 3.0
    assert built.stats["train/dropped_ratio"] == 0 and built.stats["train/pairs"] == 216 - 40
    assert built.stats["train/len_ratio_typical"] < 0.7  # Chinese: fewer, longer pieces than English


def long_corpus(folder: Path) -> list[str]:
    """200 ordinary training pairs and 10 of 1,500 letters without a space (issue #32, case
    3); val and test splits of 10 ordinary pairs and one long one each."""
    rng = random.Random(0)
    long = [(x, x[::-1]) for x in ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1500))
                                   for _ in range(12))]
    ordinary = pairs("ru")
    write_tsv(folder / "long.tsv", ordinary[:200] + long[:10])
    write_tsv(folder / "val.tsv", ordinary[200:210] + long[10:11])
    write_tsv(folder / "test.tsv", ordinary[205:215] + long[11:])
    return ["data=files", f"data.dir={folder}", "data.src_lang=en", "data.tgt_lang=ru", "data.train=[long.tsv]",
            "data.val=val.tsv", "data.test={test: test.tsv}", "data.vocab_size=300"]


def test_pairs_too_long_for_the_model_are_dropped_at_prepare_in_tokens(tmp_path):
    """A line of 1,500 letters is one whitespace word: ``max_words`` kept it. In tokens it is
    far over ``data.max_tokens``; validation and test keep theirs (scored in full)."""
    built = _build(tmp_path, long_corpus(tmp_path))
    assert built.stats["train/dropped_long"] == 10 and built.stats["train/pairs"] == 200
    assert max(built.stats["train/src_len_max"], built.stats["train/tgt_len_max"]) <= 250
    assert built.stats["val/src_len_max"] > 250 and built.stats["test/pairs"] == 11


@pytest.mark.parametrize("case, message", [
    ("empty_val", r"cleaning left no pairs in split 'val' \(3 read; removed: empty 3\); fix the corpus"),
    ("carve", r"cleaning left no pairs in split 'test' \(carved 0 from training; removed: none\); "
              r"lower data.val_size and data.test_size, or give data.val and data.test"),
    ("long", r"cleaning left no pairs in split 'train' \(8 read; removed: long 8\); raise data.max_tokens "
             r"\(now 3; subword tokens per side\)"),
])
def test_an_emptied_split_names_the_filter_the_split_and_the_key(tmp_path, case, message):
    rows = [(f"word {i} here and there", f"mot {i} ici et là") for i in range(8)]
    write_tsv(tmp_path / "c.tsv", rows)
    write_tsv(tmp_path / "blank.tsv", [(" ", "x")] * 3)
    base = ["data=files", f"data.dir={tmp_path}", "data.src_lang=en", "data.tgt_lang=fr", "data.train=[c.tsv]",
            "data.vocab_size=100", "data.test={t: c.tsv}", "data.decontaminate=false"]
    extra = {"empty_val": ["data.val=blank.tsv"], "carve": ["data.val_size=8", "data.test=null"],
             "long": ["data.val=c.tsv", "data.max_tokens=3"]}[case]
    with pytest.raises(DataError, match=message):
        _build(tmp_path, [*base, *extra])


def test_the_model_s_positions_bound_what_reaches_it(tmp_path):
    """Pairs over ``model.max_positions`` that prepare kept (``data.max_tokens=null`` here)
    never reach the model: training leaves them out and counts them; validation and test
    sources are cut to fit and their references stay whole."""
    built = _build(tmp_path, [*long_corpus(tmp_path), "data.max_tokens=null"])
    save_to_disk(built.data, tmp_path / "data")
    dm = TranslationDataModule(tmp_path / "data", max_tokens=2048, max_positions=64)
    dm.setup()
    train = [b for b in dm.train_dataloader()]
    assert dm.dropped == {"train": 10} and sum(len(b["idx"]) for b in train) == 200
    for split in ("val", "test"):
        batches = list(dm.split_loader(split))
        assert max(max(b["src"].shape[1], b["tgt_in"].shape[1]) for b in batches) == 64
        assert sorted(r for b in batches for r in b["ref"]) == sorted(built.data[split]["tgt"])
    assert max(b["src"].shape[1] for b in train) <= 64
