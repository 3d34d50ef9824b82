"""The MLflow pyfunc translator: a list of raw source sentences in, translations out.

Everything it needs travels inside the logged model: ``weights.pt`` (a state_dict, loaded
with ``weights_only=True``), ``model_config.json`` and the tokenizer files; the project code
comes through ``code_paths``. Decoding options go through predict ``params``.

``predict`` is type-hinted ``list[str] -> list[str]``: MLflow then validates the input
against the hint (a string, numbers, nulls or nested lists are rejected, not coerced to
strings) and the scoring server passes the JSON ``inputs`` list through unchanged.
:func:`check_input` adds the limits. Every rejection is an ``MlflowException`` with
``INVALID_PARAMETER_VALUE``: HTTP 400 with a message from ``mlflow models serve``.
"""

from __future__ import annotations

import os
from typing import Any

import mlflow.pyfunc
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from nmt.components.data.datamodule import source_batch
from nmt.components.text import normalize
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding import translate_ids
from nmt.components.devices import inference_device
from nmt.components.models.factory import build, load_spec

MAX_SENTENCES = 1000        # per REST request (mlflow models serve); $NMT_SERVE_MAX_SENTENCES changes it
MAX_CHARS = 2000            # per sentence
SERVE_LIMIT_ENV = "NMT_SERVE_MAX_SENTENCES"
BATCH_SIZE = 64             # sentences decoded together: predict takes any number, in these batches
DEFAULT_PARAMS = {"beam_size": 5, "max_len_ratio": 1.5, "length_penalty": 0.6}


def request_limit() -> int | None:
    """Sentences allowed in one request: a bound for the REST endpoint only (MLflow's scoring
    server marks its process); an in-process ``predict`` takes any number, in batches."""
    if os.environ.get("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "").lower() != "true":
        return None
    return int(os.environ.get(SERVE_LIMIT_ENV) or MAX_SENTENCES)


def check_input(texts: Any) -> list[str]:
    """Reject what is not a non-empty list of reasonable strings, with a message (HTTP 400)."""
    if hasattr(texts, "iloc"):  # pandas (models logged before the type hints): one column of strings
        if texts.ndim == 2 and texts.shape[1] != 1:
            raise MlflowException(f"inputs must be one column of strings, got {texts.shape[1]} columns",
                                  INVALID_PARAMETER_VALUE)
        texts = (texts.iloc[:, 0] if texts.ndim == 2 else texts).tolist()
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise MlflowException(f"inputs must be a list of strings, got {type(texts).__name__}",
                              INVALID_PARAMETER_VALUE)
    if not texts:
        raise MlflowException("inputs is an empty list; send at least one sentence", INVALID_PARAMETER_VALUE)
    limit = request_limit()
    if limit is not None and len(texts) > limit:
        raise MlflowException(f"{len(texts)} sentences in one request; at most {limit} (${SERVE_LIMIT_ENV} "
                              "on the server); send them in several requests", INVALID_PARAMETER_VALUE)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise MlflowException(f"inputs[{i}] is {type(t).__name__}, not a string", INVALID_PARAMETER_VALUE)
        if len(t) > MAX_CHARS:
            raise MlflowException(f"inputs[{i}] has {len(t)} characters; at most {MAX_CHARS}",
                                  INVALID_PARAMETER_VALUE)
    return list(texts)


class Translator(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        a = context.artifacts
        self.model = build(load_spec(a["model_config"]))
        self.model.load_state_dict(torch.load(a["weights"], map_location="cpu", weights_only=True))
        self.model.to(inference_device()).eval()
        self.codec = TextCodec.from_files(a["src_tokenizer"], a["tgt_tokenizer"])

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float) -> list[str]:
        """Translations in input order; a blank line stays blank."""
        out: list[str] = [""] * len(texts)
        order = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: len(texts[i]))  # similar lengths
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start:start + BATCH_SIZE]
            ids = self.codec.encode_src([normalize(texts[i]) for i in chunk])
            src, mask = source_batch(ids)
            hyp = translate_ids(self.model, src, mask, beam_size=beam_size,
                                max_len_ratio=max_len_ratio, length_penalty=length_penalty)
            for i, h in zip(chunk, self.codec.decode_tgt(hyp)):
                out[i] = h
        return out

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        texts = check_input(model_input)
        p = {**DEFAULT_PARAMS, **(params or {})}
        if int(p["beam_size"]) < 1:
            raise MlflowException("params.beam_size must be >= 1", INVALID_PARAMETER_VALUE)
        return self.translate(texts, int(p["beam_size"]), float(p["max_len_ratio"]), float(p["length_penalty"]))
