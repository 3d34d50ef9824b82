"""Config values as users quote them: every shell argument reaches Hydra as the shell gave
it, and MLproject's one string of overrides is split by Hydra's grammar, quotes kept.
Names with spaces, commas, parentheses, quotes and ``=`` round-trip into MLflow unchanged."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from mlflow.projects._project_spec import load_project

from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import build_parser, main
from nmt.pipeline.cli import command_config
from nmt.pipeline.override_line import override_value, split_overrides

ROOT = Path(__file__).resolve().parents[2]
# (experiment and model name, sweep name: one folder, so letters, digits and . _ - = + only)
NAMES = [("de-en (run 2)", "k=v"), ("Übersetzung 实验", "a+b=c"), ("a, b", "x.y=1"), ("k = v", "run-2"),
         ("it's \"quoted\"", "q=it")]


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory):
    """One SQLite store for every name (making its tables takes seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('names') / 'mlflow.db'}"
    RunStore.open(uri, "setup")
    return uri


def _config(argv: list[str]):
    return command_config(build_parser().parse_args(argv))[0]


def test_the_issue_s_quoted_values_reach_the_config():
    for value, want in [("'de-en (run 2)'", "de-en (run 2)"), ("'Übersetzung 实验'", "Übersetzung 实验"),
                        ("'a, b'", "a, b")]:
        assert _config(["prepare", f"tracking.experiment={value}"]).tracking.experiment == want


@pytest.mark.parametrize("name, sweep", NAMES)
def test_names_round_trip_from_the_shell_into_mlflow(name, sweep, store_uri):
    q = override_value(name)
    cfg = _config(["sweep", f"tracking.experiment={q}", f"register.model_name={q}",
                   f"sweep.name={override_value(sweep)}"])
    assert (cfg.tracking.experiment, cfg.register.model_name, cfg.sweep.name) == (name, name, sweep)
    store = RunStore.open(store_uri, cfg.tracking.experiment)
    store.client.create_registered_model(cfg.register.model_name)
    with store.run(cfg.sweep.name) as run:
        pass
    assert store.client.get_experiment(store.experiment_id).name == name
    assert store.client.get_registered_model(name).name == name
    assert store.get_run(run.run_id).name == sweep


def test_mlproject_overrides_string_is_split_by_hydra_s_grammar(tmp_path):
    """The command MLflow itself builds from MLproject (its quoting), read as a shell reads it."""
    line = "data.train_limit=200 tracking.experiment='de-en (run 2)' register.model_name=\"it's, (x)\""
    entry = load_project(str(ROOT)).get_entry_point("prepare")
    command = entry.compute_command({"overrides": line, "src_lang": "de", "tgt_lang": "fr"}, str(tmp_path))
    argv = shlex.split(command)
    assert argv[0] == "nmt"
    assert split_overrides(line) == ["data.train_limit=200", "tracking.experiment='de-en (run 2)'",
                                     "register.model_name=\"it's, (x)\""]
    cfg = _config(argv[1:])
    assert (cfg.data.tgt_lang, cfg.data.train_limit, cfg.tracking.experiment, cfg.register.model_name) == \
        ("fr", 200, "de-en (run 2)", "it's, (x)")


def test_brackets_and_spaced_values_stay_one_override():
    assert split_overrides("evaluate.splits=[a, b] x.y={k: 1, j: 2}  z=hello world ~w +v=1") == \
        ["evaluate.splits=[a, b]", "x.y={k: 1, j: 2}", "z=hello world", "~w", "+v=1"]


def test_an_unquoted_path_with_a_tilde_says_to_quote_it(capsys):
    assert main(["prepare", "sweep.storage_path=~/x"]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert "sweep.storage_path=~/x" in line and "quote" in line and "sweep.storage_path='~/x'" in line
