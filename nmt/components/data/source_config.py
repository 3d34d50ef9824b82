"""Typed data configs, one per source kind (``data=multi30k | files | hf``), checked before any
run starts. The common fields (languages, tokenizer, cleaning) live in :class:`DataConfig`;
``kind`` picks the subclass that adds where the pairs come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from nmt.components.system.typed_config import parse, require
from nmt.components.system.errors import ConfigError
from nmt.components.evaluation.evalkey import MULTI30K_PRIMARY

MULTI30K_TESTS = ("test_2016_flickr", "test_2017_flickr", "test_2017_mscoco")
CARVED_VAL, CARVED_TEST = "val", "test"  # split names given to carved-out splits


@dataclass(frozen=True)
class DataConfig:
    kind: str
    src_lang: str
    tgt_lang: str
    tokenizer: Literal["bpe", "unigram"]
    vocab_size: int                   # joint de+en; ~ the word vocabularies of bentrevett's setup
    joint_vocab: bool                 # one tokenizer for both sides (lets the Transformer share embeddings)
    max_tokens: int | None            # drop training pairs with a side over this many subword tokens
    max_len_ratio: float | None       # drop training pairs whose sides' token counts differ more (e.g. 3.0)
    dedup: bool                       # drop exact duplicate training pairs (the first one stays)
    decontaminate: bool               # drop training pairs whose source or target is in a val/test split
    tokenizer_sample_pairs: int       # seeded sample the tokenizer trains on (as spm's input_sentence_size)
    seed: int                         # tokenizer sample and carved splits
    val_size: int                     # pairs carved out of training when the source has no validation split
    test_size: int                    # ... and no test split
    primary_test_split: str | None    # what register, compare and the demo read; None: the first test split
    train_limit: int | None           # first N pairs only (tests, smoke runs)
    val_limit: int | None
    test_limit: int | None

    KINDS: ClassVar[dict[str, type]] = {}
    # keys that were renamed: old -> (new, why), so an old config fails naming the new key
    RENAMED: ClassVar[dict[str, tuple[str, str]]] = {
        "max_words": ("max_tokens", "the length bound counts subword tokens now, not whitespace words")}

    @classmethod
    def from_mapping(cls, value: Any, key: str) -> "DataConfig":
        """The config loader's hook: ``kind`` picks the source's own config class."""
        if isinstance(value, DataConfig):
            return value
        kind = dict(value).get("kind", "multi30k")
        for old in dict(value):
            if old in cls.RENAMED:
                raise ConfigError(cls.renamed(f"{key}.{old}"))
        if kind not in cls.KINDS:
            raise ConfigError(f"{key}.kind: unknown data source {kind!r}; valid: {', '.join(cls.KINDS)}")
        return parse(cls.KINDS[kind], value, prefix=key)

    @classmethod
    def renamed(cls, key: str) -> str:
        """The one line for an old key ``data.<old>``: its new name and why."""
        prefix, _, old = key.rpartition(".")
        new, why = cls.RENAMED[old]
        return f"{key} is now {prefix}.{new}: {why}; set {prefix}.{new}=N instead"

    def test_splits(self) -> tuple[str, ...]:
        """The test splits this source gives, by name, in order (known before reading data)."""
        raise NotImplementedError

    @property
    def primary(self) -> str:
        return self.primary_test_split or self.test_splits()[0]

    @property
    def label(self) -> str:
        """Short name of the corpus for run names and lineage."""
        return self.kind

    def validate(self, prefix: str) -> None:
        for key in ("src_lang", "tgt_lang"):
            if getattr(self, key) in ("???", ""):
                raise ConfigError(f"{prefix}.{key} is required for data={self.kind}: set it, e.g. {prefix}.{key}=...")
        if self.src_lang == self.tgt_lang:
            raise ConfigError(f"{prefix}.src_lang and {prefix}.tgt_lang are both {self.src_lang!r}; "
                              "choose two languages")
        checks = (("vocab_size", self.vocab_size >= 100, ">= 100"),
                  ("tokenizer_sample_pairs", self.tokenizer_sample_pairs >= 1, ">= 1"),
                  ("max_tokens", self.max_tokens is None or self.max_tokens >= 1, ">= 1 or null"),
                  ("max_len_ratio", self.max_len_ratio is None or self.max_len_ratio >= 1, ">= 1 or null"),
                  ("val_size", self.val_size >= 1, ">= 1"), ("test_size", self.test_size >= 1, ">= 1"),
                  ("seed", 0 <= self.seed < 2**32, "in 0..2^32-1"),
                  *((k, getattr(self, k) is None or getattr(self, k) >= 1, ">= 1 or null")
                    for k in ("train_limit", "val_limit", "test_limit")))
        require(prefix, self, *checks)
        tests = self.test_splits()
        if self.primary_test_split is not None and self.primary_test_split not in tests:
            raise ConfigError(f"{prefix}.primary_test_split={self.primary_test_split!r} is not a test split "
                              f"of this source; valid: {', '.join(tests)}")


@dataclass(frozen=True)
class Multi30kData(DataConfig):
    """Multi30k task 1 raw files (Elliott et al. 2016)."""
    kind: Literal["multi30k"]
    dir: str | None                   # raw Multi30k folder; None -> $MULTI30K_DIR -> download

    def test_splits(self) -> tuple[str, ...]:
        from nmt.components.data.multi30k import splits_for_pair
        return tuple(s for s in splits_for_pair(self.src_lang, self.tgt_lang) if s in MULTI30K_TESTS)

    @property
    def primary(self) -> str:
        return self.primary_test_split or MULTI30K_PRIMARY

    def validate(self, prefix: str) -> None:
        from nmt.components.data.multi30k import check_pair
        check_pair(self.src_lang, self.tgt_lang)
        super().validate(prefix)


@dataclass(frozen=True)
class FilesData(DataConfig):
    """Local files, any language codes. Each corpus is a stem: ``<stem>.<lang>[.gz]`` per side,
    or one ``.tsv``/``.jsonl`` file (optionally ``.gz``) holding both sides."""
    kind: Literal["files"]
    dir: str | None                   # relative corpus paths are under it
    train: tuple[str, ...]            # one or more corpora, concatenated
    val: str | None                   # None: carve data.val_size pairs out of training
    test: dict[str, str] | None       # split name -> corpus; None or empty: carve "test"
    src_field: str | None             # JSONL key of the source; None: <src_lang> or translation.<src_lang>
    tgt_field: str | None

    @property
    def tests(self) -> dict[str, str]:
        return dict(self.test or {})

    def test_splits(self) -> tuple[str, ...]:
        return tuple(self.tests) or (CARVED_TEST,)

    @property
    def label(self) -> str:
        return "files"

    def validate(self, prefix: str) -> None:
        if not self.train:
            raise ConfigError(f"{prefix}.train: name at least one training corpus (a stem like "
                              "'train' for train.<lang>.gz, or a .tsv/.jsonl file)")
        super().validate(prefix)


@dataclass(frozen=True)
class HFData(DataConfig):
    """``datasets.load_dataset(path, name, revision=..., data_files=...)``: a hub name, a local
    dataset folder, or a builder (parquet, json, csv) with ``data_files``."""
    kind: Literal["hf"]
    path: str
    name: str | None
    revision: str | None
    data_files: dict[str, Any] | None  # split -> file(s), for builders such as parquet
    train: tuple[str, ...]            # the dataset's split names, concatenated
    val: str | None                   # None: carve data.val_size pairs out of training
    test: dict[str, str] | None       # our name -> the dataset's split; None: {test: test}; empty: carve
    src_field: str | None             # None: translation.<src_lang>, else a column named <src_lang>
    tgt_field: str | None

    @property
    def tests(self) -> dict[str, str]:
        return {"test": "test"} if self.test is None else dict(self.test)

    def test_splits(self) -> tuple[str, ...]:
        return tuple(self.tests) or (CARVED_TEST,)

    @property
    def label(self) -> str:
        return "hf-" + "-".join(p for p in (self.path.rstrip("/").rsplit("/", 1)[-1], self.name) if p)

    def validate(self, prefix: str) -> None:
        if self.path in ("", "???"):
            raise ConfigError(f"{prefix}.path is required: name the dataset (a hub name, a local folder, or a "
                              "builder such as parquet with data.data_files)")
        if not self.train:
            raise ConfigError(f"{prefix}.train: name at least one split of the dataset to train on")
        super().validate(prefix)


DataConfig.KINDS.update(multi30k=Multi30kData, files=FilesData, hf=HFData)
