"""The translator without MLflow: a model's files in, ``predict(texts, params)`` out.

:class:`TranslatorCore` reads ``weights.pt`` (a state_dict, ``weights_only=True``),
``model_config.json`` and the two tokenizers, and decodes with
:mod:`nmt.components.serving.inference`. The MLflow pyfunc
(:class:`~nmt.components.serving.translator.Translator`) is a thin shell around it; ``nmt
translate`` uses it directly, so a call answered from a local copy never imports MLflow
(about 1 s of a one-sentence call's start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nmt.components.data.tokenizer import TextCodec
from nmt.components.models.base import Seq2SeqModel
from nmt.components.models.factory import build, load_spec
from nmt.components.serving.inference import DecodeParams, parse_params, translate_texts
from nmt.components.serving.requests import RequestError, check_input, internal_error
from nmt.components.training.devices import inference_device

ARTIFACTS = ("weights", "model_config", "src_tokenizer", "tgt_tokenizer")  # the logged model's artifact keys


class TranslatorCore:
    """A loaded model and its codec on this process's inference device, in eval mode."""

    def __init__(self, model: Seq2SeqModel, codec: TextCodec) -> None:
        self.model, self.codec = model, codec

    @classmethod
    def from_artifacts(cls, artifacts: Mapping[str, str]) -> TranslatorCore:
        """From the paths of the logged model's artifacts (:data:`ARTIFACTS`)."""
        model = build(load_spec(artifacts["model_config"]))
        model.load_state_dict(torch.load(artifacts["weights"], map_location="cpu", weights_only=True))
        model.to(inference_device()).eval()
        return cls(model, TextCodec.from_files(artifacts["src_tokenizer"], artifacts["tgt_tokenizer"]))

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float,
                  align: bool = False) -> list[str]:
        """Translations in input order; a line blank after normalisation stays blank (with
        ``align``, each is ``translation ||| i-j ...``)."""
        return translate_texts(self.model, self.codec, texts,
                               DecodeParams(beam_size, max_len_ratio, length_penalty, align))

    def predict(self, texts: Any, params: dict[str, Any] | None = None) -> list[str]:
        """Raw sentences -> translations, one each; params ``beam_size``, ``max_len_ratio``,
        ``length_penalty`` within :mod:`nmt.components.serving.inference`'s bounds, else RequestError;
        ``align: true`` adds each one's word alignment (``translation ||| i-j ...``)."""
        try:
            checked = check_input(texts)
            p = parse_params(params)  # bounds first: no work starts for a request out of them
            return self.translate(checked, p.beam_size, p.max_len_ratio, p.length_penalty, p.align)
        except RequestError:
            raise
        except Exception as err:  # a 500 with a request id, never a stack trace in the answer
            raise internal_error(err) from None
