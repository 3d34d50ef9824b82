"""The sweep's bar of finished trials: drawn on a terminal, silent in logs and with --quiet."""

import io
import pickle

import pytest
from ray.tune.experiment import Trial

from nmt.components.system import progress
from nmt.pipeline.studies.sweep.trial_runs import TrialBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _trial(bleu: float | None) -> Trial:
    trial = Trial("train_trial", config={}, stub=True)  # a real Tune trial, no Ray needed
    if bleu is not None:
        trial.update_last_result({"val_bleu": bleu, "training_iteration": 1})
    return trial


@pytest.fixture(autouse=True)
def _mode():
    yield
    progress.reset()


def test_a_terminal_sees_each_finished_trial_and_the_best_bleu(capsys):
    progress.choose(quiet=False, stream=Terminal())
    bar = TrialBar(total=3)
    bar.on_trial_complete(1, [], _trial(12.5))
    bar.on_trial_error(2, [], _trial(None))  # an errored trial counts as finished, without a score
    bar.on_trial_complete(3, [], _trial(9.0))
    bar.on_experiment_end([])
    shown = capsys.readouterr().err
    assert "sweep: trials" in shown and "3/3" in shown and "best val BLEU 12.50" in shown
    assert "trial/s" in shown or "s/trial" in shown  # a rate, hence an ETA
    assert "best val BLEU 9.00" not in shown


@pytest.mark.parametrize("quiet", [False, True])
def test_logs_and_quiet_get_no_bar(capsys, quiet):
    progress.choose(quiet=quiet, stream=io.StringIO())  # a pipe: plain lines (Tune's tables) or nothing
    bar = TrialBar(total=2)
    bar.on_trial_complete(1, [], _trial(3.0))
    bar.on_experiment_end([])
    assert capsys.readouterr().err == ""


def test_it_is_saved_with_the_tuner_without_its_bar():
    progress.choose(quiet=False, stream=Terminal())
    bar = TrialBar(total=2)
    bar.on_trial_complete(1, [], _trial(4.0))
    restored = pickle.loads(pickle.dumps(bar))  # Tune pickles its callbacks with the sweep's state
    assert restored._bar is None and restored.best == 4.0 and restored.total == 2
    bar.on_experiment_end([])
