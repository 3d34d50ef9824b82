from dataclasses import dataclass
from typing import Literal

import pytest

from nmt.components.system.typed_config import flatten, parse
from nmt.components.system.errors import ConfigError
from nmt.components.models.arch_configs import AttentionConfig
from nmt.pipeline.config import load_config


@dataclass(frozen=True)
class Inner:
    kind: Literal["a", "b"] = "a"
    n: int = 1
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outer:
    inner: Inner = Inner()
    rate: float = 0.5
    name: str | None = None


def test_parse_builds_frozen_nested_dataclasses():
    cfg = parse(Outer, {"inner": {"kind": "b", "n": 3}, "rate": 1})
    assert cfg == Outer(Inner("b", 3), 1.0, None)
    with pytest.raises(AttributeError):
        cfg.rate = 2.0  # frozen


def test_unknown_key_names_key_and_valid_keys():
    with pytest.raises(ConfigError, match=r"inner\.typo.*valid keys under 'inner': kind, n"):
        parse(Outer, {"inner": {"typo": 1}})


def test_invalid_choice_lists_choices():
    with pytest.raises(ConfigError, match=r"inner\.kind: invalid choice 'c'; valid choices: a, b"):
        parse(Outer, {"inner": {"kind": "c"}})


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match=r"inner\.n: expected an integer"):
        parse(Outer, {"inner": {"n": "three"}})


def test_flatten_gives_strings():
    assert flatten({"a": {"b": 1, "c": None}, "d": 0.5}) == {"a.b": "1", "a.c": "None", "d": "0.5"}


def test_hydra_defaults_compose_and_overrides_apply():
    cfg = load_config(["model=attention", "trainer.max_epochs=2", "data.src_lang=fr"])
    assert isinstance(cfg.model, AttentionConfig) and cfg.model.arch == "attention" and cfg.trainer.max_epochs == 2
    assert cfg.model_name == "nmt-fr-en"


@pytest.mark.parametrize("override, expected", [
    (["trainer.nope=1"], r"unknown config key 'trainer\.nope'; valid keys under 'trainer': .*max_epochs"),
    (["+trainer.nope=1"], r"unknown config key trainer\.nope; valid keys under 'trainer'"),
    # a section that does not exist: the deepest part that does is named, with its keys
    (["upstream.train_run_id=x"], r"^unknown config key 'upstream\.train_run_id'; valid keys under '<root>': "
                                  r"cluster, data, .*journey, model, .*sweep, tracking, trainer$"),
    (["trainer.nope.deeper=1"], r"^unknown config key 'trainer\.nope\.deeper'; valid keys under 'trainer': .*max_epochs"),
    (["trainer.max_epochs.x=1"], r"^unknown config key 'trainer\.max_epochs\.x'; valid keys under 'trainer': "),
    (["model=rnn"], r"^model=rnn: no such option; valid: attention, gru, .*transformer.*conf/model/\*\.yaml\)$"),
    (["trainer.precision=64"], r"trainer\.precision: invalid choice 64; valid choices: auto, 32, bf16-mixed, 16-mixed"),
    (["model.score=cosine", "model=attention"], r"model\.score: invalid choice 'cosine'; valid choices: bahdanau, dot, general"),
    (["evaluate.splits=[test_2099]"], r"evaluate\.splits: unknown split 'test_2099'; valid: test_2016_flickr"),
    (["evaluate.splits=[]"], r"^evaluate\.splits is empty; name at least one test split: test_2016_flickr, .*all"),
    # a group's value that is not one option: Hydra's own ValueError, or a merge of several
    (["model=null"], r"^model=null: a config group takes one of its options \(attention, gru, .*\); to train several"),
    (["sweep=null"], r"^sweep=null: a config group takes one of its options \(default, .*smoke\)"),
    (["model="], r"^model=: no such option; valid: attention, gru, .*\(conf/model/\*\.yaml\)$"),
    (["model=[gru,lstm]"], r"^model=\[gru,lstm\]: a config group takes one of its options \(.*\); to train several"),
    # Hydra's multirun syntax (nmt has no --multirun), in one line
    (["model=gru,lstm"], r"^model=gru,lstm: several values in one override; for a list write key=\[a,b\], [^\n]*$"),
    (["trainer.max_epochs=range(1,3)"], r"^trainer\.max_epochs=range\(1,3\): several values in one override; [^\n]*$"),
])
def test_bad_config_is_rejected_with_valid_options(override, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(override)


def test_unknown_language_lists_valid_codes():
    from nmt.components.data.sources import DataError
    with pytest.raises(DataError, match=r"data\.tgt_lang: unknown language code 'xx'; valid: en, de, fr, cs"):
        load_config(["data.tgt_lang=xx"])


