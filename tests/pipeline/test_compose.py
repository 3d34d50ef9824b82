"""A remembered config is the composed one, and is never answered once anything it was
composed from changed: a file under conf/, the overrides; a config error is never kept."""

from __future__ import annotations

import os
import time

import pytest

from nmt.components.system.errors import ConfigError
from nmt.pipeline import compose
from nmt.pipeline.config import load_config

OVERRIDES = ["model=transformer_tiny", "trainer.max_steps=7", "data.src_lang=fr"]


def _age(conf) -> None:
    """Files written in the last second are never remembered: make the copy's older."""
    old = time.time() - 5
    for path in conf.rglob("*"):
        os.utime(path, (old, old))


def test_a_remembered_config_equals_the_composed_one_and_skips_hydra(conf_copy, tmp_path, monkeypatch):
    _age(conf_copy)
    cache = tmp_path / "configs"
    first = load_config(OVERRIDES, cache=cache)
    assert len(list(cache.glob("*.json"))) == 1
    monkeypatch.setattr("nmt.pipeline.compose.compose_config", lambda *_: pytest.fail("composed again"))
    assert load_config(OVERRIDES, cache=cache) == first
    monkeypatch.undo()
    assert first == load_config(OVERRIDES)  # and what composing gives
    assert first.model.arch == "transformer" and first.trainer.max_steps == 7 and first.data.src_lang == "fr"


def test_an_edited_conf_file_or_other_overrides_compose_again(conf_copy, tmp_path):
    _age(conf_copy)
    cache = tmp_path / "configs"
    assert load_config(OVERRIDES, cache=cache).trainer.grad_clip == 1.0
    trainer = conf_copy / "trainer" / "default.yaml"
    trainer.write_text(trainer.read_text().replace("grad_clip: 1.0", "grad_clip: 2.5"))
    assert load_config(OVERRIDES, cache=cache).trainer.grad_clip == 2.5  # within its second: composed
    _age(conf_copy)
    assert load_config(OVERRIDES, cache=cache).trainer.grad_clip == 2.5  # older now: composed, kept
    assert load_config([*OVERRIDES, "trainer.grad_clip=0.5"], cache=cache).trainer.grad_clip == 0.5


def test_a_config_error_is_raised_every_time(conf_copy, tmp_path):
    _age(conf_copy)
    cache = tmp_path / "configs"
    for _ in range(2):  # Hydra's refusal: nothing composed, nothing kept
        with pytest.raises(ConfigError, match="transfomer"):
            load_config(["model=transfomer"], cache=cache)
    assert not list(cache.glob("*.json"))
    for _ in range(2):  # composed, then refused by its check: the kept container is checked again
        with pytest.raises(ConfigError, match="max_epochs must be >= 1"):
            load_config(["trainer.max_epochs=0"], cache=cache)


def test_the_folder_keeps_the_newest_entries(conf_copy, tmp_path, monkeypatch):
    _age(conf_copy)
    monkeypatch.setattr(compose, "KEEP", 2)
    cache = tmp_path / "configs"
    for steps in (1, 2, 3):
        load_config([f"trainer.max_steps={steps}"], cache=cache)
    assert len(list(cache.glob("*.json"))) == 2 and not list(cache.glob("*.tmp"))
