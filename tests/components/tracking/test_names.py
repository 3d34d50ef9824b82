"""Names live in one module: no quoted copy of an artifact, tag, alias or metric name
elsewhere in the package, and no module or function past the size the style allows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from nmt.components.tracking import names as N

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = [p for d in ("components", "pipeline") for p in sorted((ROOT / "nmt" / d).rglob("*.py"))]
NAMES_MODULE = ROOT / "nmt" / "components" / "tracking" / "names.py"

# Names that are also ordinary words of the code, each with where else it legitimately appears.
ALSO_A_WORD = {
    N.DATA_DIR: "a config section (cfg['data']) and Hydra group",
    N.ATTENTION_DIR: "an architecture's registry name and a map kind",
    N.TAG_ARCH: "the model config's key ({'arch': ...}) and the sweep space's",
    N.EPOCHS_DIR: "also a plain metric name of train runs",
    N.TAG_CHAMPION: "the value of N.CHAMPION itself (an alias and a tag)",
    N.LENGTH_DIR: "a word",
    N.TAG_DECISION: "the promotion version tag's suffix",
    N.REPORT_DIR: "a word",
    N.VTAG_VAL_BLEU: "Tune's name for val/bleu (Tune allows no '/') and the sweep summary's key",
}


def _literals(path: Path) -> list[tuple[int, str]]:
    """Every plain string constant in a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_names_are_constants_of_one_module():
    checked = {v for v in (*N.ARTIFACTS, *N.TAGS, *N.ALIASES, *N.METRICS) if v not in ALSO_A_WORD}
    found = [f"{p.relative_to(ROOT)}:{line}: {value!r}" for p in PACKAGE if p != NAMES_MODULE
             for line, value in _literals(p) if value in checked]
    assert not found, "quoted names outside nmt/components/tracking/names.py (use the constant):\n" + "\n".join(found)


def test_the_check_would_catch_a_copy(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text('"""doc mentions best.ckpt"""\nimport mlflow\nmlflow.log_metric("best/val_bleu", 1.0)\n')
    assert [v for _, v in _literals(leaky)] == ["best/val_bleu"]


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 300, 40
WHY_LONG = re.compile(r"#\s*long:")   # a comment on the def line, or the line above, says why


def _long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    out = []
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            around = " ".join(lines[max(0, node.lineno - 2): node.lineno])
            if length > MAX_FUNCTION_LINES and not WHY_LONG.search(around):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    return out


@pytest.mark.parametrize("path", [*PACKAGE, *sorted((ROOT / "benchmarks").glob("*.py"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {n} lines (at most {MAX_MODULE_LINES})"
    assert not _long_functions(path)
