import subprocess
import sys

from nmt.components.evaluation.scoring import corpus_scores


def test_bleu_matches_sacrebleu_cli(tmp_path, multi30k_dir):
    from nmt.components.data.text import read_lines
    refs = list(read_lines(multi30k_dir / "val.en.gz"))[:100]
    # a systematic corruption of the references as "hypotheses": drop every third word
    hyps = [" ".join(w for i, w in enumerate(r.split()) if i % 3 != 1) for r in refs]
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n")
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
                          str(tmp_path / "hyp.txt"), "-m", "bleu", "chrf", "ter", "-b", "-f", "text"],
                         check=True, capture_output=True, text=True).stdout.split()
    scores = corpus_scores(hyps, refs)
    assert [round(scores[m].score, 1) for m in ("bleu", "chrf", "ter")] == [float(x) for x in out]
    assert 0 < scores["bleu"].score < 100 and scores["ter"].score > 0
    assert scores["bleu"].signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a")


# Fixed files for the papers' conventions: case, apostrophes, quotes, hyphens, a German side.
PAPER_REFS = ["A man's dog, \"Rex\", runs through the park.", "Two children play on a well-kept lawn.",
              "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.", "People wait at the bus stop -- in rain!"]
PAPER_HYPS = ["a man's dog runs in the Park.", "Two kids are playing on a well-kept lawn .",
              "Ein Mann mit orangefarbenem Hut starrt etwas an.", "people waiting at a bus stop in the rain!"]


def test_moses_lc_tokenizes_as_the_multi30k_tok_files():
    from nmt.components.evaluation.scoring import moses_lc
    # normalize-punctuation.perl's English rule moves a comma inside the closing quote
    assert moses_lc(PAPER_REFS[0], "en") == 'a man \'s dog , " rex , " runs through the park .'
    assert moses_lc(PAPER_REFS[1], "en") == "two children play on a well-kept lawn ."
    assert moses_lc(PAPER_REFS[2], "de") == "ein mann mit einem orangefarbenen hut , der etwas anstarrt ."


def test_paper_conventions_match_the_sacrebleu_cli(tmp_path):
    """A paper's BLEU equals the sacreBLEU CLI on the text prepared as that paper did:
    ``moses_lc`` = `sacrebleu -tok none -lc` over lowercased, Moses-tokenized files;
    ``lc`` = `sacrebleu -lc` over the raw ones. Neither equals the standard score."""
    from nmt.components.evaluation.scoring import moses_lc, paper_bleu

    def cli(ref: list[str], hyp: list[str], *flags: str) -> float:
        (tmp_path / "ref").write_text("\n".join(ref) + "\n")
        (tmp_path / "hyp").write_text("\n".join(hyp) + "\n")
        out = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref"), "-i", str(tmp_path / "hyp"),
                              "-b", "-w", "4", *flags], check=True, capture_output=True, text=True).stdout
        return float(out)

    langs = ["en", "en", "de", "en"]
    tok_refs = [moses_lc(r, lang) for r, lang in zip(PAPER_REFS, langs)]
    tok_hyps = [moses_lc(h, lang) for h, lang in zip(PAPER_HYPS, langs)]
    en = [i for i, lang in enumerate(langs) if lang == "en"]
    mine = paper_bleu([PAPER_HYPS[i] for i in en], [PAPER_REFS[i] for i in en], "moses_lc", "en")
    assert round(mine.score, 4) == cli([tok_refs[i] for i in en], [tok_hyps[i] for i in en], "-tok", "none", "-lc",
                                       "--force")
    assert mine.name == "bleu_moses_lc" and "tok:none" in mine.signature and "case:lc" in mine.signature
    lc = paper_bleu(PAPER_HYPS, PAPER_REFS, "lc", "en")
    assert round(lc.score, 4) == cli(PAPER_REFS, PAPER_HYPS, "-lc")
    standard = corpus_scores(PAPER_HYPS, PAPER_REFS)["bleu"].score
    assert lc.score > standard and mine.score != standard  # lowercasing forgives "Park" vs "park"
