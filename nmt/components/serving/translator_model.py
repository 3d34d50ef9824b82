"""The registered translator as MLflow "models from code": this file, not a pickle, is
what ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` run to build the model.

It only names :class:`~nmt.components.serving.translator.Translator`; its weights, config and
tokenizers come from the model's artifacts, the ``nmt`` package from the model's
``code_paths`` (one top-level name, so a host application's own ``components`` or
``pipeline`` packages are left alone).
"""

import mlflow

from nmt.components.serving.translator import Translator

mlflow.models.set_model(Translator())
