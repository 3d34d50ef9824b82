"""Intervals and p-values over seeds and systems, checked against sacreBLEU's own CLI on
fixed hypothesis files (as promotion's gate is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.components.evaluation.significance import compare_pairs, holm, system_interval

REFS = [f"a man number {i} walks a dog in the park ." for i in range(40)]
A = [r.replace("dog", "cat") if i % 2 else r.replace("park", "street") for i, r in enumerate(REFS)]
B = [r if i % 3 else r.replace("walks", "runs") for i, r in enumerate(REFS)]
C = [r.replace("a man", "the woman") if i % 4 == 0 else r for i, r in enumerate(REFS)]


def _files(tmp: Path, **systems: list[str]) -> dict[str, str]:
    paths = {}
    for name, lines in systems.items():
        path = tmp / f"{name}.txt"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths[name] = str(path)
    return paths


def _cli(tmp: Path, refs: list[str], *systems: list[str], args: list[str], seed: int) -> list[dict]:
    named = {"ref": refs, **{f"sys{i}": s for i, s in enumerate(systems)}}
    paths = _files(tmp, **named)
    out = subprocess.run([sys.executable, "-m", "sacrebleu", paths["ref"], "-i",
                          *[paths[f"sys{i}"] for i in range(len(systems))], *args, "-w", "4", "-f", "json", "-q"],
                         env={**os.environ, "SACREBLEU_SEED": str(seed)}, capture_output=True, text=True, check=True)
    parsed = json.loads(out.stdout)
    return parsed if isinstance(parsed, list) else [parsed]


@pytest.mark.parametrize("seed, n", [(12345, 1000), (7, 300)])
def test_one_seed_interval_is_sacrebleus_confidence(tmp_path, seed, n):
    ours = system_interval([A], REFS, n_samples=n, seed=seed)
    (cli,) = _cli(tmp_path, REFS, A, args=["--confidence", "--confidence-n", str(n)], seed=seed)
    assert ours.bleu == pytest.approx(cli["score"], abs=5e-5)
    assert ours.mean == pytest.approx(cli["confidence_mean"], abs=5e-5)
    assert ours.ci == pytest.approx(cli["confidence_var"], abs=5e-5)
    assert ours.ci > 0 and ours.seeds == (pytest.approx(cli["score"], abs=5e-5),)


def test_pooled_seeds_p_value_is_sacrebleus_paired_bootstrap_on_the_pooled_files(tmp_path):
    """Seeds pooled: A's seeds [A, C] against B's [B, A], the test set twice."""
    systems = {"a": [A, C], "b": [B, A]}
    (r,) = compare_pairs(systems, REFS, [("a", "b")], n_samples=500, seed=11)
    base, system = _cli(tmp_path, REFS * 2, A + C, B + A, args=["--paired-bs", "--paired-bs-n", "500"], seed=11)
    assert r.delta == pytest.approx(system["BLEU"]["score"] - base["BLEU"]["score"], abs=1e-4)
    assert r.p_value == pytest.approx(system["BLEU"]["p_value"], abs=1e-4)
    assert r.p_holm == r.p_value  # one test: nothing to adjust
    assert os.environ.get("SACREBLEU_SEED") is None


def test_identical_seeds_give_the_one_seed_interval():
    one, three = system_interval([A], REFS, seed=5), system_interval([A, A, A], REFS, seed=5)
    assert three.bleu == pytest.approx(one.bleu) and three.ci == pytest.approx(one.ci)


def test_seed_spread_widens_the_interval():
    """A system whose seeds disagree is less certain than one seed's sentences alone say."""
    steady, spread = system_interval([C, C, C], REFS, seed=5), system_interval([C, A, REFS], REFS, seed=5)
    assert spread.ci > steady.ci


def test_holm_adjustment():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.9, 0.4]) == pytest.approx([0.9, 0.8])  # monotone: never below a smaller p
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def test_pairs_need_equal_seed_counts():
    with pytest.raises(ValueError, match="same number of seeds: a=2, b=1"):
        compare_pairs({"a": [A, B], "b": [B]}, REFS, [("a", "b")])


def test_an_ordering_is_claimed_only_with_a_small_holm_p_and_an_interval_off_zero():
    from nmt.components.evaluation.significance import PairResult
    from nmt.pipeline.studies.journey_report import verdict
    assert verdict(PairResult("a", "b", 1.5, 0.6, 0.001, 0.003), 0.05).startswith("**b > a**")
    assert verdict(PairResult("a", "b", -1.5, 0.6, 0.001, 0.003), 0.05).startswith("**a > b**")
    # identical outputs: sacreBLEU's p is 1/(n+1), but there is no gap to claim
    assert verdict(PairResult("a", "b", 0.0, 0.0, 0.005, 0.01), 0.05).startswith("not significant at 0.05")
    assert verdict(PairResult("a", "b", 1.5, 0.6, 0.04, 0.08), 0.05).startswith("not significant at 0.05")


def test_journey_pairs_all_baseline_or_named():
    from nmt.components.system.errors import ConfigError
    from nmt.pipeline.config import load_config
    from nmt.pipeline.studies.journey import pairs_to_test
    assert pairs_to_test(load_config([], groups=("journey",))) == [("gru", "attention"), ("gru", "transformer"),
                                              ("attention", "transformer")]
    ladder = pairs_to_test(load_config(["journey=ablation"]))
    assert ladder[0] == ("transformer", "no_positions") and ladder[-1] == ("gru_no_attention", "gru_attention")
    with pytest.raises(ConfigError, match="journey.pairs must be .* of gru, attention, transformer"):
        pairs_to_test(load_config(["journey.pairs=[[gru,lstm]]"]))
