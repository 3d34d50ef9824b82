"""``nmt promote`` / ``nmt rollback`` on a real SQLite MLflow store and real Multi30k data.

One store per module: version 1 is a model trained for a single step (garbage), the
champion by being first; a second model trained for 4 epochs on 2,000 pairs is clearly
better (test BLEU ~3 against ~0 on 100 sentences, p ~ 0.001). Both are tiny GRUs on one
torch thread; building the store takes ~20 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from nmt.components.system.errors import ConfigError
from nmt.components.evaluation.significance import paired_bootstrap
from nmt.pipeline.promotion import promote as P
from nmt.pipeline.promotion.candidates import resolve_candidate
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.components.tracking.store import RunStore
from nmt.pipeline.upstream import test_split
from tests.conftest import module_home

NAME = "nmt-de-en"
BASE = [
    "data.train_limit=2000", "data.val_limit=20", "data.test_limit=100", "data.vocab_size=500",
    "model=gru", "model.emb_dim=32", "model.hidden_dim=64", "model.dropout=0.0", "model.teacher_forcing=1.0",
    "optim.lr=0.005", "trainer.max_minutes=null", "trainer.batch_tokens=2048", "trainer.precision=32",
    "trainer.val_bleu_limit=20", "trainer.log_every_n_steps=5", "trainer.patience=10",
    "trainer.num_threads=1",  # two threads beside another busy process: 50x slower
    "evaluate.beam_size=1", "evaluate.num_samples=5", "evaluate.attention_samples=0", "demo_sentences=0",
]
WORSE = ["trainer.max_steps=1", "trainer.max_epochs=1"]   # one optimizer step
BETTER = ["trainer.max_epochs=4"]
GATE = ["--beam", "1", "--limit", "100"]                  # greedy: quick, and as telling here


def gate(*overrides: str):
    """The config `nmt promote --beam 1 --limit 100` composes, plus ``overrides``."""
    return load_config(["promote.beam_size=1", "promote.limit=100", *overrides])


@dataclass(frozen=True)
class Store:
    home: Path
    uri: str
    worse_train_run: str     # registered by `nmt run` as version 1 = @champion
    better_train_run: str    # trained only (`nmt train`): not registered yet


def _train_run_ids(client: MlflowClient) -> set[str]:
    exp = client.get_experiment_by_name("nmt")
    return {r.info.run_id for r in client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'train'")}


@pytest.fixture(scope="module")
def store(tmp_path_factory, multi30k_dir):
    with module_home(tmp_path_factory, multi30k_dir, "promote") as (home, uri):
        assert main(["run", *BASE, *WORSE]) == 0
        client = MlflowClient()
        (worse,) = _train_run_ids(client)
        assert main(["train", *BASE, *BETTER]) == 0
        (better,) = _train_run_ids(client) - {worse}
        yield Store(home, uri, worse, better)


def _aliases(client: MlflowClient) -> dict[str, str]:
    return P.aliases(RunStore(mlflow.get_tracking_uri(), "0"), NAME)


def _promotion_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("nmt")
    return client.search_runs([exp.experiment_id], "tags.`nmt.stage` = 'promotion'",
                              order_by=["attributes.start_time ASC"])


@pytest.mark.parametrize("cand, champ, p, force, expected", [
    (30.0, 29.0, 0.01, False, P.PROMOTED),
    (30.0, 29.0, 0.20, False, P.REJECTED),   # better, but not significantly
    (28.0, 29.0, 0.01, False, P.REJECTED),   # significantly worse
    (29.0, 29.0, 0.001, False, P.REJECTED),  # identical systems: sacreBLEU says p = 1/(n+1)
    (30.0, 29.0, 0.05, False, P.REJECTED),   # p must be below the threshold
    (28.0, 29.0, 0.01, True, P.FORCED),
    (30.0, 29.0, 0.01, True, P.PROMOTED),    # --force does not hide a real win
])
def test_decide(cand, champ, p, force, expected):
    assert P.decide(cand, champ, p, 0.05, force) == expected


def test_paired_bootstrap_matches_sacrebleu_cli_on_synthetic_files(tmp_path):
    refs = [f"a man number {i} walks a dog in the park ." for i in range(40)]
    a = [r.replace("dog", "cat") if i % 2 else r.replace("park", "street") for i, r in enumerate(refs)]
    b = [r if i % 3 else r.replace("walks", "runs") for i, r in enumerate(refs)]
    for seed, n in ((12345, 1000), (7, 300)):
        ours = paired_bootstrap(a, b, refs, n_samples=n, seed=seed)
        assert ours == _sacrebleu_cli(tmp_path, refs, a, b, n=n, seed=seed)
    assert os.environ.get("SACREBLEU_SEED") is None  # restored


def _sacrebleu_cli(tmp: Path, refs, a, b, *, n: int, seed: int) -> tuple[float, float, float]:
    """``python -m sacrebleu REF -i A B --paired-bs --paired-bs-n N -f json``, seeded by env."""
    paths = []
    for name, lines in (("ref", refs), ("a", a), ("b", b)):
        path = tmp / f"{name}.txt"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths.append(str(path))
    out = subprocess.run([sys.executable, "-m", "sacrebleu", paths[0], "-i", paths[1], paths[2], "--paired-bs",
                          "--paired-bs-n", str(n), "-f", "json", "-q"],
                         env={**os.environ, "SACREBLEU_SEED": str(seed)}, capture_output=True, text=True, check=True)
    base, system = json.loads(out.stdout)
    return base["BLEU"]["score"], system["BLEU"]["score"], system["BLEU"]["p_value"]


def _version(v: str, tmp_path):
    """Registered version ``v`` loaded from the test's own folder, not a temp folder left behind."""
    (tmp_path / f"v{v}").mkdir()
    return mlflow.pyfunc.load_model(f"models:/{NAME}/{v}", dst_path=str(tmp_path / f"v{v}"))


@pytest.mark.slow
def test_gate_promotes_rejects_rolls_back_and_is_idempotent(store, capsys, tmp_path):
    client = MlflowClient()
    assert _aliases(client) == {P.CHAMPION: "1"}  # the 1-step model, champion by being first

    # the better train run has no version: promote registers it (v2), tests it, promotes it
    assert main(["promote", "--run", store.better_train_run, *GATE]) == 0
    out = capsys.readouterr().out
    assert "decision: promoted" in out and "p = " in out
    assert _aliases(client) == {P.CHAMPION: "2", P.PREVIOUS: "1"}
    (run,) = _promotion_runs(client)
    assert run.info.status == "FINISHED" and run.data.tags["decision"] == P.PROMOTED
    assert {k: run.data.params[k] for k in ("candidate_version", "champion_version", "split", "n", "resamples",
                                             "seed")} == {"candidate_version": "2", "champion_version": "1",
                                                          "split": "test_2016_flickr", "n": "100",
                                                          "resamples": "1000", "seed": "12345"}
    m = run.data.metrics
    assert m["bleu_candidate"] > m["bleu_champion"] and m["p_value"] < 0.05
    v2 = client.get_model_version(NAME, "2")
    assert v2.tags["train_run_id"] == store.better_train_run
    assert v2.tags["promotion.decision"] == P.PROMOTED and v2.tags["promotion.run_id"] == run.info.run_id
    assert float(v2.tags["promotion.p_value"]) == pytest.approx(m["p_value"], rel=1e-5)

    # the gate's p-value is sacreBLEU's own, on the same hypothesis files
    src, refs = test_split(RunStore.open(None, "nmt"), v2.tags["prepare_run_id"], "test_2016_flickr", 100)
    hyps = {v: _version(v, tmp_path).predict(src, params={"beam_size": 1}) for v in ("1", "2")}
    cli = _sacrebleu_cli(tmp_path, refs, hyps["1"], hyps["2"], n=1000, seed=12345)
    assert (cli[1], cli[0], cli[2]) == (m["bleu_candidate"], m["bleu_champion"], m["p_value"])

    # the same candidate again, by run or by version: nothing changes, nothing is logged
    versions = len(client.search_model_versions(f"name = '{NAME}'"))
    for how in (["--run", store.better_train_run], ["--version", "2"], []):  # [] = best run in the experiment
        assert main(["promote", *how, *GATE]) == 0
        assert "already is @champion: nothing changed" in capsys.readouterr().out
    assert len(_promotion_runs(client)) == 1 and len(client.search_model_versions(f"name = '{NAME}'")) == versions
    assert _aliases(client) == {P.CHAMPION: "2", P.PREVIOUS: "1"}

    # a worse candidate: champion stays, the candidate becomes challenger
    res = P.run_promote(gate(), version="1")
    assert res.decision == P.REJECTED and res.comparison.bleu_candidate < res.comparison.bleu_champion
    assert _aliases(client) == {P.CHAMPION: "2", P.PREVIOUS: "1", P.CHALLENGER: "1"}
    assert client.get_model_version(NAME, "1").tags["promotion.decision"] == P.REJECTED

    # rollback: champion back to previous, the rolled-back one is challenger, previous is used up
    assert main(["rollback"]) == 0
    assert "@champion is version 1 again, version 2 is @challenger" in capsys.readouterr().out
    assert _aliases(client) == {P.CHAMPION: "1", P.CHALLENGER: "2"}
    assert main(["rollback"]) == 2
    assert "no @previous version to roll back to" in capsys.readouterr().err

    # the better one comes back through the gate; the challenger alias leaves it
    assert main(["promote", "--version", "2", *GATE]) == 0
    assert _aliases(client) == {P.CHAMPION: "2", P.PREVIOUS: "1"}

    # --force overrides the gate, and is recorded as such
    res = P.run_promote(gate("promote.force=true"), version="1")
    assert res.decision == P.FORCED and _aliases(client) == {P.CHAMPION: "1", P.PREVIOUS: "2"}
    assert client.get_run(res.run_id).data.tags["decision"] == P.FORCED


def _challenger_run(client: MlflowClient, store: Store) -> str:
    """The store's train run that is not @champion (registered or not yet)."""
    champion = client.get_model_version(NAME, _aliases(client)[P.CHAMPION])
    return store.worse_train_run if champion.tags["train_run_id"] == store.better_train_run else store.better_train_run


@pytest.mark.slow
@pytest.mark.parametrize("step", ["paired_bootstrap", "_record"])
def test_failure_part_way_never_moves_champion(store, monkeypatch, step):
    client = MlflowClient()
    before = _aliases(client)
    runs_before = {r.info.run_id for r in _promotion_runs(client)}

    def boom(*args, **kwargs):
        raise RuntimeError(f"injected failure in {step}")

    monkeypatch.setattr(P, step, boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        P.run_promote(gate("promote.limit=20", "promote.force=true"), run_id=_challenger_run(client, store))
    assert _aliases(client) == before
    (failed,) = [r for r in _promotion_runs(client) if r.info.run_id not in runs_before]
    assert failed.info.status == "FAILED"


@pytest.mark.slow
@pytest.mark.parametrize("argv, message", [
    (["--version", "99"], "nmt-de-en has no version 99"),
    (["--run", "0123456789abcdef0123456789abcdef"], "--run 0123456789abcdef0123456789abcdef: no such run in sqlite:"),
    # a run of the wrong kind for its flag: what it is, and what the flag takes
    (["--run", "{prepare}"], "--run {prepare} is a FINISHED prepare run; it takes a train or trial run"),
    (["--sweep-run", "{other}"], "--sweep-run {other} is a FINISHED train run; it takes a sweep, journey or pipeline run"),
    (["--run", "{other}", "--split", "test_2099"],
     "promote.split='test_2099': not a test split of the data; valid: primary, test_2016_flickr"),
    (["--run", "{other}", "--p-threshold", "0"], "promote.p_threshold must be in (0, 1], got 0.0"),
    (["--run", "{other}", "--seed", "0"], "promote.seed must be >= 1"),
    (["--run", "{other}", "promote.resamples=0"], "promote.resamples must be >= 1"),
    (["--sweep-run", "0123456789abcdef0123456789abcdef"], "--sweep-run 0123456789abcdef0123456789abcdef: no such run"),
])
def test_bad_promote_arguments_exit_2_with_a_message(store, argv, message, capsys):
    client = MlflowClient()
    before, runs = _aliases(client), len(_promotion_runs(client))
    other = _challenger_run(client, store)
    names = {"other": other, "prepare": client.get_run(other).data.params["upstream.prepare_run_id"]}
    assert main(["promote", *(a.format(**names) for a in argv), *GATE]) == 2
    assert message.format(**names) in capsys.readouterr().err
    assert _aliases(client) == before
    assert all(r.info.status == "FAILED" for r in _promotion_runs(client)[runs:])


@pytest.mark.slow
def test_candidate_selection_by_sweep_parent_and_experiment(store):
    """The best child by best/val_bleu; runs of other stages (the sweep parent itself logs
    best/val_bleu too) never compete."""
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    prep = client.get_run(store.better_train_run).data.params["upstream.prepare_run_id"]
    parent = client.create_run(exp, run_name="sweep-test", tags={"nmt.sweep": "test"}).info.run_id
    trials = []
    for bleu in (1.0, 60.0, 7.0):
        run = client.create_run(exp, tags={"mlflow.parentRunId": parent, "nmt.stage": "trial", "arch": "seq2seq"})
        client.log_param(run.info.run_id, "upstream.prepare_run_id", prep)
        client.log_metric(run.info.run_id, "best/val_bleu", bleu)
        client.set_terminated(run.info.run_id)
        trials.append(run.info.run_id)
    client.log_metric(parent, "best/val_bleu", 99.0)
    client.set_terminated(parent)
    runs = RunStore(store.uri, exp)
    cand = resolve_candidate(runs, NAME, sweep_run_id=parent)
    assert (cand.run_id, cand.prepare_run_id, cand.version, cand.arch) == (trials[1], prep, None, "seq2seq")
    assert resolve_candidate(runs, NAME).run_id == trials[1]  # the experiment's best, too
    assert resolve_candidate(runs, NAME, pair="de-en").run_id == trials[1]
    with pytest.raises(ConfigError, match="no train or trial run of fr-en with best/val_bleu"):
        resolve_candidate(runs, NAME, pair="fr-en")
    with pytest.raises(ConfigError, match="is a FINISHED trial run; it takes a sweep, journey or pipeline run"):
        resolve_candidate(runs, NAME, sweep_run_id=trials[0])
    for run_id in (*trials, parent):
        client.delete_run(run_id)
    assert resolve_candidate(runs, NAME).run_id == store.better_train_run


@pytest.mark.slow
def test_plain_promote_follows_the_language_pair_of_the_newest_run(store, capsys):
    """After `nmt run data.src_lang=fr` (which registers nmt-fr-en), `nmt promote` with no
    flags targets nmt-fr-en; naming the pair still reaches nmt-de-en."""
    assert main(["run", *BASE, "data.src_lang=fr", "data.train_limit=200", "trainer.max_epochs=1"]) == 0
    capsys.readouterr()
    assert main(["promote"]) == 0
    assert capsys.readouterr().out.startswith("nmt-fr-en version 1 already is @champion")
    assert main(["promote", "data.src_lang=de", *GATE]) == 0
    assert "nmt-de-en version" in capsys.readouterr().out
    assert main(["rollback", "--model-name", "nmt-fr-en"]) == 2
    assert "nmt-fr-en has no @previous version" in capsys.readouterr().err


@pytest.mark.slow
def test_a_rollback_during_a_promotion_is_not_undone(store, monkeypatch, capsys):
    """Alias moves are compare-and-swap: a real `nmt rollback` made while a promotion compares
    (run at the gate's bootstrap) wins; the promotion stops with one line and moves nothing."""
    client = MlflowClient()
    first = _aliases(client)[P.CHAMPION]
    other = next(v.version for v in client.search_model_versions(f"name = '{NAME}'") if v.version != first)
    res = P.run_promote(gate("promote.force=true", "promote.limit=20"), version=other)  # now there is a @previous
    before = _aliases(client)
    assert P.PREVIOUS in before, (first, other, res, before)
    champion, other = before[P.PREVIOUS], before[P.CHAMPION]  # rollback: @champion goes back to `champion`
    real_bootstrap = P.paired_bootstrap

    def rollback_meanwhile(*args, **kwargs):
        assert main(["rollback", "data.src_lang=de"]) == 0  # another command, while this one compares
        return real_bootstrap(*args, **kwargs)

    monkeypatch.setattr(P, "paired_bootstrap", rollback_meanwhile)
    after_rollback = {P.CHAMPION: champion, P.CHALLENGER: other}
    capsys.readouterr()
    assert main(["promote", "--version", champion, "--force", "--limit", "20", "--beam", "1", "data.src_lang=de"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("nmt: error")]
    assert len(err) == 1 and f"@champion {other} -> {champion}" in err[0] and "nothing was moved" in err[0]
    assert _aliases(client) == after_rollback
    assert _promotion_runs(client)[-1].info.status == "FAILED"
