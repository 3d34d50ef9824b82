"""The MLflow pyfunc translator: a list of raw source sentences in, translations out.

Everything it needs travels inside the logged model: ``weights.pt`` (a state_dict, loaded
with ``weights_only=True``), ``model_config.json`` and the tokenizer files; the project code
comes through ``code_paths``. Decoding options go through predict ``params``.

``predict`` is type-hinted ``list[str] -> list[str]``: the logged signature says so, and
the scoring server hands the JSON ``inputs`` over as it came. MLflow's own check of that hint
is switched off (``_skip_type_hint_validation``, the class attribute MLflow's own ChatModel
uses), because it answers a bad payload with a message that repeats the whole input;
:func:`nmt.components.serving.check_input` checks it instead. Every rejection is a
:class:`~nmt.components.serving.RequestError` (HTTP 400 naming the field and the bound);
anything unexpected is a 500 with a request id (details in the server log). Loaded by
``mlflow models serve``, it also puts :mod:`nmt.components.rest` in front of MLflow's
scoring server, so that a request MLflow would refuse in its own words (a param of the
wrong JSON type, a body that is not JSON, another format) gets the same kind of answer.
In process, ``params`` go through MLflow's check of the signature first: a param that is
not a number is MLflow's ``MlflowException`` naming it, and an unknown name is dropped
with MLflow's warning.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import torch

from nmt.components.data.tokenizer import TextCodec
from nmt.components.devices import inference_device
from nmt.components import inference, rest
from nmt.components.inference import BATCH_SIZE, DecodeParams, parse_params, translate_texts
from nmt.components.models.factory import build, load_spec
from nmt.components.serving import (MAX_CHARS, MAX_SENTENCES, SERVE_LIMIT_ENV, RequestError, check_input,
                                    internal_error, request_limit)

__all__ = ["Translator", "DEFAULT_PARAMS", "MAX_CHARS", "MAX_SENTENCES", "SERVE_LIMIT_ENV", "BATCH_SIZE",
           "check_input", "request_limit"]

# The params of the logged signature (register's input example): every one declared a
# number (double), so MLflow's own check lets any number through to parse_params, which
# answers an out-of-bounds or fractional beam_size with the field and its bound.
DEFAULT_PARAMS = {k: float(v) for k, v in inference.DEFAULT_PARAMS.items()}


class Translator(mlflow.pyfunc.PythonModel):
    _skip_type_hint_validation = True  # check_input is the check (see the module docstring)

    def load_context(self, context: Any) -> None:
        a = context.artifacts
        self.model = build(load_spec(a["model_config"]))
        self.model.load_state_dict(torch.load(a["weights"], map_location="cpu", weights_only=True))
        self.model.to(inference_device()).eval()
        self.codec = TextCodec.from_files(a["src_tokenizer"], a["tgt_tokenizer"])
        rest.install()  # in mlflow models serve only: every request read by our code first

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float) -> list[str]:
        """Translations in input order; a line blank after normalisation stays blank."""
        return translate_texts(self.model, self.codec, texts, DecodeParams(beam_size, max_len_ratio, length_penalty))

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        """Raw sentences -> translations, one each; params ``beam_size``, ``max_len_ratio``,
        ``length_penalty`` within :mod:`nmt.components.inference`'s bounds, else RequestError."""
        try:
            texts = check_input(model_input)
            p = parse_params(params)  # bounds first: no work starts for a request out of them
            return self.translate(texts, p.beam_size, p.max_len_ratio, p.length_penalty)
        except RequestError:
            raise
        except Exception as err:  # a 500 with a request id, never a stack trace in the answer
            raise internal_error(err) from None

