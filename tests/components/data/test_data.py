import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from nmt.components.data import clean
from nmt.components.data.clean import clean_batch, row_filters
from nmt.components.data.datamodule import collate, token_budget_batches
from nmt.components.data.multi30k import resolve_data_dir, splits_for_pair
from nmt.components.data.sources import DataError
from nmt.components.data.text import normalize
from nmt.components.data.sources import file_corpus
from nmt.components.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, train_tokenizer


def pairs(base: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """The ``train`` de-en pairs under ``base``, through prepare's reader."""
    corpus = file_corpus(base, "train", "de", "en", setting="data.dir", limit=limit)
    return [p for src, tgt in corpus.batches() for p in zip(src, tgt)]


def test_splits_for_pair_respects_missing_czech_tests():
    assert splits_for_pair("de", "en") == ["train", "val", "test_2016_flickr", "test_2017_flickr", "test_2017_mscoco"]
    assert splits_for_pair("cs", "en") == ["train", "val", "test_2016_flickr"]


def test_the_reader_reads_real_files(multi30k_dir):
    got = pairs(multi30k_dir, limit=200)
    assert len(got) == 200
    assert got[0][0].startswith("Zwei junge weiße Männer")


def test_normalize_is_nfc_and_collapses_space():
    assert normalize("  Cafe\u0301   au  lait ") == "Caf\u00e9 au lait"


def _write(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def test_line_count_mismatch_names_files_and_line(tmp_path):
    _write(tmp_path / "train.de.gz", ["a", "b", "c"])
    _write(tmp_path / "train.en.gz", ["a", "b"])
    with pytest.raises(DataError, match=r"train\.de\.gz has 3 lines.*train\.en\.gz has 2.*line 3"):
        pairs(tmp_path)


def test_empty_pairs_are_dropped_and_counted(tmp_path):
    _write(tmp_path / "train.de.gz", ["ein Hund", "", "eins zwei drei vier", "x", "\u200b"])
    _write(tmp_path / "train.en.gz", ["a dog", "nothing", "one two", "  ", "zero width"])
    src, tgt = zip(*pairs(tmp_path))
    text, work = clean_batch(pa.record_batch([pa.array(src), pa.array(tgt)], names=["src", "tgt"]))
    ok, counts, _ = row_filters(work)
    assert text.column("src").filter(pa.array(ok)).to_pylist() == ["ein Hund", "eins zwei drei vier"]
    assert counts == {"normalized": 2, "dropped_empty": 3}


def test_the_length_filter_counts_tokens():
    src, tgt = np.array([3, 30, 9, 1, 12, 40]), np.array([4, 2, 9, 4, 12, 10])
    ok, counts = clean.length_filter(src, tgt, 20)
    assert ok.tolist() == [True, False, True, True, True, False] and counts == {"dropped_long": 2}
    assert clean.length_filter(src, tgt, None)[0].all()


def _chars(src: list[int], tgt: list[int]) -> dict[str, np.ndarray]:
    return {"src_chars": np.array(src), "tgt_chars": np.array(tgt), "changed": np.zeros(len(src), bool)}


def test_the_ratio_filter_measures_from_the_corpus_s_typical_ratio():
    """Chinese has about a third of English's characters in every pair; measured from that
    typical ratio, only the pair that strays from it goes (a band around 1:1 dropped all)."""
    c = _chars([24, 30, 45, 27, 20, 0], [8, 10, 15, 9, 20, 5])
    ok, counts, typical = row_filters(c, max_len_ratio=3.0)
    assert typical == pytest.approx(1 / 3) and ok.tolist() == [True, True, True, True, True, False]
    ok, counts, _ = row_filters(c, max_len_ratio=2.0)
    assert ok.tolist() == [True, True, True, True, False, False]
    assert counts == {"normalized": 0, "dropped_empty": 1, "dropped_ratio": 1}
    assert row_filters(_chars([10, 31, 10], [10, 10, 30]), max_len_ratio=3.0)[1]["dropped_ratio"] == 1  # 31:10


def test_missing_directory_names_path(tmp_path):
    with pytest.raises(DataError, match=f"Multi30k directory not found: {tmp_path / 'nope'}"):
        resolve_data_dir(str(tmp_path / "nope"), tmp_path)


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_tokenizer_round_trips_text(multi30k_dir, kind):
    texts = [normalize(t) for p in pairs(multi30k_dir, limit=500) for t in p]
    tok = train_tokenizer(texts, kind=kind, vocab_size=600)
    assert [tok.token_to_id(t) for t in ("<pad>", "<s>", "</s>", "<unk>")] == [0, 1, 2, 3]
    for text in texts[:100]:
        assert tok.decode(tok.encode(text).ids) == text


def test_token_budget_batches_cover_all_and_respect_budget():
    src = [3, 9, 4, 12, 5, 7, 2, 8]
    tgt = [4, 8, 4, 10, 6, 7, 3, 9]
    batches = token_budget_batches(src, tgt, max_tokens=20, shuffle=True, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(8))
    for b in batches:
        assert len(b) * max(max(src[i], tgt[i]) for i in b) <= 20 or len(b) == 1


def test_collate_adds_bos_eos_and_masks_padding():
    rows = [{"idx": 0, "src_ids": [5, 6], "tgt_ids": [7], "tgt": "x"},
            {"idx": 1, "src_ids": [5], "tgt_ids": [7, 8, 9], "tgt": "y"}]
    b = collate(rows)
    assert b["src"].tolist() == [[5, 6, EOS_ID], [5, EOS_ID, PAD_ID]]
    assert b["src_mask"].tolist() == [[True, True, True], [True, True, False]]
    assert b["tgt_in"].tolist() == [[BOS_ID, 7, PAD_ID, PAD_ID], [BOS_ID, 7, 8, 9]]
    assert b["tgt_out"].tolist() == [[7, EOS_ID, PAD_ID, PAD_ID], [7, 8, 9, EOS_ID]]


def test_sampler_shards_batches_evenly_and_disjointly_across_ranks():
    from nmt.components.data.datamodule import TokenBudgetSampler
    src = [3, 9, 4, 12, 5, 7, 2, 8, 6, 6, 4]
    shards = [list(TokenBudgetSampler(src, src, 16, shuffle=True, seed=3, rank=r, world=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(TokenBudgetSampler(src, src, 16, True, 3, rank=1, world=2))
    seen = [i for shard in shards for batch in shard for i in batch]
    assert len(seen) == len(set(seen))  # no sentence on both ranks


def test_a_download_that_fails_is_one_line_and_leaves_no_part_file(tmp_path):
    """No network (here: a refused loopback port, and a server answering 404): one line naming
    the URL and the settings that give the files instead; no ``.part`` left behind."""
    import http.server
    import socket
    import threading

    from nmt.components.data.multi30k import ENV_DIR, download
    from nmt.components.data.sources import DataError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for base, why in ((f"http://127.0.0.1:{closed}/", "Connection refused"),
                          (f"http://127.0.0.1:{server.server_address[1]}/no-such-dir/", "HTTP 404")):
            with pytest.raises(DataError) as err:
                download(["train.de.gz"], tmp_path / "raw", base_url=base)
            line = str(err.value)
            assert line.startswith(f"could not download {base}train.de.gz (") and why in line
            assert f"{ENV_DIR}=<folder> or data.dir=<folder>" in line and "\n" not in line
            assert list((tmp_path / "raw").iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()
