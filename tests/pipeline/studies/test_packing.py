"""Packing trials on a GPU: the fractions allowed, the memory a trial needs, and the guard
that refuses a packing which would not fit (the figures are checked on the CPU; the packed
sweep itself runs in tests/components/training/test_gpu.py and benchmarks/gpu_check.sh)."""

from __future__ import annotations

import pytest

from nmt.components.system.errors import ConfigError
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.sweep.packing import CUDA_CONTEXT_MB, check_packing, estimate_trial_mb, trial_memory


@pytest.mark.parametrize("override, per_trial", [
    ("sweep.resources.trials_per_gpu=8", 0.125), ("sweep.resources.trials_per_gpu=16", 0.0625),
    ("sweep.resources.gpu=0.0625", 0.0625), ("sweep.resources.gpu=2", 2.0),
])
def test_fractions_down_to_a_sixteenth(override, per_trial):
    assert load_config([override]).sweep.resources.per_trial_gpu == per_trial


@pytest.mark.parametrize("override, message", [
    ("sweep.resources.gpu=0.05", "down to 1/16"),
    ("sweep.resources.gpu=1.5", "or whole GPUs"),
    ("sweep.resources.trials_per_gpu=17", "trials_per_gpu must be 1..16"),
])
def test_bad_fractions_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([override])


def test_the_estimate_grows_with_the_model_and_the_batch():
    base = estimate_trial_mb(7_600_000, 4096, 256, 6, 8000)
    assert base > CUDA_CONTEXT_MB + 7_600_000 * 16 / 2**20
    assert estimate_trial_mb(7_600_000, 8192, 256, 6, 8000) > base
    assert estimate_trial_mb(2_000_000, 4096, 128, 8, 8000) < base


def test_the_guard_names_the_figures_and_what_fits():
    need = trial_memory(None, 7_600_000, 4096, 256, 6, 8000)
    assert check_packing(1 / 8, need, 80_000, "NVIDIA H100") == 8
    with pytest.raises(ConfigError) as err:
        check_packing(1 / 16, trial_memory(6_000, 1, 1, 1, 1, 1), 80_000, "NVIDIA H100")
    msg = str(err.value)
    assert "16 trials per GPU x 6,000 MB each (measured) = 96,000 MB" in msg
    assert "80,000 MB of the NVIDIA H100" in msg and "trials_per_gpu=13" in msg
    assert check_packing(0, need, 1.0) == 1 and check_packing(1, need, 1.0) == 1


def test_a_config_s_need_counts_its_own_parameters():
    from nmt.pipeline.studies.sweep.packing import need_for
    tiny, big = (need_for(load_config([f"model={m}"], groups=("sweep",))) for m in ("transformer_tiny", "transformer"))
    assert "2.3M parameters" in tiny.how and "7.6M parameters" in big.how and tiny.mb < big.mb
    assert need_for(load_config(["sweep.resources.trial_memory_mb=900"])).how == "measured"
