"""A stage's code version covers the modules its body can run, and no others: editing the
comparison report reuses every stage, editing evaluate's figures re-runs evaluate alone.
Also: the import graph behind it, and reuse keys that cover every config value a stage's body
reads (import circles are lint-imports' contracts, tests/test_lint.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import is_dataclass
from importlib import import_module
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nmt.components.system.typed_config import flatten, to_dict
from nmt.components.system.code_version import Imports, closure, code_version, import_graph
from nmt.components.models.factory import model_dict
from nmt.pipeline.cli import main
from nmt.pipeline.stages import runner
from nmt.pipeline.config import load_config
from tests.conftest import ROOT, TINY_RUN

STAGES = tuple(s.name for s in runner.STAGES)
NOT_IN_ANY_STAGE = ("nmt.pipeline.cli", "nmt.pipeline.studies.compare", "nmt.pipeline.promotion.translate",
                    "nmt.pipeline.studies.journey",
                    "nmt.pipeline.studies.journey_report", "nmt.pipeline.promotion.promote", "nmt.pipeline.studies.sweep.driver")


def _stage(name: str) -> set[str]:
    return closure(f"nmt.pipeline.stages.{name}", import_graph())


# -- the closures of the real package ------------------------------------------------------

@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_runs_the_cli_or_the_reports(stage):
    assert not set(NOT_IN_ANY_STAGE) & _stage(stage)


def test_the_figures_belong_to_evaluate_alone():
    assert "nmt.components.evaluation.plots" in _stage("evaluate")
    assert "nmt.components.evaluation.plots" not in _stage("prepare") | _stage("train")
    assert "nmt.components.training.lit_module" in _stage("train")  # the closure does reach what a stage runs


# -- the graph on a package of our own making ------------------------------------------------

def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"nmt/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_graph_separates_module_level_lazy_and_type_checking_imports(tmp_path):
    root = _package(tmp_path, {
        "nmt/a.py": ("from typing import TYPE_CHECKING\nimport json\nfrom nmt import b\n"
                     "if TYPE_CHECKING:\n    from nmt.d import D\n"
                     "def f():\n    from nmt.sub.c import C\n    return C\n"),
        "nmt/b.py": "X = 1\n",
        "nmt/sub/__init__.py": "",
        "nmt/sub/c.py": "import nmt.b\n",
        "nmt/d.py": "",
    })
    graph = import_graph(root)
    assert graph["nmt.a"] == Imports(top=frozenset({"nmt.b"}), lazy=frozenset({"nmt.sub.c"}))
    assert graph["nmt.sub.c"].top == {"nmt.b"}
    assert closure("nmt.a", graph, lazy=False) == {"nmt", "nmt.a", "nmt.b"}
    # a lazy import's packages run too; a TYPE_CHECKING import never runs
    assert closure("nmt.a", graph) == {"nmt", "nmt.a", "nmt.b", "nmt.sub", "nmt.sub.c"}
    with pytest.raises(KeyError, match="nmt.nope"):
        closure("nmt.nope", graph)


def test_the_cached_graph_is_the_parsed_one_and_follows_edits(tmp_path):
    """The parse cache (keyed by content and the set of modules) never answers for an edited
    file, nor for an import that a new module makes resolve differently."""
    root = _package(tmp_path / "src", {"nmt/a.py": "from nmt import b\n", "nmt/b.py": "X = 1\n"})
    cache = tmp_path / "graph.json"
    fresh = import_graph(root)
    assert import_graph(root, cache=cache) == fresh and cache.is_file()
    assert import_graph(root, cache=cache) == fresh  # read back from the cache
    (root / "nmt/a.py").write_text("def f():\n    from nmt import b\n")
    assert import_graph(root, cache=cache)["nmt.a"] == Imports(top=frozenset(), lazy=frozenset({"nmt.b"}))
    (root / "nmt/c.py").write_text("")
    (root / "nmt/a.py").write_text("from nmt import c\n")
    assert import_graph(root, cache=cache)["nmt.a"].top == {"nmt.c"}
    cache.write_text("{not json")  # a half-written cache is parsed over
    assert import_graph(root, cache=cache) == import_graph(root)


def test_code_version_follows_the_closure_only(tmp_path):
    for d in ("nmt", "tests"):
        shutil.copytree(ROOT / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__"))
    train = "nmt.pipeline.stages.train"
    before = code_version(train, root=tmp_path)
    assert before == code_version(train) and len(before) == 16  # the same sources hash the same anywhere

    def edit(rel: str) -> None:
        path = tmp_path / rel
        path.write_text(path.read_text() + "\n# an edit\n")

    edit("tests/components/tracking/test_tracking.py")
    edit("nmt/pipeline/studies/compare.py")
    (tmp_path / "nmt" / "pipeline" / "new_module.py").write_text("X = 1\n")
    assert code_version(train, root=tmp_path) == before  # tests, other modules, a module nobody imports
    edit("nmt/components/decoding/search.py")  # validation decodes with it
    edited = code_version(train, root=tmp_path)
    assert edited != before
    assert code_version(train, "nmt.pipeline.studies.compare", root=tmp_path) != edited  # a shipped module counts


def _stage_versions(root: Path) -> dict[str, str]:
    """Each stage's code version over the sources under ``root``, as ``execute`` computes it."""
    from nmt.pipeline.stages.runner import BOOKKEEPING
    from nmt.pipeline.stages.register import TRANSLATOR_MODEL
    ships = {"register": (TRANSLATOR_MODEL,)}
    return {s: code_version(f"nmt.pipeline.stages.{s}", *ships.get(s, ()), root=root, outside=BOOKKEEPING)
            for s in STAGES}


@pytest.fixture
def package_copy(tmp_path):
    shutil.copytree(ROOT / "nmt", tmp_path / "nmt", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.parametrize("module", ["nmt/components/tracking/store.py", "nmt/components/tracking/names.py",
                                    "nmt/components/tracking/run.py", "nmt/pipeline/stages/runner.py"])
def test_a_comment_in_the_run_store_or_names_reruns_no_stage(package_copy, module):
    before = _stage_versions(package_copy)
    _append(package_copy / module, "# a one-line comment")
    assert _stage_versions(package_copy) == before


def test_a_comment_in_a_model_reruns_train_and_what_follows_not_prepare(package_copy):
    before = _stage_versions(package_copy)
    _append(package_copy / "nmt" / "components" / "models" / "transformer.py", "# a one-line comment")
    after = _stage_versions(package_copy)
    assert after["prepare"] == before["prepare"]
    assert all(after[s] != before[s] for s in ("train", "evaluate", "register"))
    _append(package_copy / "nmt" / "components" / "data" / "clean.py", "# and one in the data code")
    assert _stage_versions(package_copy)["prepare"] != before["prepare"]  # prepare's version does cover its code


# -- reuse keys cover what a stage's body reads --------------------------------------------

READ = re.compile(r"\bcfg\.(\w+)(?:\.(\w+))?")
ALIAS = re.compile(r"^\s*(\w+) = cfg\.(\w+)\s*$", re.M)  # t = cfg.trainer, then t.seed
NOT_KEYED = {  # config read by a stage's module that its params need not hold, and why
    ("train", "tracking", "*"): "how metrics reach the store (deadline, buffer), not what is trained",
    ("evaluate", "data", ""): "only resolves evaluate.splits, which the params hold",
    ("train", "data", ""): "only its target language, resolved with evaluate.bleu_tokenize into metric.signature",
    ("train", "evaluate", "metric"): "a method: what it resolves to is held as metric.signature",
    ("register", "model_name", ""): "held as register.model_name",
    ("train", "recipe", "*"): "its name, held as recipe.name when one is chosen; its values as optim/model/trainer",
    ("evaluate", "data", "tgt_lang"): "the prepare run's (its id is in the key): which Moses rules the papers' BLEU uses",
    ("evaluate", "data", "src_lang"): "the prepare run's (its id is in the key): which side of the gold set is the source",
}


def _reads(stage: str) -> set[tuple[str, str]]:
    """(section, field) of every ``cfg.section[.field]`` in the stage's module, aliases followed."""
    text = Path(import_module(f"nmt.pipeline.stages.{stage}").__file__).read_text()
    reads = set(READ.findall(text))
    for alias, section in ALIAS.findall(text):
        reads |= {(section, f) for f in re.findall(rf"(?<![\w.]){alias}\.(\w+)", text)}
    return reads


def _section_keys(cfg, section: str) -> set[str]:
    value = getattr(cfg, section)
    if section == "model":
        return set(flatten(model_dict(value), "model."))
    return set(flatten(to_dict(value), f"{section}.")) if is_dataclass(value) else {section}


def _stage_params(stage: str, cfg) -> dict[str, str]:
    from nmt.pipeline.stages import evaluate, prepare, register, train
    return {"prepare": lambda: prepare.prepare_inputs(cfg)[1], "train": lambda: train.train_params(cfg, "p"),
            "evaluate": lambda: evaluate.evaluate_params(cfg, "p", "t"),
            "register": lambda: register.register_params(cfg, "p", "t", "e")}[stage]()


@pytest.mark.parametrize("stage", STAGES)
def test_a_stages_params_hold_every_config_value_its_module_reads(stage):
    cfg = load_config([])
    params = set(_stage_params(stage, cfg))
    missing = []
    for section, name in sorted(_reads(stage)):
        if {(stage, section, name), (stage, section, "*")} & set(NOT_KEYED):
            continue
        whole = _section_keys(cfg, section) <= params  # a section held whole covers its properties too
        if not (whole or f"{section}.{name}" in params and name):
            missing.append(f"cfg.{section}.{name}" if name else f"cfg.{section}")
    assert not missing, f"{stage} reads config its reuse key does not hold: {', '.join(missing)}"


def test_trains_reuse_key_covers_validation_decoding():
    from nmt.pipeline.stages.train import train_params
    base = train_params(load_config([]), "p1")
    longer = train_params(load_config(["evaluate.max_len_ratio=3.5"]), "p1")
    assert base["evaluate.max_len_ratio"] != longer["evaluate.max_len_ratio"] == 3.5
    assert ("evaluate", "max_len_ratio") in _reads("train")  # what the check above looks for


# -- for real: a copy of the package, `nmt` run twice in subprocesses --------------------------

def _copy_project(dst: Path) -> Path:
    for d in ("nmt", "conf"):
        shutil.copytree(ROOT / d, dst / d, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _nmt(project: Path, *args: str) -> str:
    """``nmt`` from the copy (PYTHONPATH puts it first); its output, or the test fails with it."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    done = subprocess.run([sys.executable, "-m", "nmt.pipeline.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stderr


def _runs_by_stage() -> dict[str, list]:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    out: dict[str, list] = {s: [] for s in STAGES}
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        if run.data.tags.get("nmt.stage") in out:
            out[run.data.tags["nmt.stage"]].append(run)
    return out


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


@pytest.mark.slow
def test_editing_compare_reuses_every_stage_and_editing_plots_reruns_evaluate(nmt_home, tmp_path):
    project = _copy_project(tmp_path / "project")
    assert main(["run", *TINY_RUN]) == 0  # here, in-process: the copy's sources are these very bytes
    first = {s: runs[0] for s, runs in _runs_by_stage().items()}

    _append(project / "nmt" / "pipeline" / "studies" / "compare.py", "# a one-line edit of the comparison report")
    log = _nmt(project, "run", *TINY_RUN)
    assert {s: [r.info.run_id for r in runs] for s, runs in _runs_by_stage().items()} == \
        {s: [r.info.run_id] for s, r in first.items()}
    assert all(f"{s}: reusing finished run {first[s].info.run_id}" in log for s in STAGES)

    _append(project / "nmt" / "components" / "evaluation" / "plots.py", "# a one-line edit of evaluate's figures")
    log = _nmt(project, "evaluate", *TINY_RUN)
    runs = _runs_by_stage()
    assert [r.info.run_id for r in runs["prepare"]] == [first["prepare"].info.run_id]
    assert [r.info.run_id for r in runs["train"]] == [first["train"].info.run_id]
    (new,) = [r for r in runs["evaluate"] if r.info.run_id != first["evaluate"].info.run_id]
    assert new.info.status == "FINISHED" and new.data.params["upstream.train_run_id"] == first["train"].info.run_id
    assert new.data.tags["nmt.code_version"] != first["evaluate"].data.tags["nmt.code_version"]
    assert "evaluate: reusing" not in log
