"""The journey's recipes: each arm at its architecture's tuned recipe (conf/recipe/<model>.yaml),
every arm at the shared one under journey.recipe=shared, and the report's flag for an arm that
falls short of what its recipe reached when it was tuned."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from nmt.components.system.paths import CONF_DIR
from nmt.components.system.errors import ConfigError
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.journey import arm_configs
from nmt.pipeline.studies.journey_report import SHORTFALL, _recipe_table, at_tokens


def _recipe_file(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "recipe" / f"{name}.yaml"))


def _model_group(overrides: list[str]) -> str:
    return next(o.split("=", 1)[1] for o in overrides if o.startswith("model="))


@pytest.mark.parametrize("journey", ["default", "ablation"])
def test_each_arm_trains_at_its_own_architectures_recipe(journey):
    cfg = load_config([f"journey={journey}"])
    assert cfg.journey.recipe == "own"
    for (arm, _), c in arm_configs(cfg, [f"journey={journey}"]).items():
        want = _recipe_file(_model_group(cfg.journey.arms[arm]))
        assert c.recipe is not None and c.recipe.name == want["recipe"]["name"]
        for key, value in want["optim"].items():
            assert getattr(c.optim, key) == pytest.approx(value), (arm, key)
        assert c.model.dropout == pytest.approx(want["model"]["dropout"])
        assert c.trainer.batch_tokens == want["trainer"]["batch_tokens"]
    # the arms do not all share one recipe: the GRU's and the Transformer's differ in something
    configs = arm_configs(cfg, [f"journey={journey}"])
    assert len({(c.recipe.name, c.optim.lr, c.model.dropout) for c in configs.values()}) > 1


def test_the_switch_runs_every_arm_at_the_shared_recipe():
    base = ["journey.recipe=shared"]
    cfg = load_config(base)
    shared = _recipe_file("shared")
    configs = arm_configs(cfg, base)
    for (arm, _), c in configs.items():
        assert c.recipe.name == "shared"
        assert (c.optim.lr, c.optim.schedule, c.optim.warmup_steps, c.optim.label_smoothing) == (
            shared["optim"]["lr"], shared["optim"]["schedule"], shared["optim"]["warmup_steps"],
            shared["optim"]["label_smoothing"])
        # each model keeps its own dropout: the shared recipe says nothing of it
        own = load_config([*cfg.journey.arms[arm]])
        assert c.model.dropout == own.model.dropout
    assert len({(c.optim.lr, c.optim.schedule) for c in configs.values()}) == 1


def test_an_arm_that_names_its_recipe_keeps_it():
    base = ["journey.arms.gru=['model=gru','recipe=shared']"]
    configs = arm_configs(load_config(base), base)
    assert {c.recipe.name for (arm, _), c in configs.items() if arm == "gru"} == {"shared"}
    assert {c.recipe.name for (arm, _), c in configs.items() if arm == "transformer"} == {"transformer_tiny"}


def test_an_architecture_without_a_tuned_recipe_is_refused_before_anything_runs():
    base = ["journey.arms.gru=['model=lstm']"]
    with pytest.raises(ConfigError, match=r"journey.arms.gru: .*'lstm' has no tuned recipe conf/recipe/lstm.yaml.*"
                                          r"nmt sweep sweep=recipe profile=recipe model=lstm.*journey.recipe=shared"):
        arm_configs(load_config(base), base)


def test_the_demo_trains_at_the_transformers_tuned_recipe():
    demo, recipe = load_config(["profile=demo"]), _recipe_file("transformer_tiny")
    assert demo.recipe.name == "transformer_tiny" and demo.optim.lr == recipe["optim"]["lr"]
    assert demo.recipe.reference_val_bleu == recipe["recipe"]["reference_val_bleu"]


def test_bleu_at_a_token_budget_is_read_at_the_first_validation_past_it():
    curve = (np.array([400.0, 900.0, 1200.0]), np.array([5.0, 20.0, 24.0]))
    assert at_tokens(curve, 900) == 20.0 and at_tokens(curve, 1000) == 24.0
    assert at_tokens(curve, 5000) is None


def _row(recipe, at_budget, short):
    return {"arm": recipe, "recipe": recipe, "lr": 1e-3, "schedule": "constant", "warmup": 0, "label_smoothing": 0.0,
            "dropout": 0.1, "batch_tokens": 2048, "tuned_by": "a sweep", "budget_tokens": 1000,
            "reference": 25.0, "val_bleu_at_budget": at_budget, "short": short}


def test_the_report_flags_an_arm_below_its_recipes_reference():
    md = "\n".join(_recipe_table([_row("transformer_tiny", 25.0 - 2 * SHORTFALL, True), _row("gru", 24.8, False),
                                  _row("attention", None, False)]))
    lines = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "below its recipe's reference" in lines["transformer_tiny"]
    assert "below" not in lines["gru"] and "not reached" in lines["attention"]
