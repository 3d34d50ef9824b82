"""Each architecture's frozen config and the registry of architectures, without torch.

The config loader parses ``model.*`` with these classes, so ``nmt train model.d_model=-1``
is answered in a fraction of a second, before torch is imported (seconds on 2 cores). Each
built-in is registered by the path of its model class (``module:Class``), which the factory
imports only when it builds one; ``register`` also takes the class itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from nmt.components.system.typed_config import parse
from nmt.components.system.errors import ConfigError

if TYPE_CHECKING:
    from nmt.components.models.base import Seq2SeqModel

Score = Literal["bahdanau", "dot", "general"]  # the RNN decoder's attention (models.attention)


@dataclass(frozen=True)
class ArchConfig:
    """The base of every architecture's frozen config. ``arch`` is its name in
    :data:`ARCHITECTURES`; subclasses add their own fields and ``validate``."""

    arch: ClassVar[str] = ""

    @property
    def label(self) -> str:
        """How runs and reports name the model: ``transformer``, ``seq2seq-gru``."""
        return self.arch

    @classmethod
    def from_mapping(cls, value: Any, key: str) -> "ArchConfig":
        """The config loader's hook: ``{"arch": ..., **fields}`` -> that architecture's config
        (of the architectures registered so far)."""
        return value if isinstance(value, ArchConfig) else parse_model(value, prefix=key)


def check_config(prefix: str, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise ConfigError naming the first key whose rule fails; for the configs' ``validate``.

    >>> check_config("model", {"hidden_dim": (cfg.hidden_dim > 0, "must be > 0")})
    """
    where = f"{prefix}." if prefix else ""
    for key, (ok, requirement) in rules.items():
        if not ok:
            raise ConfigError(f"{where}{key}: {requirement}")


# arch -> (config class, model class or "module:Class"), in the order errors list them
ARCHITECTURES: dict[str, tuple[type[ArchConfig], "type[Seq2SeqModel] | str"]] = {}


def register(config_cls: type[ArchConfig], model: "type[Seq2SeqModel] | str") -> None:
    """Make ``model.arch=<config_cls.arch>`` build ``model(config, vocab)``; ``model`` may be
    ``"package.module:Class"``, imported when first built."""
    if not config_cls.arch:
        raise ValueError(f"{config_cls.__name__} needs a class attribute arch = '<name>'")
    ARCHITECTURES[config_cls.arch] = (config_cls, model)


def model_class(arch: str) -> "type[Seq2SeqModel]":
    """The model class registered for ``arch`` (importing its module, and torch, if need be)."""
    config_cls, model = ARCHITECTURES[arch]
    if isinstance(model, str):
        module, _, name = model.partition(":")
        model = getattr(importlib.import_module(module), name)
        ARCHITECTURES[arch] = (config_cls, model)
    return model


def parse_model(mapping: Mapping[str, Any], prefix: str = "model") -> ArchConfig:
    """``{"arch": ..., **fields}`` -> that architecture's frozen config; raises ConfigError."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping with an arch key, got {mapping!r}")
    fields = dict(mapping)
    arch = fields.pop("arch", None)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"{prefix}.arch: invalid choice {arch!r}; valid choices: {', '.join(ARCHITECTURES)}")
    return parse(ARCHITECTURES[arch][0], fields, prefix=prefix)


@dataclass(frozen=True)
class Seq2SeqConfig(ArchConfig):
    """:mod:`nmt.components.models.seq2seq` (Sutskever et al. 2014; Cho et al. 2014)."""
    arch: ClassVar[str] = "seq2seq"
    cell: Literal["gru", "lstm"] = "gru"  # GRU: Cho et al. 2014; LSTM: Sutskever et al. 2014
    emb_dim: int = 256
    hidden_dim: int = 512  # shared by encoder and decoder: the state is handed over as is
    num_layers: int = 1
    dropout: float = 0.5  # on embeddings and between stacked layers
    teacher_forcing: float = 1.0  # P(feed the gold y_{t-1}) in training; else own argmax

    @property
    def label(self) -> str:
        return f"{self.arch}-{self.cell}"

    def validate(self, prefix: str) -> None:
        check_config(prefix, {
            "emb_dim": (self.emb_dim > 0, "must be > 0"),
            "hidden_dim": (self.hidden_dim > 0, "must be > 0"),
            "num_layers": (self.num_layers > 0, "must be > 0"),
            "dropout": (0.0 <= self.dropout < 1.0, "must be in [0, 1)"),
            "teacher_forcing": (0.0 <= self.teacher_forcing <= 1.0, "must be in [0, 1]"),
        })


@dataclass(frozen=True)
class AttentionConfig(ArchConfig):
    """:mod:`nmt.components.models.attention_seq2seq` (Bahdanau et al. 2015)."""
    arch: ClassVar[str] = "attention"
    score: Score = "bahdanau"
    emb_dim: int = 256
    enc_hidden_dim: int = 256  # per direction: annotations h_j have 2 * enc_hidden_dim
    dec_hidden_dim: int = 512  # ``dot`` needs dec_hidden_dim == 2 * enc_hidden_dim
    attn_dim: int = 512  # size of v_a / W_a s / U_a h (``bahdanau`` only)
    dropout: float = 0.5  # on embeddings
    teacher_forcing: float = 1.0  # P(feed the gold y_{i-1}) in training; else own argmax

    def validate(self, prefix: str) -> None:
        check_config(prefix, {
            "emb_dim": (self.emb_dim > 0, "must be > 0"),
            "enc_hidden_dim": (self.enc_hidden_dim > 0, "must be > 0"),
            "dec_hidden_dim": (self.dec_hidden_dim > 0, "must be > 0"),
            "attn_dim": (self.attn_dim > 0, "must be > 0"),
            "dropout": (0.0 <= self.dropout < 1.0, "must be in [0, 1)"),
            "teacher_forcing": (0.0 <= self.teacher_forcing <= 1.0, "must be in [0, 1]"),
            "score": (
                self.score != "dot" or self.dec_hidden_dim == 2 * self.enc_hidden_dim,
                f"'dot' needs dec_hidden_dim == 2 * enc_hidden_dim, got "
                f"{self.dec_hidden_dim} != 2 * {self.enc_hidden_dim}",
            ),
        })


@dataclass(frozen=True)
class TransformerConfig(ArchConfig):
    """:mod:`nmt.components.models.transformer` (Vaswani et al. 2017); its docstring gives the
    deviations and the ablation switches."""
    arch: ClassVar[str] = "transformer"
    d_model: int = 256
    num_encoder_layers: int = 3
    num_decoder_layers: int = 3
    num_heads: int = 8  # d_model must divide by it
    ff_dim: int = 1024
    dropout: float = 0.1  # P_drop, section 5.4 (residuals, embeddings, attention weights)
    norm: Literal["pre", "post"] = "pre"  # the paper: post (section 3.1); see the model's docstring
    positional: Literal["sinusoidal", "learned", "none"] = "sinusoidal"  # the paper: sinusoidal (3.5)
    residual: bool = True  # the paper: x + Sublayer(x) around every sub-layer (section 3.1)
    share_embeddings: bool = True  # section 3.4; src too only with a joint vocabulary
    max_positions: int = 512  # longest sequence the position table covers

    def validate(self, prefix: str) -> None:
        check_config(prefix, {
            "d_model": (self.d_model > 0, "must be > 0"),
            "num_encoder_layers": (self.num_encoder_layers > 0, "must be > 0"),
            "num_decoder_layers": (self.num_decoder_layers > 0, "must be > 0"),
            "num_heads": (self.num_heads > 0 and self.d_model % self.num_heads == 0,
                          f"must be > 0 and divide d_model={self.d_model}"),
            "ff_dim": (self.ff_dim > 0, "must be > 0"),
            "dropout": (0.0 <= self.dropout < 1.0, "must be in [0, 1)"),
            "max_positions": (self.max_positions > 0, "must be > 0"),
        })


register(Seq2SeqConfig, "nmt.components.models.seq2seq:Seq2Seq")
register(AttentionConfig, "nmt.components.models.attention_seq2seq:AttentionSeq2Seq")
register(TransformerConfig, "nmt.components.models.transformer:Transformer")
