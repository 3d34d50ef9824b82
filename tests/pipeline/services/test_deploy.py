"""deploy/: the Kubernetes manifests and the Dockerfile agree with each other and with the
project (image, config overrides, service names, mounts). Nothing here talks to a cluster."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from nmt.pipeline.config import load_config
from nmt.components.system.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
MLFLOW_YAML, RAYJOB_YAML = DEPLOY / "k8s" / "mlflow-server.yaml", DEPLOY / "k8s" / "rayjob-sweep.yaml"
THIRD_PARTY_IMAGES = {"postgres:15"}


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(path: Path, kind: str, name: str | None = None) -> dict:
    found = [d for d in docs(path) if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{path.name}: expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_specs(node) -> list[dict]:
    """Every pod spec (a dict with ``containers``) anywhere inside ``node``."""
    if isinstance(node, list):
        return [p for item in node for p in pod_specs(item)]
    if not isinstance(node, dict):
        return []
    return ([node] if "containers" in node else []) + [p for v in node.values() for p in pod_specs(v)]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"{name} should appear once in {args}"
    return args[args.index(name) + 1]


def mlflow_container() -> dict:
    (c,) = one(MLFLOW_YAML, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    return c


def ray_pods() -> list[dict]:
    spec = one(RAYJOB_YAML, "RayJob")["spec"]["rayClusterSpec"]
    return [spec["headGroupSpec"]["template"]["spec"],
            *(g["template"]["spec"] for g in spec["workerGroupSpecs"])]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def pin(name: str) -> str:
    (spec,) = [d for d in pyproject()["project"]["dependencies"] if re.match(rf"{name}(\[|=)", d)]
    return spec.split("==")[1]


def test_every_project_container_runs_the_dockerfile_image():
    tags = re.findall(r"docker build .*?-t (\S+)", (DEPLOY / "Dockerfile").read_text(), re.S)
    assert tags and len(set(tags)) == 1, tags
    image = tags[0]
    assert image.rsplit(":", 1)[1] == pyproject()["project"]["version"]
    seen = {path.name: [c["image"] for p in pod_specs(docs(path)) for c in p["containers"]]
            for path in (MLFLOW_YAML, RAYJOB_YAML)}
    for name, images in seen.items():
        assert image in images, name
        assert set(images) <= {image} | THIRD_PARTY_IMAGES, (name, set(images))
    assert len(seen[RAYJOB_YAML.name]) == len(ray_pods())  # head + each worker group


def test_dockerfile_pins_match_pyproject_and_copies_what_exists():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert f"torch=={pin('torch')}" in text
    assert re.search(rf"ray\[[a-z,]*default[a-z,]*\]=={re.escape(pin('ray'))}", text)  # the job server
    assert one(RAYJOB_YAML, "RayJob")["spec"]["rayClusterSpec"]["rayVersion"] == pin("ray")
    assert not re.search(r"^ENTRYPOINT", text, re.M)
    copied = [src for line in re.findall(r"^COPY (.+)$", text, re.M) for src in line.split()[:-1]]
    assert all((ROOT / src).exists() for src in copied), copied
    packages = {p.rstrip("*") for p in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"conf", "pyproject.toml"} <= set(copied)


def test_rayjob_entrypoint_is_a_valid_nmt_sweep():
    job = one(RAYJOB_YAML, "RayJob")
    assert job["apiVersion"] == "ray.io/v1" and job["spec"]["shutdownAfterJobFinishes"] is True
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:2] == ["nmt", "sweep"]
    overrides = words[2:]
    assert overrides and all(re.fullmatch(r"[\w.]+=\S+", o) for o in overrides), overrides
    values = dict(o.split("=", 1) for o in overrides)
    assert values.get("sweep.ray_address") == "auto"
    assert re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{2,62}/\S*", values.get("sweep.storage_path", "")), values
    cfg = load_config(overrides)  # unknown keys or invalid values raise ConfigError
    assert cfg.sweep.ray_address == "auto" and cfg.sweep.storage_path == values["sweep.storage_path"]
    with pytest.raises(ConfigError):  # the check above can fail
        load_config([*overrides, "sweep.ray_adress=auto"])


def test_mlflow_server_proxies_s3_artifacts_over_postgres():
    c = mlflow_container()
    args, env = c["command"] + c["args"], env_of(c)
    assert args[:2] == ["mlflow", "server"]
    assert "--default-artifact-root" not in args and "--no-serve-artifacts" not in args
    assert re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]+/\S*", flag(args, "--artifacts-destination"))
    backend = urlparse(flag(args, "--backend-store-uri"))
    assert re.fullmatch(r"postgresql(\+psycopg2)?", backend.scheme)  # SQLAlchemy 2.1: bare = psycopg 3
    assert backend.password == "$(PGPASSWORD)" and "secretKeyRef" in env["PGPASSWORD"]["valueFrom"]
    pg = one(MLFLOW_YAML, "StatefulSet", "postgres")
    (pgc,) = pg["spec"]["template"]["spec"]["containers"]
    pg_env = env_of(pgc)
    assert backend.hostname == f"{pg['spec']['serviceName']}.{pg['metadata']['namespace']}.svc.cluster.local"
    assert backend.port == one(MLFLOW_YAML, "Service", "postgres")["spec"]["ports"][0]["port"]
    assert backend.username == pg_env["POSTGRES_USER"]["value"] and backend.path == "/" + pg_env["POSTGRES_DB"]["value"]
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"] == env["PGPASSWORD"]["valueFrom"]
    assert flag(args, "--host") == "0.0.0.0"
    port = int(flag(args, "--port"))
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": port}
    assert [p["containerPort"] for p in c["ports"]] == [port]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert "secretKeyRef" in env[key]["valueFrom"]


def test_basic_auth_reads_its_config_from_the_configmap_and_secrets():
    c = mlflow_container()
    args, env = c["args"], env_of(c)
    if "--app-name" not in args:
        pytest.skip("basic auth is off in the manifest")
    assert flag(args, "--app-name") == "basic-auth"
    path = Path(env["MLFLOW_AUTH_CONFIG_PATH"]["value"])
    (mount,) = [m for m in c["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    (vol,) = [v for v in one(MLFLOW_YAML, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    ini = configparser.ConfigParser()
    ini.read_string(one(MLFLOW_YAML, "ConfigMap", vol["configMap"]["name"])["data"][path.name])
    assert "admin_password" not in ini["mlflow"]  # the password lives in a Secret
    assert urlparse(ini["mlflow"]["database_uri"]).scheme.startswith("postgresql")
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "secretKeyRef" in env[key]["valueFrom"]
    for pod in ray_pods():  # the sweep driver logs in as the admin
        ray_env = env_of(pod["containers"][0])
        assert ray_env["MLFLOW_TRACKING_USERNAME"]["value"] == ini["mlflow"]["admin_username"]
        ref = ray_env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]
        admin = env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (admin["name"], admin["key"])


def test_ray_pods_reach_the_mlflow_service_by_an_allowed_host():
    svc = one(MLFLOW_YAML, "Service", "mlflow")
    name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
    (port,) = [p["port"] for p in svc["spec"]["ports"]]
    (target,) = [p["targetPort"] for p in svc["spec"]["ports"]]
    c = mlflow_container()
    assert target == int(flag(c["args"], "--port"))
    assert svc["spec"]["selector"].items() <= one(MLFLOW_YAML, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    allowed = flag(c["args"], "--allowed-hosts").split(",")
    for pod in ray_pods():
        uri = urlparse(env_of(pod["containers"][0])["MLFLOW_TRACKING_URI"]["value"])
        assert uri.scheme == "http" and uri.port == port
        assert uri.hostname in {name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"}
        assert uri.netloc in allowed  # MLflow answers 403 to a Host header it does not list
    assert one(RAYJOB_YAML, "RayJob")["metadata"]["namespace"] == ns


def test_multi30k_and_nmt_home_are_mounted_on_every_ray_pod():
    claims = {d["metadata"]["name"]: d for d in docs(RAYJOB_YAML) if d["kind"] == "PersistentVolumeClaim"}
    homes = set()
    for pod in ray_pods():
        (c,) = pod["containers"]
        env, vols = env_of(c), {v["name"]: v for v in pod["volumes"]}
        for var in ("MULTI30K_DIR", "NMT_HOME"):
            value = Path(env[var]["value"])
            mounts = [m for m in c["volumeMounts"] if value == Path(m["mountPath"]) or Path(m["mountPath"]) in value.parents]
            assert mounts, f"{var}={value} is not on a mounted volume in {c['name']}"
            claim = vols[mounts[-1]["name"]]["persistentVolumeClaim"]["claimName"]
            if var == "NMT_HOME":  # the driver's data cache path is read by trials on other pods
                assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"]
                homes.add(str(value))
    assert len(homes) == 1


def test_ray_groups_declare_their_resources():
    spec = one(RAYJOB_YAML, "RayJob")["spec"]["rayClusterSpec"]
    groups = spec["workerGroupSpecs"]
    assert len({g["groupName"] for g in groups}) == len(groups) >= 2
    for g in groups:
        cpus = g["rayStartParams"]["num-cpus"]
        (c,) = g["template"]["spec"]["containers"]
        assert cpus == str(c["resources"]["requests"]["cpu"]), g["groupName"]
    gpu = [g for g in groups if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"].get("limits", {})]
    assert len(gpu) == 1
    assert gpu[0]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu[0]["rayStartParams"]["num-gpus"] == "1"


def test_sweep_keeps_an_s3_storage_path():
    from nmt.pipeline.studies.sweep.ray_setup import storage_root
    cfg = load_config(["sweep.storage_path=s3://nmt-ray-results/sweeps/"])
    assert storage_root(cfg) == "s3://nmt-ray-results/sweeps"
