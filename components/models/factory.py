"""Build any architecture from the ``model`` config group (``conf/model/*.yaml``).

``cfg["arch"]`` picks the architecture; the remaining keys are parsed into that
architecture's frozen config dataclass, so a typo or a bad choice fails here with the
valid options listed, before any training starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.config import ConfigError, parse
from components.models.attention_seq2seq import AttentionConfig, AttentionSeq2Seq
from components.models.base import Seq2SeqModel
from components.models.seq2seq import Seq2Seq, Seq2SeqConfig
from components.models.transformer import Transformer, TransformerConfig

MODEL_ARCHS = ("seq2seq", "attention", "transformer")

_REGISTRY: dict[str, tuple[type, type[Seq2SeqModel]]] = {
    "seq2seq": (Seq2SeqConfig, Seq2Seq),
    "attention": (AttentionConfig, AttentionSeq2Seq),
    "transformer": (TransformerConfig, Transformer),
}


def _check_arch(arch: Any) -> str:
    if arch not in MODEL_ARCHS:
        raise ConfigError(
            f"model.arch: invalid choice {arch!r}; valid choices: {', '.join(MODEL_ARCHS)}"
        )
    return arch


def model_config_class(arch: str) -> type:
    """The frozen config dataclass for ``arch`` (e.g. ``TransformerConfig``)."""
    return _REGISTRY[_check_arch(arch)][0]


def parse_model_config(cfg: Mapping[str, Any]) -> tuple[str, Any]:
    """``{"arch": ..., **fields}`` -> (arch, frozen config); raises ConfigError."""
    fields = dict(cfg)
    arch = _check_arch(fields.pop("arch", None))
    return arch, parse(model_config_class(arch), fields, prefix="model")


def build_model(
    cfg: Mapping[str, Any], *, src_vocab_size: int, tgt_vocab_size: int,
    pad_id: int, bos_id: int, eos_id: int, shared_vocab: bool,
) -> Seq2SeqModel:
    """The model named by ``cfg["arch"]``, configured by the rest of ``cfg``."""
    arch, config = parse_model_config(cfg)
    model_cls = _REGISTRY[arch][1]
    return model_cls(
        config, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size,
        pad_id=pad_id, bos_id=bos_id, eos_id=eos_id, shared_vocab=shared_vocab,
    )
