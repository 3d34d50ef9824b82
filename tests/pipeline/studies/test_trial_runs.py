"""What a sweep trial's MLflow run records beyond its training metrics, on a real local Ray
with a real SQLite store: MLflow's system metrics under ``tracking.system_metrics``, and, when
it fails, why (the one-line error), as the stage runs and the journey's runs do."""

from __future__ import annotations

import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.components.tracking import names as N
from nmt.components.tracking.system_metrics import SystemRows, from_json, to_json
from nmt.pipeline.cli import main

pytestmark = pytest.mark.services

ONE_TRIAL = ["sweep=smoke", "sweep.num_samples=1", "sweep.max_concurrent_trials=1", "sweep.scheduler.type=fifo"]
MISSING = "/nonexistent-nmt-dir/batches.jsonl"  # trainer.batch_log: checked when training starts, inside the run
WHY = f"ConfigError: trainer.batch_log={MISSING}: there is no folder /nonexistent-nmt-dir; create it or give another path"


def _runs(stage: str | None = None):
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    where = f"tags.`{N.TAG_STAGE}` = '{stage}'" if stage else ""
    return client.search_runs([exp], where, max_results=100)


@pytest.mark.slow
def test_a_trial_run_records_mlflows_system_metrics(nmt_home, tiny, monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    try:
        assert main(["sweep", *tiny, *ONE_TRIAL, "trainer.max_epochs=2", "tracking.system_metrics=true"]) == 0
    finally:
        mlflow.disable_system_metrics_logging()  # the switch is process-wide
    (trial,) = _runs("trial")
    rows = sorted(MlflowClient().get_metric_history(trial.info.run_id, "system/cpu_utilization_percentage"),
                  key=lambda m: m.step)
    assert len(rows) >= 2 and [m.step for m in rows] == list(range(len(rows)))
    assert all(0 <= m.value <= 100 for m in rows)
    # sampled while the trial trained: inside its run's life
    assert all(trial.info.start_time - 1000 <= m.timestamp <= trial.info.end_time for m in rows)
    assert "system/system_memory_usage_megabytes" in trial.data.metrics


@pytest.mark.slow
def test_a_failed_trial_and_its_sweep_record_why(nmt_home, tiny, capsys):
    assert main(["sweep", *tiny, *ONE_TRIAL, "sweep.max_failures=0", f"trainer.batch_log={MISSING}"]) == 2
    err = capsys.readouterr().err
    # the command's own answer is its last line, one line (Ray logs the trial's traceback above it)
    assert err.rstrip("\n").splitlines()[-1] == f"nmt: error: no trial reported {N.VAL_BLEU}; see the trial runs for errors"
    (trial,) = _runs("trial")
    assert trial.info.status == "FAILED" and trial.data.tags[N.TAG_ERROR] == WHY  # the trial's own error, not Ray's
    (parent,) = [r for r in _runs() if r.data.tags.get(N.TAG_SWEEP) == "smoke"]
    assert parent.info.status == "FAILED"
    assert parent.data.tags[N.TAG_ERROR].startswith(f"SweepError: no trial reported {N.VAL_BLEU}")


# a failure only the run can find: no prepared training pair fits in 2 positions
NO_FIT = ("DataError: every training pair is longer than the model's 2 positions (model.max_positions); "
          "raise it, or prepare with data.max_tokens below 2")


@pytest.mark.slow
def test_a_failed_journey_run_and_the_journey_record_why(nmt_home, tiny, capsys):
    base = [o for o in tiny if not o.startswith("model")]  # the arms choose the models
    first = ("journey.arms.gru=['model=transformer_tiny','model.d_model=16','model.num_heads=2','model.ff_dim=32',"
             "'model.max_positions=2']")  # the first arm, so that it fails before any other trains
    assert main(["journey", *base, "journey=smoke", first]) == 2
    err = capsys.readouterr().err
    assert f"nmt: error: {NO_FIT.split(': ', 1)[1]}\n" in err and "Traceback" not in err  # one line
    (train,) = _runs("train")
    assert train.info.status == "FAILED" and train.data.tags[N.TAG_ERROR] == NO_FIT
    assert train.data.tags[N.TAG_PARENT] == _runs("journey")[0].info.run_id
    (journey,) = _runs("journey")
    assert journey.info.status == "FAILED" and journey.data.tags[N.TAG_ERROR] == NO_FIT


def test_system_rows_sample_mlflows_monitors_until_stopped(monkeypatch):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.05")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "2")  # two samples averaged a row
    sampler = SystemRows().start()
    time.sleep(0.6)
    rows = sampler.take()
    sampler.stop()
    cpu = [m for m in rows if m.key == "system/cpu_utilization_percentage"]
    assert len(cpu) >= 2 and [m.step for m in cpu] == list(range(len(cpu)))
    assert {m.key for m in rows} >= {"system/system_memory_usage_megabytes", "system/disk_usage_percentage"}
    time.sleep(0.3)
    assert len(sampler.take()) <= len(rows) // len(cpu)  # stopped: at most the row it was writing
    back = from_json(to_json(rows))
    assert [(m.key, m.value, m.timestamp, m.step) for m in back] == [(m.key, m.value, m.timestamp, m.step) for m in rows]


def test_the_trial_logger_keeps_a_trials_run_through_a_pickled_resume(nmt_home):
    """The driver's callback without Ray: a trial's run nested under the parent with its tags and
    params, its rows, an ASHA stop as KILLED, an error as FAILED; after a pickle round trip (a
    resumed Tuner) it finds the same run by its tag."""
    import pickle
    from types import SimpleNamespace

    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.studies.sweep.trial_runs import MlflowTrialLogger, RecordingASHA

    store = RunStore.open(None, "nmt")
    parent = store.start("sweep").run_id
    asha = RecordingASHA(time_attr="training_iteration", max_t=4, grace_period=1, reduction_factor=2)
    logger = MlflowTrialLogger(store=store, parent_run_id=parent, default_arch="gru", scheduler=asha,
                               base_params={N.PARAM_PREPARE_RUN: "p1"})
    res = SimpleNamespace(required_resources={"CPU": 1.0, "GPU": 0.0})
    trial = SimpleNamespace(trial_id="t1", config={"optim.lr": 0.01}, placement_group_factory=res,
                            pickled_error_file=None, error_file=None)
    logger.on_trial_start(0, [], trial)
    logger.on_trial_result(0, [], trial, {"training_iteration": 1, "timestamp": 5, "val_bleu": 3.5, "node": "a"})
    logger.on_trial_result(0, [], trial, {"training_iteration": 2, "timestamp": 6, "val_bleu": 4.5, "node": "b"})
    resumed = pickle.loads(pickle.dumps(logger))
    # a trial retried from scratch after its process died reports epoch 2 again: recorded once
    resumed.on_trial_result(0, [], trial, {"training_iteration": 2, "timestamp": 9, "val_bleu": 4.0, "node": "b"})
    asha.stopped.add("t1")
    resumed.scheduler = asha
    resumed.on_trial_complete(0, [], trial)
    run = store.get_run(resumed.run_id(trial))
    assert run.id == logger.run_id(trial) and run.status == "KILLED"
    tags = run.tags
    assert tags[N.TAG_PARENT] == parent and tags[N.TAG_TRIAL] == "t1" and tags[N.TAG_STAGE] == "trial"
    assert tags[N.TAG_ARCH] == "gru" and tags[N.TAG_RESOURCES] == "CPU=1" and N.TAG_OWNER in tags
    assert tags[N.TAG_STOPPED] == "asha" and tags[N.TAG_NODE] == "b" and tags[N.TAG_NODES] == "a,b"
    assert run.params == {N.PARAM_PREPARE_RUN: "p1", "trial.optim.lr": "0.01"}
    rows = store.metric_history(run.id, N.VAL_BLEU)
    assert [(m.step, m.value, m.timestamp) for m in rows] == [(1, 3.5, 5000), (2, 4.5, 6000)]
    other = SimpleNamespace(**{**vars(trial), "trial_id": "t2", "config": {"arch": "attention"}})
    resumed.on_trial_error(0, [], other)
    failed = store.get_run(resumed.run_id(other))
    assert failed.status == "FAILED" and failed.tags[N.TAG_ARCH] == "attention"


def test_asha_on_tokens_compares_trials_at_token_rungs(tmp_path):
    """sweep.scheduler.time_attr=tokens: Ray's ASHA with target tokens as its clock, the
    trials' equal budget as its last rung; a report before the first rung never stops a trial,
    the worse of two at a rung stops. Without a token budget: one line naming the key."""
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from nmt.components.system.errors import ConfigError
    from nmt.pipeline.config import load_config
    from nmt.pipeline.studies.sweep.driver import _scheduler, validate_sweep

    cfg = load_config(["sweep=recipe", "trainer.max_target_tokens=4000", "sweep.scheduler.grace_period=1000"])
    asha = _scheduler(cfg, tmp_path)
    asha.set_search_properties("val_bleu", "max")
    a, b = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
    for t in (a, b):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, a, {"tokens_seen": 1100.0, "val_bleu": 10.0}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, b, {"tokens_seen": 900.0, "val_bleu": 1.0}) == TrialScheduler.CONTINUE
    assert asha.on_trial_result(None, b, {"tokens_seen": 1200.0, "val_bleu": 5.0}) == TrialScheduler.STOP
    assert asha.on_trial_result(None, a, {"tokens_seen": 4000.0, "val_bleu": 12.0}) == TrialScheduler.STOP  # budget
    with pytest.raises(ConfigError, match="trainer.max_target_tokens"):
        validate_sweep(load_config(["sweep=recipe"]), ["sweep=recipe"])  # before Ray starts


def test_random_search_is_seeded_by_sweep_search_seed(tmp_path):
    """sweep.search.seed seeds the random search too: two Tuners over the recipe space with one
    seed draw the same trials (a recipe sweep is reproduced by its command, and every arm meets
    the same draws); another seed draws others. Real Ray Tune, a function trainable."""
    import ray
    from ray import tune

    from nmt.pipeline.config import load_config
    from nmt.pipeline.studies.sweep.driver import _searcher
    from nmt.pipeline.studies.sweep.space import parse_space, to_tune

    def draws(seed: int) -> list[dict]:
        cfg = load_config(["sweep=recipe", f"sweep.search.seed={seed}"])
        space = to_tune(parse_space(cfg.sweep.space))
        tuner = tune.Tuner(lambda config: {"score": 1.0}, param_space=space,
                           tune_config=tune.TuneConfig(num_samples=3, search_alg=_searcher(cfg)),
                           run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
        return sorted((r.config for r in tuner.fit()), key=lambda c: sorted(c.items()))

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)  # its own Ray, never one found
    try:
        first, again, other = draws(0), draws(0), draws(1)
    finally:
        ray.shutdown()
    assert first == again and first != other and len(first) == 3
