"""The model registry's reads and writes, as methods of :class:`nmt.components.tracking.store.RunStore`
(its ``client``): versions, aliases and descriptions; and MLflow's own rules for the names
the config gives it (:mod:`nmt.components.tracking.name_rules` turns a refusal into a ConfigError), so the
rules are exactly the installed MLflow's, its reserved names included."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.utils.models import _parse_model_uri
from mlflow.utils import validation as _rules


def _refusal(value: str, checks: tuple[Callable[[str], None], ...]) -> str | None:
    for check in checks:
        try:
            check(value)
        except MlflowException as err:
            return err.message.rstrip(".")
    return None


def alias_refusal(alias: str) -> str | None:
    """Why MLflow refuses ``alias`` as a registered-model alias, or None."""
    return _refusal(alias, (_rules._validate_model_alias_name, _rules._validate_model_alias_name_reserved))


def model_name_refusal(name: str) -> str | None:
    """Why MLflow refuses ``name`` as a registered model's name, or None."""
    return _refusal(name, (_rules._validate_model_name,))


def experiment_name_refusal(name: str) -> str | None:
    """Why MLflow refuses ``name`` as an experiment's name, or None."""
    return _refusal(name, (_rules._validate_experiment_name,))


def model_uri_name(uri: str) -> str | None:
    """The registered-model name MLflow reads from a ``models:/`` URI; None when it cannot."""
    try:
        return _parse_model_uri(uri).name
    except MlflowException:
        return None


@contextlib.contextmanager
def use_registry_uri(uri: str) -> Iterator[None]:
    """MLflow's global registry URI set to ``uri`` for a while (not ``set_registry_uri``:
    that also exports it to every subprocess), then put back."""
    from mlflow.tracking._model_registry import utils as registry_utils
    before = registry_utils._registry_uri
    registry_utils._registry_uri = uri
    try:
        yield
    finally:
        registry_utils._registry_uri = before


class Registry:
    """Mixed into the run store; ``client`` is its ``MlflowClient``."""

    client: Any

    def version(self, name: str, version: str | int) -> Any:
        return self.client.get_model_version(name, str(version))

    def version_by_alias(self, name: str, alias: str) -> Any:
        return self.client.get_model_version_by_alias(name, alias)

    def versions(self, name: str, tags: Mapping[str, str] | None = None) -> list[Any]:
        """``name``'s versions, those with every one of ``tags`` only (filtered by the store)."""
        where = "".join(f" and tags.{k} = '{v}'" for k, v in (tags or {}).items())
        return list(self.client.search_model_versions(f"name = '{name}'{where}"))

    def model_names(self) -> list[str]:
        """Every registered model's name, sorted."""
        return sorted(m.name for m in self.client.search_registered_models(max_results=1000))

    def aliases(self, name: str) -> dict[str, str]:
        return {a: str(v) for a, v in self.client.get_registered_model(name).aliases.items()}

    def set_alias(self, name: str, alias: str, version: str | None) -> None:
        """Point ``alias`` at ``version``; None removes it."""
        if version is None:
            self.client.delete_registered_model_alias(name, alias)
        else:
            self.client.set_registered_model_alias(name, alias, version)

    def tag_version(self, name: str, version: str, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version, k, v)

    def describe_version(self, name: str, version: str, tags: Mapping[str, str], description: str) -> None:
        self.tag_version(name, version, tags)
        self.client.update_model_version(name, version, description=description)
