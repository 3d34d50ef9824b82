"""Ray caches its token-auth mode per process: its first local ray.init() turns token mode on
(in os.environ and its config). A sweep on an `nmt cluster` (loopback, auth off) then switched
the environment to disabled without Ray re-reading it, so the process's next local sweep
started its Ray in one mode while the driver spoke the other, and every trial failed (CI:
8 sweep tests after the cluster tests). auth_env_for sets the mode for each sweep and makes
Ray read it again. A fresh process, real Ray and Tune."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.services]

SCRIPT = r"""
import sys
import ray
from ray import tune
from nmt.pipeline.services.cluster import auth_env_for

def sweep(storage):
    auth_env_for(None)  # what `nmt sweep` does before a local Ray
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        result = tune.Tuner(lambda config: {"score": 1.0}, tune_config=tune.TuneConfig(num_samples=1),
                            run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
        return result.num_errors
    finally:
        ray.shutdown()

first = sweep(sys.argv[1])
auth_env_for("127.0.0.2:6390")  # a sweep on an `nmt cluster` ran in between
print("errors", first, sweep(sys.argv[1]))
"""


def test_a_local_sweep_after_a_cluster_sweep_in_one_process_runs_its_trials(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "errors 0 0" in out.stdout, out.stdout[-2000:]
