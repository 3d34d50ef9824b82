"""Ray for a sweep: where trial state lives, which cluster runs the trials, and what each
trial reserves; every check fails in one line before any run or trial exists."""

from __future__ import annotations

import os
import socket
from typing import Any

import ray

from nmt.components.system.errors import ConfigError, ServiceError
from nmt.components.system.paths import is_uri, local_path
from nmt.components.system.typed_config import is_port
from nmt.components.tracking.uri import project_home
from nmt.pipeline.config import PipelineConfig
from nmt.pipeline.services.cluster import loopback_cluster

COORDINATOR_CPU = 0.01  # a DDP trial's own process, beside its workers
LOCAL_NODE_IP = "127.0.0.2"


def storage_root(cfg: PipelineConfig) -> str:
    """Where Tune keeps trial checkpoints and its own state: storage that every Ray node
    sees (one machine: any local folder; a real cluster: s3://... or an NFS mount at the
    same path on every node). A local folder is checked for writing here."""
    if cfg.sweep.storage_path and is_uri(cfg.sweep.storage_path):
        return cfg.sweep.storage_path.rstrip("/")
    path = local_path(cfg.sweep.storage_path or project_home() / ".nmt" / "ray")
    probe = path / f".nmt-write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"sweep.storage_path={path} is not writable ({err.strerror or err}); choose a folder "
                          "that every Ray node can write (on a real cluster, an NFS mount at the same path on "
                          "every node, or s3://bucket/prefix)") from None
    return str(path)


def check_ray_address(address: str) -> dict[str, Any]:
    """Fail in one line, before any run exists, when no cluster listens at ``address``;
    returns ``ray.init`` keywords for it."""
    if address == "auto":
        return {"address": "auto"}
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not is_port(int(port)):
        raise ConfigError(f"sweep.ray_address={address!r}: expected host:port (e.g. 127.0.0.2:6390) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise ServiceError(f"sweep.ray_address={address}: no Ray cluster answers there ({err.strerror or err}); "
                          "start one (`nmt cluster up`, or `ray start --head`) or leave sweep.ray_address unset "
                          "for a Ray of this sweep's own") from None
    kw: dict[str, Any] = {"address": address}
    if loopback_cluster(address):
        kw["_node_ip_address"] = host  # the driver joins the head's node, on loopback
    return kw


def keep_cloud_keys_out_of_ray() -> None:
    """Tune copies the driver's AWS_* keys into every trial actor's runtime_env, which lands
    on the trial worker's command line (``ps``) and in Ray's logs: not ours. Trials that need
    cloud storage get the keys from their node's environment (README, team section)."""
    from ray.tune.execution import class_cache
    class_cache.ENV_VARS_TO_PROPAGATE = {v for v in class_cache.ENV_VARS_TO_PROPAGATE if not v.startswith("AWS_")}


def init_ray(cfg: PipelineConfig) -> None:
    keep_cloud_keys_out_of_ray()
    env = {"RAY_CHDIR_TO_TRIAL_DIR": "0", "PYTHONUNBUFFERED": "1"}
    # nothing secret: Ray records runtime envs in its logs and job table (credentials reach
    # trials through a 0600 file instead: nmt.pipeline.studies.sweep.credentials)
    for var in ("NMT_HOME", "MULTI30K_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT",
                "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
    # save the experiment state every 2 s (Tune's default: 10 s), so a killed driver
    # loses at most that much bookkeeping
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    kw: dict[str, Any] = {"runtime_env": {"env_vars": env}, "include_dashboard": False,
                          "log_to_driver": True, "configure_logging": False}
    if cfg.sweep.ray_address:
        where = check_ray_address(cfg.sweep.ray_address)
        try:
            ray.init(**where, **kw)
        except ConnectionError as err:
            raise ServiceError(f"sweep.ray_address={cfg.sweep.ray_address}: {str(err).splitlines()[0]}; start a "
                              "cluster (`nmt cluster up`) or leave sweep.ray_address unset") from None
    else:
        # a sweep's own Ray, never a cluster found by chance, on loopback: Ray swaps 127.0.0.1
        # for the host's outward address, but keeps any other 127.x address
        ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address=LOCAL_NODE_IP, **kw)
    res, n = cfg.sweep.resources, max(1, cfg.trainer.devices)  # per trial: n workers' worth
    have = ray.cluster_resources()
    times = f" x trainer.devices={n}" if n > 1 else ""
    gpu = res.per_trial_gpu
    if gpu > 0 and have.get("GPU", 0) < gpu * n:
        raise ConfigError(f"sweep.resources.gpu={gpu:g}{times} but the Ray cluster has "
                          f"{have.get('GPU', 0):g} GPUs; use gpu: 0 here")
    if have.get("CPU", 0) < res.cpu * n + (COORDINATOR_CPU if n > 1 else 0):
        raise ConfigError(f"sweep.resources.cpu={res.cpu}{times} but the Ray cluster has "
                          f"{have.get('CPU', 0):g} CPUs")


def trial_resources(cfg: PipelineConfig) -> dict[str, float]:
    """What one trial reserves. With ``trainer.devices > 1`` the trial only coordinates
    (its TorchTrainer's workers reserve ``resources`` each), so it takes a sliver of a CPU."""
    res = cfg.sweep.resources
    if cfg.trainer.devices > 1:
        return {"cpu": COORDINATOR_CPU, "gpu": 0}
    return {"cpu": res.cpu, "gpu": res.per_trial_gpu}
