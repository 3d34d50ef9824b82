"""The MLflow pyfunc translator: a list of raw source sentences in, translations out; a thin
shell around :class:`~nmt.components.serving.inference.TranslatorCore` (plain torch, no MLflow).

Everything it needs travels inside the logged model: ``weights.pt`` (a state_dict, loaded
with ``weights_only=True``), ``model_config.json`` and the tokenizer files; the project code
comes through ``code_paths``. Decoding options go through predict ``params``.

``predict`` is type-hinted ``list[str] -> list[str]``: the logged signature says so, and
the scoring server hands the JSON ``inputs`` over as it came. MLflow's own check of that hint
is switched off (``_skip_type_hint_validation``, the class attribute MLflow's own ChatModel
uses), because it answers a bad payload with a message that repeats the whole input;
:func:`nmt.components.serving.requests.check_input` checks it instead. Every rejection is a
:class:`~nmt.components.serving.requests.RequestError`, raised here as MLflow's exception
(:class:`ServedRequestError`: HTTP 400 naming the field and the bound); anything
unexpected is a 500 with a request id (details in the server log). Loaded by
``mlflow models serve``, its model file (``translator_model.py``) also puts
:mod:`nmt.components.serving.rest` in front of MLflow's scoring server, so that a request
MLflow would refuse in its own words (a param of the wrong JSON type, a body that is not
JSON, another format) gets the same kind of answer.
In process, ``params`` go through MLflow's check of the signature first: a param that is
not a number is MLflow's ``MlflowException`` naming it, and an unknown name is dropped
with MLflow's warning.

:func:`log_translator` packages one (register and promote log it into their run).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import ErrorCode

from nmt.components.tracking import names as N
from nmt.components.data.tokenizer import TextCodec
from nmt.components.serving import bounds
from nmt.components.serving.inference import TranslatorCore
from nmt.components.models.factory import ModelSpec, save_spec
from nmt.components.serving.requests import RequestError
from nmt.components.system.scratch import scratch, temp_inside

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore

__all__ = ["Translator", "DEFAULT_PARAMS", "log_translator", "ServedRequestError", "served", "SERVER_MODEL_ENV"]

SERVER_MODEL_ENV = "__pyfunc_model_path__"  # scoring_server._SERVER_MODEL_PATH: set in `mlflow models serve`

# The params of the logged signature (register's input example): every number declared a
# double, so MLflow's own check lets any number through to parse_params, which answers an
# out-of-bounds or fractional beam_size with the field and its bound; align a boolean.
DEFAULT_PARAMS = {k: v if isinstance(v, bool) else float(v) for k, v in bounds.DEFAULT_PARAMS.items()}


class Translator(mlflow.pyfunc.PythonModel):
    """MLflow's shell around :class:`~nmt.components.serving.inference.TranslatorCore`: it loads
    the core from the context's artifacts and answers every rejection as an ``MlflowException``."""

    _skip_type_hint_validation = True  # check_input is the check (see the module docstring)

    def load_context(self, context: Any) -> None:
        self.core = TranslatorCore.from_artifacts(context.artifacts)

    @property
    def model(self) -> torch.nn.Module:
        return self.core.model

    @property
    def codec(self) -> TextCodec:
        return self.core.codec

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float,
                  align: bool = False) -> list[str]:
        """As :meth:`TranslatorCore.translate`."""
        return self.core.translate(texts, beam_size, max_len_ratio, length_penalty, align)

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        """Raw sentences -> translations, one each (:meth:`TranslatorCore.predict`); a
        rejection or a failure is MLflow's exception (400 naming the field, 500 with a request id)."""
        try:
            return self.core.predict(model_input, params)
        except RequestError as err:
            raise served(err) from None


# A RequestError as MLflow answers it. MLflow's scoring server makes its JSON body and HTTP
# status only from an MlflowException (any other exception is a 400 with a stack trace), and
# in-process ``predict`` callers catch MlflowException: the pyfunc translator and the REST
# guard raise :func:`served` of every rejection. The plain RequestError stays MLflow-free for
# ``nmt translate``.
class ServedRequestError(RequestError, MlflowException):
    """The same rejection (message, field, error code, extra fields), as an ``MlflowException``;
    still a RequestError, so ``except RequestError`` in our own code sees it."""

    def __init__(self, err: RequestError) -> None:
        # MLflow's __init__ makes error_code, sqlstate, error_class and json_kwargs as for any of
        # its errors; its first message assignment is the one RequestError.message keeps
        MlflowException.__init__(self, err.message, ErrorCode.Value(err.error_code), **err.json_fields)
        self.field, self.json_fields = err.field, err.json_fields

    serialize_as_json = MlflowException.serialize_as_json
    get_http_status_code = MlflowException.get_http_status_code


def served(err: RequestError) -> ServedRequestError:
    """``err`` as an ``MlflowException`` (itself when it is one already)."""
    return err if isinstance(err, ServedRequestError) else ServedRequestError(err)


# models from code: MLflow stores this file, no pickle of our objects (read, never imported
# here: importing it sets MLflow's model)
MODEL_FILE = Path(__file__).resolve().with_name("translator_model.py")


def log_translator(store: RunStore, run_id: str, model: torch.nn.Module, spec: ModelSpec, tokenizers: Path,
                   example: list[str]) -> ModelInfo:
    """Log ``model`` (``spec``) with prepare's ``tokenizers`` folder as run ``run_id``'s
    pyfunc translator; returns its ModelInfo (``models:/m-<id>``)."""
    with scratch("register") as tmp:
        weights, cfg_path = Path(tmp) / N.WEIGHTS, save_spec(spec, Path(tmp) / N.MODEL_CONFIG)
        torch.save(model.state_dict(), weights)
        artifacts = {"weights": str(weights), "model_config": str(cfg_path),
                     "src_tokenizer": str(tokenizers / N.SRC_TOKENIZER),
                     "tgt_tokenizer": str(tokenizers / N.TGT_TOKENIZER)}
        # the signature comes from predict's type hints (list[str] -> list[str]) and the
        # example's params: the scoring server then hands predict the raw JSON list, so a
        # malformed payload is a 400 with a message, never silently coerced to strings.
        # Model.log is what pyfunc.log_model calls, with the run to log into (it has no run_id).
        # The logged model is made here, in the run's experiment: left to MLflow it goes to the
        # process's current experiment (Default, 0), whose artifacts MLflow puts under
        # <cwd>/mlruns/0 of whoever created the store: the model's files landed in a user's
        # working folder, outside the project home, and went when that folder was cleaned
        with store.pinned(), temp_inside(Path(tmp)):  # MLflow's own copy of the model: in our scratch
            run = store.get_run(run_id)
            logged = store.client.create_logged_model(experiment_id=run.experiment_id, name=N.MODEL_NAME,
                                                      source_run_id=run_id, params=dict(run.params))
            return Model.log(None, mlflow.pyfunc, name=N.MODEL_NAME, run_id=run_id, model_id=logged.model_id,
                             python_model=str(MODEL_FILE),
                             flavor_name="pyfunc.ModelFromCode", artifacts=artifacts,
                             code_paths=[str(Path(__file__).resolve().parents[2])],
                             input_example=(example, DEFAULT_PARAMS), pip_requirements=_requirements())


def _requirements() -> list[str]:
    # versions read from the installed distributions: importing Lightning to ask would cost
    # translate and the REST server seconds of start-up
    from importlib.metadata import version
    return [f"torch=={torch.__version__.split('+')[0]}", f"tokenizers=={version('tokenizers')}",
            f"mlflow=={mlflow.__version__}", f"sacrebleu=={version('sacrebleu')}",
            f"pytorch-lightning=={version('pytorch-lightning')}"]
