import subprocess
import sys

import pytest

from nmt.components.evaluation.scoring import MetricChoice, choose_metric, corpus_bleu, corpus_scores, selection_score
from nmt.components.evaluation.significance import paired_bootstrap
from nmt.components.system.errors import ConfigError
from nmt.pipeline.config import load_config

ZH_HYP, ZH_REF = "一只狗在公园里跑。", "一只小狗在公园里跑。"


def test_chinese_bleu_is_tokenized_for_chinese():
    """Issue #32, case 2: 13a makes each Chinese sentence one word, so a near-perfect
    hypothesis scored 0.0; the target language's tokenizer gives sacreBLEU's tok zh figure."""
    assert corpus_bleu([ZH_HYP], [ZH_REF]).score == 0.0
    zh = choose_metric("zh")
    scores = corpus_scores([ZH_HYP], [ZH_REF], zh)
    assert scores["bleu"].score == pytest.approx(71.89, abs=0.005) and "tok:zh" in scores["bleu"].signature
    assert scores["ter"].score == pytest.approx(10.0) and "asian:yes" in scores["ter"].signature
    assert selection_score([ZH_HYP], [ZH_REF], zh) == scores["bleu"].score


@pytest.mark.parametrize("lang, tokenize, selection", [
    ("zh", "zh", "bleu"), ("zh-Hant", "zh", "bleu"), ("yue", "zh", "bleu"), ("ZH_tw", "zh", "bleu"),
    ("ja", "char", "chrf"), ("ko", "char", "chrf"),   # mecab is not installed here
    ("th", "char", "chrf"), ("km", "char", "chrf"),   # no sacreBLEU tokenizer at all
    ("en", "13a", "bleu"), ("fa", "13a", "bleu"), ("ar", "13a", "bleu"), ("hi", "13a", "bleu"),
    ("el", "13a", "bleu"), ("ru", "13a", "bleu"),
])
def test_the_metric_follows_the_target_language(lang, tokenize, selection):
    choice = choose_metric(lang)
    assert (choice.tokenize, choice.selection) == (tokenize, selection)
    assert (choice.warning is not None) == (tokenize == "char")
    assert choice.selection_signature().startswith("chrF2|" if selection == "chrf" else "BLEU|nrefs:1")
    assert f"tok:{tokenize}" in choice.key and "version:" in choice.key


def test_without_a_tokenizer_val_bleu_holds_chrf():
    th = choose_metric("th")
    hyp, ref = "สุนัขวิ่งในสวน", "สุนัขวิ่งในสวนสาธารณะ"
    assert selection_score([hyp], [ref], th) == pytest.approx(corpus_scores([hyp], [ref], th)["chrf"].score)
    assert corpus_scores([hyp], [ref], th)["bleu"].signature.count("tok:char") == 1
    assert corpus_scores([hyp], [ref])["bleu"].score == 0.0  # 13a: one "word" each, nothing matches


def test_a_config_key_overrides_the_choice_and_is_checked_at_load():
    assert choose_metric("zh", "char") == MetricChoice("char", "bleu", True)  # named: BLEU still selects
    cfg = load_config(["evaluate.bleu_tokenize=13a"])
    assert cfg.evaluate.metric(cfg.data).tokenize == "13a"
    with pytest.raises(ConfigError, match=r"evaluate.bleu_tokenize='jam': unknown BLEU tokenizer; valid: auto, "):
        load_config(["evaluate.bleu_tokenize=jam"])
    with pytest.raises(ConfigError, match=r"evaluate.bleu_tokenize=ja-mecab: its package is not installed; "
                                          r"pip install 'sacrebleu\[ja\]'"):
        load_config(["evaluate.bleu_tokenize=ja-mecab"])


@pytest.mark.parametrize("tokenize", ["spm", "flores101", "flores200", "spBLEU-1K"])
def test_a_sentencepiece_bleu_is_refused_at_load_where_it_would_download(tokenize, tmp_path, monkeypatch):
    """sacreBLEU fetches these tokenizers' models from the internet when scoring starts, after
    training: here that is refused when the config is read, saying what is missing."""
    import importlib.util

    import sacrebleu.utils
    monkeypatch.setattr(sacrebleu.utils, "SACREBLEU_DIR", str(tmp_path))  # no model downloaded there
    missing = (r"it needs the sentencepiece package \(pip install sentencepiece\)"
               if importlib.util.find_spec("sentencepiece") is None
               else rf"its SentencePiece model is not on this machine: put https://\S+ at {tmp_path}/models/")
    with pytest.raises(ConfigError, match=rf"^evaluate.bleu_tokenize={tokenize}: {missing}.*; or use "
                                          r"evaluate.bleu_tokenize=auto$"):
        load_config([f"evaluate.bleu_tokenize={tokenize}"])


def test_the_metric_enters_train_and_evaluate_reuse_keys():
    from nmt.pipeline.stages.evaluate import evaluate_params
    from nmt.pipeline.stages.train import train_params
    auto, forced = load_config([]), load_config(["evaluate.bleu_tokenize=char"])
    assert "tok:13a" in train_params(auto, "p")["metric.signature"]
    zh = load_config(["data=files", "data.src_lang=en", "data.tgt_lang=zh", "data.train=[c.tsv]"])
    assert "bleu.tok:zh|" in train_params(zh, "p")["metric.signature"]
    assert train_params(auto, "p") != train_params(forced, "p")
    assert evaluate_params(auto, "p", "t")["metric.signature"] != evaluate_params(forced, "p", "t")["metric.signature"]


def test_the_significance_gate_scores_with_the_tokenizer():
    refs = [ZH_REF, "两个孩子在草地上玩。", "一个男人在骑自行车。"]
    a, b = ["狗。", "孩子。", "男人。"], [ZH_HYP, "两个孩子在草上玩。", "一个人在骑车。"]
    plain = paired_bootstrap(a, b, refs, n_samples=100)
    zh = paired_bootstrap(a, b, refs, n_samples=100, tokenize="zh")
    assert plain.bleu_b == 0.0 and zh.bleu_b > 30 and zh.bleu_b > zh.bleu_a


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
