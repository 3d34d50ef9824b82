"""A second checkout that shares a venv installed editable from another: ``nmt`` run there
runs the other tree's code, so the command says so instead of running it without a word."""

from __future__ import annotations

import logging

from nmt.components.system.paths import CONF_DIR, other_checkout
from nmt.pipeline.cli import main


def _checkout(path):
    (path / "nmt" / "pipeline").mkdir(parents=True)
    (path / "nmt" / "pipeline" / "cli.py").write_text("")
    (path / "conf").mkdir()
    (path / "sub").mkdir()
    return path


def test_the_checkout_a_folder_is_in_is_named_only_when_it_is_not_the_running_one(tmp_path):
    clone = _checkout(tmp_path / "clone")
    assert other_checkout(clone) == clone and other_checkout(clone / "sub") == clone
    assert other_checkout(CONF_DIR.parent) is None and other_checkout(CONF_DIR.parent / "tests") is None
    assert other_checkout(tmp_path) is None  # no checkout at all
    (tmp_path / "half" / "nmt").mkdir(parents=True)
    assert other_checkout(tmp_path / "half") is None  # a folder named nmt is not a checkout


def test_nmt_in_another_checkout_warns_which_code_runs(tmp_path, monkeypatch, caplog):
    clone = _checkout(tmp_path / "clone")
    monkeypatch.chdir(clone / "sub")
    with caplog.at_level(logging.WARNING, "nmt"):
        assert main(["train", "model=transfomer"]) == 2  # the warning comes before the config's error
    assert f"nmt runs the code of {CONF_DIR.parent}: set PYTHONPATH={clone}" in caplog.text
    caplog.clear()
    monkeypatch.chdir(CONF_DIR.parent)
    with caplog.at_level(logging.WARNING, "nmt"):
        assert main(["train", "model=transfomer"]) == 2
    assert "PYTHONPATH" not in caplog.text
