"""The project's own import graph, read statically from the sources (nothing is imported):
which ``nmt`` modules each module imports, at module level and inside functions, and what
a module pulls in transitively. The code version of a stage is a hash over that closure,
so editing a module a stage never imports does not invalidate the stage's finished runs.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE = "nmt"
ROOT = Path(__file__).resolve().parents[3]  # the folder that holds the ``nmt`` package


@dataclass(frozen=True)
class Imports:
    """One module's direct imports of ``nmt`` modules: ``top`` at module level (run on
    import; ``if TYPE_CHECKING:`` blocks excluded), ``lazy`` inside function bodies."""

    top: frozenset[str]
    lazy: frozenset[str]


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """``nmt.a.b`` -> ``root/nmt/a/b.py`` (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, here: str, known: set[str], is_pkg: bool) -> set[str]:
    """The ``nmt`` modules one import statement loads (``from pkg import mod`` names ``pkg.mod``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            pkg = here.split(".") if is_pkg else here.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    return {n for n in names if n in known}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _scan(node: ast.AST, here: str, known: set[str], is_pkg: bool, in_function: bool,
          top: set[str], lazy: set[str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:  # only the else branch runs
                _scan(other, here, known, is_pkg, in_function, top, lazy)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            (lazy if in_function else top).update(_targets(child, here, known, is_pkg))
        inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        _scan(child, here, known, is_pkg, inner, top, lazy)


def import_graph(root: Path = ROOT, sources: dict[str, bytes] | None = None,
                 cache: Path | None = None) -> dict[str, Imports]:
    """Every ``nmt`` module under ``root`` -> its direct :class:`Imports` of other ``nmt`` modules.
    ``sources``: the files' bytes, if read already. ``cache``: a JSON file of earlier parses,
    keyed by each file's content hash (parsing ~100 files costs 0.2-0.3 s of every start-up)."""
    files = module_files(root)
    known = set(files)
    sources = sources if sources is not None else {n: p.read_bytes() for n, p in files.items()}
    seen = _read_cache(cache)
    graph, parsed = {}, {}
    # the set of modules is part of the key: one added or removed changes what an import names
    modules = hashlib.sha256("\n".join(sorted(known)).encode()).hexdigest()[:16]
    for name, path in files.items():
        key = f"{name}:{modules}:{hashlib.sha256(sources[name]).hexdigest()[:32]}"
        if key in seen:
            top, lazy = (set(x) for x in seen[key])
        else:
            top, lazy = set(), set()
            _scan(ast.parse(sources[name], str(path)), name, known, path.name == "__init__.py", False, top, lazy)
            top.discard(name)
            lazy.discard(name)
        parsed[key] = [sorted(top), sorted(lazy - top)]
        graph[name] = Imports(frozenset(top), frozenset(lazy - top))
    if cache is not None and parsed.keys() != seen.keys():
        _write_cache(cache, parsed)
    return graph


def _read_cache(cache: Path | None) -> dict[str, list[list[str]]]:
    try:
        return json.loads(cache.read_text()) if cache is not None else {}
    except (OSError, ValueError):  # none yet, or half-written by a process that died: parse again
        return {}


def _write_cache(cache: Path, parsed: dict[str, list[list[str]]]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps(parsed))
        os.replace(tmp, cache)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:  # a read-only home: the cache only saves time
        pass


def closure(module: str, graph: dict[str, Imports], *, lazy: bool = True, outside: tuple[str, ...] = ()
            ) -> set[str]:
    """``module`` and every ``nmt`` module it imports, transitively; ``lazy=False`` follows
    module-level imports only (what ``import module`` runs), else function-level ones too
    (what the module's functions may run). Each module's packages count too: importing
    ``nmt.a.b`` runs ``nmt/__init__.py`` and ``nmt/a/__init__.py``. ``outside``: modules
    and packages left out and not followed (what they alone import is left out too)."""
    if module not in graph:
        raise KeyError(f"{module} is not a module of {PACKAGE}")
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen or is_within(name, outside):
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in graph]
        todo += graph[name].top | (graph[name].lazy if lazy else frozenset())
    return seen


def is_within(module: str, names: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``names`` or inside a package among them."""
    return any(module == n or module.startswith(n + ".") for n in names)


def code_version(module: str, *also: str, root: Path = ROOT, outside: tuple[str, ...] = ()) -> str:
    """Content hash (16 hex digits) of the sources in ``module``'s closure (module-level and
    lazy imports alike: function bodies run) and in the closures of ``also`` (modules a stage
    ships without importing them), less ``outside`` (see :func:`closure`). It changes when code
    the module can run changes, committed or not, and not when any other module does. Raises
    KeyError for a name that is no module."""
    files = module_files(root)
    return _digest((module, *also), import_graph(root), {n: p.read_bytes() for n, p in files.items()}, outside)


def _digest(modules: tuple[str, ...], graph: dict[str, Imports], sources: dict[str, bytes],
            outside: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    for name in sorted(set().union(*(closure(m, graph, outside=outside) for m in modules))):
        h.update(name.encode())
        h.update(sources[name])
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def _this_process() -> tuple[dict[str, Imports], dict[str, bytes]]:
    sources = {n: p.read_bytes() for n, p in module_files().items()}
    home = Path(os.environ.get("NMT_HOME") or ROOT)  # as nmt.components.tracking.uri.project_home
    return import_graph(sources=sources, cache=home / ".nmt" / "import_graph.json"), sources


def running_code_version(module: str, *also: str, outside: tuple[str, ...] = ()) -> str:
    """:func:`code_version` of this process's own ``nmt``, its sources read once per process:
    the code that runs is what the process imported, not what the files say an hour later."""
    graph, sources = _this_process()
    return _digest((module, *also), graph, sources, outside)

