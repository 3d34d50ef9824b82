"""A registered translator loaded into this installation's own code.

``nmt translate``, ``nmt promote`` and the demo never run code from the artifact store
(neither a pickle nor the ``nmt`` copy a version shipped): they read the version's files
(``weights.pt`` with ``weights_only=True``, ``model_config.json``, the tokenizers) and build
the model with today's :class:`~nmt.components.serving.translator.Translator`. A version whose
files today's code cannot read fails in one line. ``mlflow models serve`` and
``mlflow.pyfunc.load_model`` run the code the version shipped (models from code).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import yaml

from nmt.components.system.scratch import scratch
from nmt.components.tracking.registry import model_uri_name
from nmt.components.system.typed_config import ConfigError
from nmt.components.serving.translator import Translator
from nmt.pipeline.promotion.aliases import require_model

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore

ARTIFACT_KEYS = ("weights", "model_config", "src_tokenizer", "tgt_tokenizer")


class LocalTranslator:
    """``predict(texts, params)`` like a loaded pyfunc, on today's code."""

    def __init__(self, model: Translator, uri: str):
        self.model, self.uri = model, uri

    def predict(self, texts: list[str], params: dict[str, Any] | None = None) -> list[str]:
        return self.model.predict(None, texts, params)


def load_translator(store: RunStore, uri: str) -> LocalTranslator:
    """``models:/<name>@<alias>`` (or any model URI) of ``store`` -> a translator built by
    today's code from that model's files; ConfigError when it is not an nmt translator, or
    names a registered model that does not exist (listing those that do)."""
    name = model_uri_name(uri) if uri.startswith("models:/") else None
    if name:
        try:
            require_model(store, name)
        except ConfigError as err:
            raise ConfigError(f"--model {uri}: {err}") from None
    with scratch("model") as tmp:  # a server's files are copied: gone once the model is in memory
        local = store.download_uri(uri, tmp)
        meta = yaml.safe_load((local / "MLmodel").read_text()) if (local / "MLmodel").is_file() else {}
        found = ((meta or {}).get("flavors", {}).get("python_function", {}) or {}).get("artifacts") or {}
        missing = [k for k in ARTIFACT_KEYS if k not in found]
        if missing:
            raise ConfigError(f"{uri} is not an nmt translator (its MLmodel lists no {', '.join(missing)} artifact); "
                              "give a version registered by nmt")
        model = Translator()
        # load_context reads only the context's artifacts: MLflow's PythonModelContext is not needed
        model.load_context(SimpleNamespace(artifacts={k: str(local / found[k]["path"]) for k in ARTIFACT_KEYS}))
    return LocalTranslator(model, uri)
