"""sacreBLEU wrappers (Post 2018): BLEU, chrF and TER on one 0-100 scale, each with its
signature so that a score can be reproduced; and the BLEU conventions of published papers,
always reported beside sacreBLEU's standard score, never instead of it.

Papers before sacreBLEU scored tokenized, often lowercased text, which gives higher numbers
than detokenized, cased BLEU (Post 2018, table 1). To set our figures beside theirs we score
the same way they did:

* ``moses_lc``: lowercase, Moses punctuation normalization, Moses tokenization (the Multi30k
  task's ``*.lc.norm.tok`` files; ``sacremoses``), then BLEU over those tokens as they are
  (sacreBLEU ``tokenize='none'``, what fairseq's and multi-bleu.perl's scorers compute):
  Wu et al. 2021's scoring of the tiny Transformer on Multi30k.
* ``lc``: sacreBLEU's own 13a tokenization, lowercased: the closest to bentrevett's
  pytorch-seq2seq tutorials (lowercased spaCy tokens, greedy).

**Tokenized for the target language** (:func:`choose_metric`). BLEU counts n-grams of words,
so it needs a tokenizer that finds the target language's words; ``13a`` splits at spaces and
punctuation, and gives a Chinese sentence one "word" (BLEU 0.0 for a near-perfect
translation). We follow sacreBLEU's own table (``BLEU._TOKENIZER_MAP``, what it applies when
given ``trg_lang``): ``zh`` for Chinese (any Chinese code: zh-Hant, cmn, yue, ...),
``ja-mecab`` for Japanese, ``ko-mecab`` for Korean, ``13a`` for the rest. Where that
tokenizer is not installed (mecab: ``pip install sacrebleu[ja]`` or ``[ko]``), or the language
is written without spaces and sacreBLEU has none for it (Thai, Lao, Khmer, Burmese, Tibetan,
Dzongkha), BLEU is scored on characters (``tok:char``) with a warning, and the selection
metric (``val/bleu``: checkpoints, early stopping, ASHA, the promotion candidate) holds chrF
(Popović 2015), which needs no tokenizer. TER splits CJK characters (``asian:yes``) for
Chinese, Japanese and Korean. ``evaluate.bleu_tokenize`` overrides the choice; every score
carries its signature.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER

from nmt.components.system.errors import ConfigError

log = logging.getLogger("nmt")
Convention = Literal["moses_lc", "lc"]
CONVENTIONS: tuple[str, ...] = ("moses_lc", "lc")
AUTO = "auto"                             # evaluate.bleu_tokenize: choose by the target language
CHINESE = frozenset({"zh", "cmn", "yue", "wuu", "lzh"})      # written in Han characters: tok zh
UNSPACED = frozenset({"th", "lo", "km", "my", "bo", "dz"})  # no spaces between words, no sacreBLEU tokenizer
CJK = CHINESE | {"ja", "ko"}
MECAB_EXTRA = {"ja-mecab": "ja", "ko-mecab": "ko"}          # pip install sacrebleu[<extra>]


@dataclass(frozen=True)
class MetricChoice:
    """How a target language is scored: BLEU's sacreBLEU tokenizer, what ``val/bleu`` holds
    (BLEU, or chrF where no tokenizer exists) and whether TER splits CJK characters."""
    tokenize: str = "13a"
    selection: Literal["bleu", "chrf"] = "bleu"
    asian_ter: bool = False
    warning: str | None = None        # why the language's own tokenizer is not used

    @property
    def key(self) -> str:
        """The choice as one string: part of train's and evaluate's reuse keys."""
        return (f"bleu.tok:{self.tokenize}|select:{self.selection}|ter.asian:{'yes' if self.asian_ter else 'no'}"
                f"|version:{sacrebleu.__version__}")

    def selection_signature(self) -> str:
        """sacreBLEU's signature of what ``val/bleu`` holds, named (``BLEU|...`` or ``chrF2|...``)."""
        name, metric = ("BLEU", BLEU(tokenize=self.tokenize)) if self.selection == "bleu" else ("chrF2", CHRF())
        metric.corpus_score(["a"], [["a"]])  # sacreBLEU signs a metric once it has scored
        return f"{name}|{metric.get_signature()}"

    def ter(self) -> TER:
        return TER(normalized=self.asian_ter, asian_support=self.asian_ter)  # asian needs normalized


@dataclass(frozen=True)
class Score:
    name: str
    score: float       # 0-100 (TER: lower is better)
    signature: str


def _language(code: str) -> str:
    """The primary language subtag: ``zh`` of ``zh-Hant``, ``zh_TW`` or ``ZH``."""
    return code.strip().lower().replace("_", "-").split("-")[0]


@lru_cache(maxsize=None)
def installed(tokenize: str) -> bool:
    """Whether sacreBLEU can build tokenizer ``tokenize`` here (mecab's need their packages)."""
    if tokenize not in MECAB_EXTRA:
        return tokenize in BLEU.TOKENIZERS
    try:
        BLEU(tokenize=tokenize)
    except (RuntimeError, ImportError, AssertionError):  # sacreBLEU's "requires extra dependencies"
        return False
    return True


def check_tokenize(setting: str, key: str = "evaluate.bleu_tokenize") -> None:
    """ConfigError for a setting that is neither ``auto`` nor a tokenizer sacreBLEU can run here."""
    valid = (AUTO, *BLEU.TOKENIZERS)
    if setting not in valid:
        raise ConfigError(f"{key}={setting!r}: unknown BLEU tokenizer; valid: {', '.join(valid)}")
    if setting != AUTO and not installed(setting):
        raise ConfigError(f"{key}={setting}: its package is not installed; pip install "
                          f"'sacrebleu[{MECAB_EXTRA[setting]}]', or use {key}=auto (characters, and chrF to select)")
    missing = spm_missing(setting)
    if missing:  # found here, not by evaluate after training, nor by a download that cannot happen
        raise ConfigError(f"{key}={setting}: {missing}; or use {key}=auto")


def spm_missing(tokenize: str) -> str | None:
    """What sacreBLEU's SentencePiece tokenizers (spm, flores101, flores200, spBLEU-1K) lack
    here, or None: the ``sentencepiece`` package, and the model that sacreBLEU would otherwise
    download when scoring starts (nothing here may need the network)."""
    import importlib.util
    import os
    from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
    from sacrebleu.utils import SACREBLEU_DIR
    if tokenize not in SPM_MODELS:
        return None
    if importlib.util.find_spec("sentencepiece") is None:
        return "it needs the sentencepiece package (pip install sentencepiece) and sacreBLEU's model for it"
    url = SPM_MODELS[tokenize]["url"]
    model = os.path.join(SACREBLEU_DIR, "models", os.path.basename(url))
    return None if os.path.isfile(model) else f"its SentencePiece model is not on this machine: put {url} at {model}"


def choose_metric(lang: str, setting: str = AUTO) -> MetricChoice:
    """How to score target language ``lang`` (module docstring); ``setting``: ``auto`` or a
    sacreBLEU tokenizer that overrides the choice (BLEU then stays the selection metric)."""
    code = _language(lang)
    asian = code in CJK
    if setting != AUTO:
        check_tokenize(setting)
        return MetricChoice(setting, "bleu", asian)
    wanted = "zh" if code in CHINESE else BLEU._TOKENIZER_MAP.get(code)  # sacreBLEU's recommendation
    if wanted is None and code not in UNSPACED:
        return MetricChoice("13a", "bleu", asian)
    if wanted is not None and installed(wanted):
        return MetricChoice(wanted, "bleu", asian)
    why = (f"sacreBLEU's tokenizer for {lang!r}, {wanted}, is not installed "
           f"(pip install 'sacrebleu[{MECAB_EXTRA[wanted]}]')" if wanted
           else f"sacreBLEU has no word tokenizer for {lang!r}, written without spaces")
    return MetricChoice("char", "chrf", asian, f"{why}: BLEU is scored on characters (tok:char), and val/bleu, "
                        "which selects checkpoints and models, holds chrF; evaluate.bleu_tokenize overrides this")


@functools.cache
def warn(choice: MetricChoice) -> None:
    """Log ``choice``'s warning, once a process."""
    if choice.warning:
        log.warning("metric: %s", choice.warning)


def corpus_bleu(hyps: list[str], refs: list[str], tokenize: str = "13a"):
    """Corpus BLEU of detokenized hypotheses against one raw reference each."""
    return BLEU(tokenize=tokenize).corpus_score(hyps, [refs])


def selection_score(hyps: list[str], refs: list[str], choice: MetricChoice) -> float:
    """What ``val/bleu`` holds for ``choice``: BLEU with its tokenizer, or chrF (0-100)."""
    metric = BLEU(tokenize=choice.tokenize) if choice.selection == "bleu" else CHRF()
    return float(metric.corpus_score(hyps, [refs]).score)


def corpus_scores(hyps: list[str], refs: list[str], choice: MetricChoice = MetricChoice()) -> dict[str, Score]:
    """BLEU (with ``choice``'s tokenizer), chrF and TER, all on 0-100, with their signatures."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    out = {}
    for name, metric in (("bleu", BLEU(tokenize=choice.tokenize)), ("chrf", CHRF()), ("ter", choice.ter())):
        res = metric.corpus_score(hyps, [refs])
        out[name] = Score(name, float(res.score), str(metric.get_signature()))
    return out


@lru_cache(maxsize=8)
def _moses(lang: str):
    from sacremoses import MosesPunctNormalizer, MosesTokenizer  # only where a paper's scoring is asked for
    return MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)


def moses_lc(text: str, lang: str) -> str:
    """``text`` as the Multi30k task's ``lc.norm.tok`` files hold it: lowercased, punctuation
    normalized, Moses-tokenized (no XML escaping: it changes no token boundary)."""
    norm, tok = _moses(lang)
    return tok.tokenize(norm.normalize(text.lower()), return_str=True, escape=False)


def paper_bleu(hyps: list[str], refs: list[str], convention: Convention, lang: str) -> Score:
    """Corpus BLEU of detokenized hypotheses under a paper's ``convention`` (module
    docstring); ``lang``: the target language (Moses's rules differ by language)."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if convention == "moses_lc":
        # force: tokenized on purpose
        metric, pre = BLEU(tokenize="none", lowercase=True, force=True), "|pre:moses-norm+moses-tok"
        hyps, refs = [moses_lc(h, lang) for h in hyps], [moses_lc(r, lang) for r in refs]
    elif convention == "lc":
        metric, pre = BLEU(lowercase=True), ""
    else:
        raise ValueError(f"unknown BLEU convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    score = float(metric.corpus_score(hyps, [refs]).score)  # the signature needs a scored corpus
    return Score(f"bleu_{convention}", score, f"{metric.get_signature()}{pre}")
