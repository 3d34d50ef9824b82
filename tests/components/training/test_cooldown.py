"""optim.cooldown: over the last fraction of the training budget the rate falls linearly to 0,
whichever limit (steps, target tokens, minutes) ends the run; before it, the schedule is as it
was. A budget-cut run otherwise stops at whatever rate its schedule had reached."""

from __future__ import annotations

import pytest
from pytorch_lightning.callbacks import Callback

from nmt.components.system.errors import ConfigError
from nmt.components.training.lit_module import lr_lambda
from nmt.components.tracking.store import RunStore
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.train import fit
from nmt.pipeline.upstream import PreparedData
from tests.components.training.test_token_budget import SMALL, _latest
from tests.conftest import module_home

pytestmark = pytest.mark.slow
PEAK = 1e-3


@pytest.mark.parametrize("schedule,warmup", [("constant", 0), ("inverse_sqrt", 3)])
def test_the_rate_is_the_schedules_until_the_cooldown_then_falls_linearly_to_zero(schedule, warmup):
    spent = {"p": 0.0}
    plain, cooled = lr_lambda(schedule, warmup), lr_lambda(schedule, warmup, 0.4, lambda: spent["p"])
    for step, p in enumerate([0.0, 0.1, 0.3, 0.6, 0.7, 0.8, 0.9, 1.0]):
        spent["p"] = p
        expected = plain(step) * min(1.0, (1 - p) / 0.4)
        assert cooled(step) == pytest.approx(expected)
    assert cooled(7) == 0.0  # the budget spent: nothing more to learn at
    spent["p"] = 0.6
    assert cooled(3) == pytest.approx(plain(3))  # the cooldown starts at 1 - 0.4 of the budget
    spent["p"] = 0.61
    assert 0 < cooled(3) < plain(3)


def test_a_cooldown_must_be_a_fraction():
    with pytest.raises(ConfigError, match="optim.cooldown must be in \\[0, 1\\]"):
        load_config(["optim.cooldown=1.5"])


class Rates(Callback):
    """The rate each optimizer step trains at."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, *args) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "cooldown") as (_path, _uri):
        assert main(["prepare", *SMALL]) == 0
        data = PreparedData.load(RunStore.open(None, "nmt"), _latest("prepare").info.run_id)
        yield data.data_dir, data.codec


def _rates(prepared, tmp_path, *overrides: str) -> list[float]:
    data_dir, codec = prepared
    rates = Rates()
    fit(load_config([*SMALL, f"optim.lr={PEAK}", *overrides]), None, None, data_dir, codec, tmp_path, callbacks=[rates])
    return rates.lrs


def test_a_step_budget_cools_down_over_its_last_steps(prepared, tmp_path):
    lrs = _rates(prepared, tmp_path, "trainer.max_epochs=-1", "trainer.max_steps=12", "optim.cooldown=0.5")
    # step k trains at the rate set after k steps of 12: the peak through 6, then 5/6 .. 1/6 of it
    assert lrs == pytest.approx([PEAK] * 7 + [PEAK * j / 6 for j in (5, 4, 3, 2, 1)])


def test_a_token_budget_ends_near_zero_and_off_leaves_the_rate_alone(prepared, tmp_path):
    budget = ["trainer.max_epochs=-1", "trainer.max_target_tokens=4000"]
    off = _rates(prepared, tmp_path / "off", *budget)
    cooled = _rates(prepared, tmp_path / "on", *budget, "optim.cooldown=0.5")
    assert off == pytest.approx([PEAK] * len(off)) and len(cooled) == len(off) > 9
    assert cooled[0] == PEAK and all(a >= b for a, b in zip(cooled, cooled[1:]))
    # the last step starts within one batch (<= 384 tokens) of 4000: <= (384 / 4000) / 0.5 of the peak
    assert cooled[-1] < 0.2 * PEAK


def test_a_budget_in_minutes_cools_down_by_the_clock(prepared, tmp_path):
    lrs = _rates(prepared, tmp_path, "trainer.max_epochs=-1", "trainer.max_minutes=0.08", "optim.cooldown=1.0")
    assert len(lrs) > 5 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] < PEAK / 2  # a step is far shorter than the 4.8 s budget: the last trains near its end
