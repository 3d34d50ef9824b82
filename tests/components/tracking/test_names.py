"""Names live in one module: no quoted copy of an artifact, tag, alias or metric name
elsewhere in the package, and no module past the size the style allows."""

from __future__ import annotations

import ast
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


# Ruff counts a function's statements (pyproject.toml); no tool counts a module's lines.
MAX_MODULE_LINES = 300


@pytest.mark.parametrize("path", [*PACKAGE, *sorted((ROOT / "benchmarks").glob("*.py"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_module_sizes(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {n} lines (at most {MAX_MODULE_LINES})"
