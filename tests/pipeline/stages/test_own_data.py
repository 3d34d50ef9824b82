"""Your own corpus through the whole pipeline: ``data=files`` on Multi30k's raw files equals
``data=multi30k``; ``nmt run`` on a made-up language pair scores its own test split; the
source's checksum decides reuse; bad input fails in one line with nothing left RUNNING."""

from __future__ import annotations

import contextlib
import gzip
import io
import json

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.prepare import build_dataset
from tests.conftest import TINY_RUN, assert_no_run_running

pytestmark = pytest.mark.slow
TESTS = "{test_2016_flickr: test_2016_flickr, test_2017_flickr: test_2017_flickr, test_2017_mscoco: test_2017_mscoco}"
SMALL = ["data.tokenizer=bpe", "data.vocab_size=500", "data.train_limit=3000", "data.val_limit=300",
         "data.test_limit=300"]  # BPE: its training is deterministic, so ids can be compared


def test_files_pointing_at_multi30k_give_the_multi30k_dataset(nmt_home, multi30k_dir, tmp_path):
    ours = build_dataset(load_config(SMALL), tmp_path / "a")
    files = build_dataset(load_config([*SMALL, "data=files", f"data.dir={multi30k_dir}", "data.src_lang=de",
                                       "data.tgt_lang=en", "data.train=[train]", "data.val=val", f"data.test={TESTS}",
                                       "data.max_len_ratio=null", "data.dedup=false", "data.decontaminate=false"]),
                          tmp_path / "b")
    assert list(ours.data) == list(files.data) == ["train", "val", "test_2016_flickr", "test_2017_flickr",
                                                   "test_2017_mscoco"]
    for split in ours.data:
        for col in ("idx", "src", "tgt", "src_ids", "tgt_ids", "src_len", "tgt_len"):
            assert ours.data[split][col] == files.data[split][col], (split, col)
    assert ours.src_tok.to_str() == files.src_tok.to_str()


def _corpus(multi30k_dir, tmp_path, n_train: int = 260):
    """A made-up pair qx -> qy: Multi30k's German and English under other names; training
    pairs in a TSV, a held-out test split in JSONL, no validation split (carved)."""
    with gzip.open(multi30k_dir / "train.de.gz", "rt", encoding="utf-8") as f:
        de = [next(f).rstrip("\n") for _ in range(n_train + 20)]
    with gzip.open(multi30k_dir / "train.en.gz", "rt", encoding="utf-8") as f:
        en = [next(f).rstrip("\n") for _ in range(n_train + 20)]
    (tmp_path / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in zip(de[:n_train], en[:n_train])))
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps({"translation": {"qx": s, "qy": t}}) + "\n"
                                                    for s, t in zip(de[n_train:], en[n_train:])))
    return ["data=files", f"data.dir={tmp_path}", "data.src_lang=qx", "data.tgt_lang=qy", "data.train=[train.tsv]",
            "data.test={heldout: heldout.jsonl}", "data.val_size=20", "data.vocab_size=300"]


def _stages(client):
    exp = client.get_experiment_by_name("nmt")
    return {r.data.tags.get("nmt.stage"): r for r in client.search_runs([exp.experiment_id], max_results=100)
            if r.data.tags.get("nmt.stage")}


def test_nmt_run_on_a_made_up_pair_scores_its_own_test_split(nmt_home, multi30k_dir, tmp_path):
    data = _corpus(multi30k_dir, tmp_path)
    run = [o for o in TINY_RUN if not o.startswith(("data.train_limit", "data.vocab_size"))]  # test_limit=10 stays
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", *run, *data]) == 0
    client = MlflowClient()
    stages = _stages(client)
    assert {r.info.status for r in stages.values()} == {"FINISHED"}
    prep, evaluate = stages["prepare"], stages["evaluate"]
    assert prep.data.metrics["train/corpus0/raw_pairs"] == 260 and prep.data.metrics["val/pairs"] == 20
    assert prep.data.metrics["heldout/pairs"] == 10 and prep.data.tags["nmt.primary_split"] == "heldout"
    assert prep.data.params["data.source_digest"]  # the files' checksums are in the reuse key
    assert {m.split("/")[0] for m in evaluate.data.metrics if m.endswith("/bleu")} == {"heldout"}
    assert evaluate.data.tags["analysis.split"].startswith("heldout/")
    names = {i.dataset.name for i in client.get_run(prep.info.run_id).inputs.dataset_inputs}
    assert "files-qx-qy-train" in names and "files-qx-qy-heldout" in names
    assert str(MlflowClient().get_model_version_by_alias("nmt-qx-qy", "champion").version) == "1"


def test_an_unchanged_corpus_reuses_prepare_and_a_changed_file_reruns_it(nmt_home, multi30k_dir, tmp_path):
    data = _corpus(multi30k_dir, tmp_path, n_train=120)

    def prepare() -> str:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["prepare", *data]) == 0
        return out.getvalue()

    first = prepare()
    assert "(reused)" not in first and "(reused)" in prepare()
    with open(tmp_path / "train.tsv", "a") as f:
        f.write("Ein neuer Satz.\tA new sentence.\n")
    assert "(reused)" not in prepare()


@pytest.mark.parametrize("case", ["misaligned", "emptied"])
def test_bad_corpus_through_nmt_fails_in_one_line_and_leaves_nothing_running(nmt_home, tmp_path, capsys, case):
    (tmp_path / "v.qx").write_text("held\n")
    (tmp_path / "v.qy").write_text("held\n")
    if case == "misaligned":
        (tmp_path / "c.qx").write_text("a\nb\nc\n")
        (tmp_path / "c.qy").write_text("a\nb\n")
        expected = "line counts differ"
    else:  # every pair over max_tokens: cleaning empties the corpus inside the prepare run
        (tmp_path / "c.qx").write_text("".join(f"x y z {i}\n" for i in range(30)))
        (tmp_path / "c.qy").write_text("".join(f"x y z {i}\n" for i in range(30)))
        expected = "cleaning left no pairs in split 'train' (30 read; removed: long 30); raise data.max_tokens"
    code = main(["prepare", "data=files", f"data.dir={tmp_path}", "data.src_lang=qx", "data.tgt_lang=qy",
                 "data.train=[c]", "data.max_tokens=2", "data.val=v", "data.test={t: v}"])
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("nmt: error")]
    assert code == 2 and expected in line and "Traceback" not in err
    assert_no_run_running()
