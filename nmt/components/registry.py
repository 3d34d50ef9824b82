"""The model registry's reads and writes, as methods of :class:`nmt.components.store.RunStore`
(its ``client``): versions, aliases and descriptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Registry:
    """Mixed into the run store; ``client`` is its ``MlflowClient``."""

    client: Any

    def version(self, name: str, version: str | int) -> Any:
        return self.client.get_model_version(name, str(version))

    def version_by_alias(self, name: str, alias: str) -> Any:
        return self.client.get_model_version_by_alias(name, alias)

    def versions(self, name: str) -> list[Any]:
        return list(self.client.search_model_versions(f"name = '{name}'"))

    def aliases(self, name: str) -> dict[str, str]:
        return {a: str(v) for a, v in self.client.get_registered_model(name).aliases.items()}

    def set_alias(self, name: str, alias: str, version: str | None) -> None:
        """Point ``alias`` at ``version``; None removes it."""
        if version is None:
            self.client.delete_registered_model_alias(name, alias)
        else:
            self.client.set_registered_model_alias(name, alias, version)

    def describe_version(self, name: str, version: str, tags: Mapping[str, str], description: str) -> None:
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version, k, v)
        self.client.update_model_version(name, version, description=description)
