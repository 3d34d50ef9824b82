"""The one place that knows the architectures: parse a ``model`` config, build, save and
load the :class:`ModelSpec` that training and serving share.

Adding an architecture is one model file (a config subclassing ``ArchConfig`` with an
``arch`` name, and a ``Seq2SeqModel``), one YAML in ``conf/model/`` and one line below:
``register(MyConfig, MyModel)``. The registry itself lives in ``arch_configs``, with ours
registered there by their classes' paths, so that the config loader reads it without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.components.system.typed_config import to_dict
from nmt.components.models.arch_configs import ARCHITECTURES, ArchConfig, model_class, parse_model, register
from nmt.components.models.base import Seq2SeqModel, Vocabulary
# the built-ins' model modules, which arch_configs names by path: imported here, so that every
# stage that builds a model has them in its code version (a static reading of its imports)
from nmt.components.models import attention_seq2seq, seq2seq, transformer  # noqa: F401


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network (its weights aside): the architecture's
    config and the vocabulary. Written beside every checkpoint as ``model_config.json``."""

    config: ArchConfig
    vocab: Vocabulary


def model_dict(config: ArchConfig) -> dict[str, Any]:
    """The config as ``{"arch": ..., **fields}``: what the YAML says, for params and JSON."""
    return {"arch": config.arch, **to_dict(config)}


def build(spec: ModelSpec) -> Seq2SeqModel:
    """A freshly initialised network of ``spec``'s architecture."""
    return model_class(spec.config.arch)(spec.config, spec.vocab)


# model_config.json keeps the layout of the first releases, so registered models still load
def spec_to_json(spec: ModelSpec) -> str:
    v = spec.vocab
    return json.dumps({"model": model_dict(spec.config), "src_vocab_size": v.src_size, "tgt_vocab_size": v.tgt_size,
                       "pad_id": v.pad_id, "bos_id": v.bos_id, "eos_id": v.eos_id, "shared_vocab": v.shared}, indent=2)


def spec_from_json(text: str) -> ModelSpec:
    d = json.loads(text)
    vocab = Vocabulary(d["src_vocab_size"], d["tgt_vocab_size"], d["pad_id"], d["bos_id"], d["eos_id"],
                       d["shared_vocab"])
    return ModelSpec(parse_model(d["model"]), vocab)


def save_spec(spec: ModelSpec, path: Path) -> Path:
    Path(path).write_text(spec_to_json(spec))
    return Path(path)


def load_spec(path: Path | str) -> ModelSpec:
    return spec_from_json(Path(path).read_text())


__all__ = ["ARCHITECTURES", "ModelSpec", "Vocabulary", "build", "load_spec", "model_dict", "parse_model",
           "register", "save_spec"]
