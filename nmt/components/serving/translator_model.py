"""The registered translator as MLflow "models from code": this file, not a pickle, is
what ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` run to build the model.

It only names :class:`~nmt.components.serving.translator.Translator`; its weights, config and
tokenizers come from the model's artifacts, the ``nmt`` package from the model's
``code_paths`` (one top-level name, so a host application's own ``components`` or
``pipeline`` packages are left alone). In ``mlflow models serve`` it also puts
:mod:`nmt.components.serving.rest` in front of the scoring server (only a served model needs it).
"""

import os

import mlflow

from nmt.components.serving.translator import SERVER_MODEL_ENV, Translator

if os.environ.get(SERVER_MODEL_ENV):  # the server loads the model before it builds its app
    from nmt.components.serving import rest
    rest.install()
mlflow.models.set_model(Translator())
