"""The MLflow pyfunc translator: a list of raw source sentences in, translations out.

Everything it needs travels inside the logged model: ``weights.pt`` (a state_dict, loaded
with ``weights_only=True``), ``model_config.json`` and the tokenizer files; the project code
comes through ``code_paths``. Decoding options go through predict ``params``.

``predict`` is type-hinted ``list[str] -> list[str]``: the logged signature says so, and
the scoring server hands the JSON ``inputs`` over as it came. MLflow's own check of that hint
is switched off (``_skip_type_hint_validation``, the class attribute MLflow's own ChatModel
uses), because it answers a bad payload with a message that repeats the whole input;
:func:`nmt.components.serving.requests.check_input` checks it instead. Every rejection is a
:class:`~nmt.components.serving.requests.RequestError` (HTTP 400 naming the field and the bound);
anything unexpected is a 500 with a request id (details in the server log). Loaded by
``mlflow models serve``, it also puts :mod:`nmt.components.serving.rest` in front of MLflow's
scoring server, so that a request MLflow would refuse in its own words (a param of the
wrong JSON type, a body that is not JSON, another format) gets the same kind of answer.
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
from mlflow.models import Model
from mlflow.models.model import ModelInfo

from nmt.components.tracking import names as N
from nmt.components.data.tokenizer import TextCodec
from nmt.components.training.devices import inference_device
from nmt.components.serving import inference, rest
from nmt.components.serving.inference import BATCH_SIZE, DecodeParams, parse_params, translate_texts
from nmt.components.models.factory import ModelSpec, build, load_spec, save_spec
from nmt.components.serving.requests import (MAX_CHARS, MAX_SENTENCES, SERVE_LIMIT_ENV, RequestError, check_input,
                                    internal_error, request_limit)
from nmt.components.system.scratch import scratch

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore

__all__ = ["Translator", "DEFAULT_PARAMS", "MAX_CHARS", "MAX_SENTENCES", "SERVE_LIMIT_ENV", "BATCH_SIZE",
           "check_input", "request_limit", "log_translator"]

# The params of the logged signature (register's input example): every number declared a
# double, so MLflow's own check lets any number through to parse_params, which answers an
# out-of-bounds or fractional beam_size with the field and its bound; align a boolean.
DEFAULT_PARAMS = {k: v if isinstance(v, bool) else float(v) for k, v in inference.DEFAULT_PARAMS.items()}


class Translator(mlflow.pyfunc.PythonModel):
    _skip_type_hint_validation = True  # check_input is the check (see the module docstring)

    def load_context(self, context: Any) -> None:
        a = context.artifacts
        self.model = build(load_spec(a["model_config"]))
        self.model.load_state_dict(torch.load(a["weights"], map_location="cpu", weights_only=True))
        self.model.to(inference_device()).eval()
        self.codec = TextCodec.from_files(a["src_tokenizer"], a["tgt_tokenizer"])
        rest.install()  # in mlflow models serve only: every request read by our code first

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float,
                  align: bool = False) -> list[str]:
        """Translations in input order; a line blank after normalisation stays blank (with
        ``align``, each is ``translation ||| i-j ...``)."""
        return translate_texts(self.model, self.codec, texts,
                               DecodeParams(beam_size, max_len_ratio, length_penalty, align))

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        """Raw sentences -> translations, one each; params ``beam_size``, ``max_len_ratio``,
        ``length_penalty`` within :mod:`nmt.components.serving.inference`'s bounds, else RequestError;
        ``align: true`` adds each one's word alignment (``translation ||| i-j ...``)."""
        try:
            texts = check_input(model_input)
            p = parse_params(params)  # bounds first: no work starts for a request out of them
            return self.translate(texts, p.beam_size, p.max_len_ratio, p.length_penalty, p.align)
        except RequestError:
            raise
        except Exception as err:  # a 500 with a request id, never a stack trace in the answer
            raise internal_error(err) from None



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
        with store.pinned():
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
