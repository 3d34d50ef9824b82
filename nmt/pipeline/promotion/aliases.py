"""Registry alias moves as compare-and-swap: ``promote``, ``rollback`` and ``register``
read the aliases, work for minutes, then move them. Just before the move they read them
again; if another command moved one meanwhile, nothing moves and one line says so.

MLflow has no atomic alias update, so a move made in the milliseconds between that re-read
and our writes can still be lost; the minutes-long window of before is closed.
"""

from __future__ import annotations

from collections.abc import Mapping

from nmt.components.system.errors import NmtError
from nmt.components.system.errors import ConfigError
from nmt.components.tracking.retry import not_found
from nmt.components.tracking.store import RunStore


class AliasMoved(NmtError):
    """Another command moved an alias this one read: nothing was moved (a race, not a config error)."""


def aliases(store: RunStore, name: str) -> dict[str, str]:
    """alias -> version of a registered model ({} when the model does not exist yet)."""
    try:
        return store.aliases(name)
    except Exception as err:
        if not_found(err):
            return {}
        raise


def require_model(store: RunStore, name: str) -> dict[str, str]:
    """``name``'s aliases; ConfigError naming the registered models when ``name`` is not one."""
    try:
        return store.aliases(name)
    except Exception as err:
        if not not_found(err):
            raise
    names = store.model_names()
    shown = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
    which = f"registered models: {shown} (--model-name NAME)" if names else "no model is registered there yet"
    raise ConfigError(f"registered model {name!r} does not exist in {store.uri}; {which}")


def check_unmoved(store: RunStore, name: str, read: Mapping[str, str | None], command: str) -> None:
    """Raise :class:`AliasMoved` when an alias of ``read`` (alias -> version this command saw,
    None: absent) points elsewhere now."""
    now = aliases(store, name)
    moved = [f"@{a} {v or 'unset'} -> {now.get(a) or 'unset'}" for a, v in read.items() if now.get(a) != v]
    if moved:
        raise AliasMoved(f"{command}: {name} changed while this command ran ({', '.join(moved)}; another promote, "
                         f"rollback or register); nothing was moved here: check the aliases and run it again")


def swap(store: RunStore, name: str, read: Mapping[str, str | None], moves: Mapping[str, str | None],
         command: str) -> None:
    """Compare (``read``) and then apply ``moves`` in order (alias -> version; None removes it)."""
    check_unmoved(store, name, read, command)
    for alias, version in moves.items():
        store.set_alias(name, alias, version)
