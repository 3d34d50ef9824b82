"""A sweep whose trials validate inside an epoch (``trainer.val_every_steps``): ASHA's rungs
count validations, not epochs, and a trial may be stopped in the middle of its epoch.
(Apart from tests/components/training/test_long_epochs.py: this module starts Ray, so it
runs on the services worker, and those training tests need not.)"""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from nmt.pipeline.cli import main
from tests.components.training.test_long_epochs import SMALL
from tests.conftest import metric_steps, module_home

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "sweep_validations") as (path, _uri):
        yield path


def test_asha_max_t_bounds_the_validations_not_the_epochs():
    from nmt.pipeline.config import load_config
    from nmt.pipeline.studies.sweep.driver import MAX_REPORTS, max_reports
    assert max_reports(load_config(["trainer.max_epochs=7"]), 1000) == 7  # epoch ends only: as before
    steps = load_config(["trainer.max_epochs=2", "trainer.max_steps=100", "trainer.val_every_steps=10"])
    assert max_reports(steps, 10**6) == 2 + 10
    per_epoch = load_config(["trainer.max_epochs=2", "trainer.val_every_steps=10", "trainer.accumulate_grad_batches=4"])
    assert max_reports(per_epoch, 400) == 2 + 2 * 100 // 10  # at most 100 steps an epoch
    timed = load_config(["trainer.max_epochs=-1", "trainer.max_minutes=60", "trainer.val_every_minutes=15",
                         "trainer.max_steps=1000"])
    assert max_reports(timed, 50) == 1000 + 4
    assert max_reports(load_config(["trainer.max_epochs=-1", "trainer.max_minutes=60",
                                    "trainer.val_every_steps=5"]), 50) == MAX_REPORTS


@pytest.mark.services
def test_sweep_reports_at_each_validation_and_asha_decides_there(home):
    """A one-epoch sweep that validates every 3 steps: each trial reports (and so has a
    val/bleu row) at every validation, and ASHA may stop a trial in the middle of it."""
    assert main(["sweep", *SMALL, "sweep=smoke", "trainer.max_epochs=1", "trainer.val_every_steps=3",
                 "sweep.num_samples=4"]) == 0
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt")
    trials = client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'trial'")
    assert len(trials) == 4
    rows = {r.info.run_id: metric_steps(r.info.run_id, "val/bleu") for r in trials}
    finished = [r for r in trials if r.info.status == "FINISHED"]
    assert finished and all(len(rows[r.info.run_id]) >= 3 for r in finished)  # > 1 report in 1 epoch
    stopped = [r for r in trials if r.data.tags.get("nmt.stopped_by") == "asha"]
    longest = max(len(v) for v in rows.values())
    assert all(len(rows[r.info.run_id]) < longest for r in stopped)  # stopped at a rung inside the epoch
