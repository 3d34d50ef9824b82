"""A plain name skips MLflow's validators (so a config check does not import MLflow); the
shortcut must never accept a name that MLflow refuses."""

from __future__ import annotations

import pytest

from nmt.components.tracking.name_rules import plain
from nmt.components.tracking.registry import alias_refusal, experiment_name_refusal, model_name_refusal

NAMES = ["champion", "prod-eu", "nmt-de-en", "Nmt_2", "latest", "LATEST", "v3", "V12", "v", "v1a", "a" * 100,
         "a" * 101, "1abc", "_x", "-x", "nmt.de", "a/b", "a:b", "a b", "..", "a@b", "ü", ""]


@pytest.mark.parametrize("name", NAMES)
def test_a_plain_name_is_one_that_mlflow_accepts_as_alias_model_and_experiment(name):
    if plain(name):
        assert alias_refusal(name) is None and model_name_refusal(name) is None
        assert experiment_name_refusal(name) is None


def test_the_reserved_aliases_are_not_plain():
    assert plain("champion") and plain("nmt-de-en")
    assert not any(plain(n) for n in ("latest", "Latest", "v3", "V12", "a/b", ""))
