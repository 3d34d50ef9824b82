"""Config values checked against the rules of the system they go to, before any run starts:
MLflow's alias, model-name and experiment-name rules; sweep values that survive the override
grammar; every filesystem path read by one helper."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import numpy as np
import pytest

from nmt.components.system.errors import ConfigError
from nmt.pipeline.config import load_config
from nmt.pipeline.studies.sweep.space import to_overrides


@pytest.mark.parametrize("alias, why", [
    ("v2", "reserved"), ("V17", "reserved"), ("latest", "reserved"), ("LaTeSt", "reserved"),
    ("prod eu", "alphanumerics"), ("prod/eu", "alphanumerics"), ("prod.eu", "alphanumerics"),
    ("champion@2", "alphanumerics"), ("x" * 256, "255"),  # '': every required text setting's test, below
])
def test_an_alias_mlflow_would_refuse_fails_at_load(alias, why):
    with pytest.raises(ConfigError) as err:
        load_config([f"register.alias='{alias}'"])
    line = str(err.value)
    assert line.startswith("register.alias=") and why in line and "\n" not in line


@pytest.mark.parametrize("alias", ["champion", "prod-eu", "prod_eu", "v2beta", "version2", "x" * 255])
def test_an_alias_mlflow_takes_loads(alias):
    assert load_config([f"register.alias={alias}"]).register.alias == alias


@pytest.mark.parametrize("name, why", [("a/b", "'/'"), ("nmt:de", "':'"), ("nmt@de", "'@'"), ("../nmt", "MLflow"),
                                       ("  ", "MLflow"), (" nmt", "spaces")])
def test_a_model_name_mlflow_would_refuse_fails_at_load(name, why):
    with pytest.raises(ConfigError) as err:
        load_config([f"register.model_name='{name}'"])
    assert str(err.value).startswith("register.model_name=") and why in str(err.value)


@pytest.mark.parametrize("name, why", [
    ("nmt?de", "would not name this model back"), ("?", "would not name this model back"),
    ("nmt\tde", "U+0009"), ("nmt\nde", "U+000A"), ("nmt\x00de", "U+0000"), ("nmt\u200bde", "U+200B"),
    ("nmt\x7f", "U+007F"), ("\u2066nmt\u2069", "U+2066"),
])
def test_a_model_name_a_models_uri_would_not_give_back_fails_at_load(name, why):
    """The name must come back unchanged from models:/<name>@<alias> (MLflow's URI parsing
    splits at '?') and hold no invisible or control character (a tab or line break, which
    that parsing would also drop)."""
    with pytest.raises(ConfigError) as err:
        load_config([f"register.model_name='{name}'"])
    assert str(err.value).startswith("register.model_name=") and why in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["nmt-de-en", "nmt_de.en", "ñmt-dé-en", "nmt de en", "nmt#2"])
def test_a_model_name_that_round_trips_loads(name):
    assert load_config([f"register.model_name='{name}'"]).register.model_name == name


@pytest.mark.parametrize("name", ["nmt\x00", "n\u200bmt", "nmt\x1b[31m"])
def test_an_experiment_name_with_control_or_invisible_characters_fails_at_load(name):
    with pytest.raises(ConfigError, match=r"^tracking\.experiment=.*invisible or a control"):
        load_config([f"tracking.experiment='{name}'"])


@pytest.mark.parametrize("name", ["x" * 501, " nmt"])  # '': every required text setting's test, below
def test_an_experiment_name_mlflow_would_refuse_fails_at_load(name):
    with pytest.raises(ConfigError, match=r"^tracking\.experiment="):
        load_config([f"tracking.experiment='{name}'"])


ROUND_TRIP = {
    "trainer.num_threads": None, "data.train_limit": None, "promote.force": True, "force": False,
    "optim.lr": 1e-05, "optim.weight_decay": np.float64(3e-07), "optim.label_smoothing": 0.1,
    "trainer.max_epochs": np.int64(3), "trainer.max_minutes": 1e-3,
    "evaluate.splits": ["test_2016_flickr", "test_2017_flickr"], "optim.betas": [0.9, 0.999],
    "tracking.experiment": "a, b = 'c' \"d\"  e", "register.model_name": "m=1,x 'y' \\ z\\",
    "sweep.storage_path": "/tmp/a b/${not_an_interpolation}", "evaluate.train_run_id": "[not, a, list]",
    "server.role": "null", "cluster.state_dir": "true", "sweep.ray_address": "1e-05",
}


def test_sweep_values_round_trip_through_the_override_grammar():
    cfg = load_config(to_overrides(ROUND_TRIP))
    for key, want in ROUND_TRIP.items():
        got = cfg
        for part in key.split("."):
            got = getattr(got, part)
        want = tuple(want) if isinstance(want, list) else want
        assert got == want and type(got) is type(want.item() if hasattr(want, "item") else want), key


def test_a_non_finite_float_round_trips():
    assert math.isinf(load_config(to_overrides({"trainer.max_minutes": float("inf")})).trainer.max_minutes)


def test_a_choice_of_null_is_none_not_the_text_none():
    assert to_overrides({"trainer.num_threads": None}) == ["trainer.num_threads=null"]
    assert load_config(to_overrides({"trainer.num_threads": None})).trainer.num_threads is None


def test_every_config_path_is_read_the_way_data_dir_is(tmp_path, monkeypatch):
    from nmt.components.data.multi30k import resolve_data_dir
    from nmt.components.system.paths import local_path, path_or_uri
    from nmt.pipeline.services import cluster, server
    from nmt.pipeline.studies.sweep.ray_setup import storage_root

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m30k").mkdir()
    cfg = load_config(["data.dir='~/m30k'", "server.state_dir='~/srv'", "cluster.state_dir=rel/cl",
                       "sweep.storage_path='~/ray'"])
    assert resolve_data_dir(cfg.data.dir, tmp_path) == tmp_path / "m30k"
    assert server.state_dir(cfg.server) == tmp_path / "srv"
    assert cluster.state_dir(cfg.cluster) == tmp_path / "rel" / "cl"
    assert storage_root(cfg) == str(tmp_path / "ray")
    assert path_or_uri("~/art") == str(tmp_path / "art") and path_or_uri("s3://b/p/") == "s3://b/p"
    assert local_path("x/../y") == tmp_path / "y" and Path(local_path("~")).is_absolute()


def _numeric_keys(obj, prefix: str):
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numeric_keys(value, f"{prefix}.{f.name}")
        elif {int, float} & set(typing.get_args(hints[f.name]) or (hints[f.name],)):
            yield f"{prefix}.{f.name}"


def test_every_numeric_setting_refuses_a_negative_value_at_load():
    """The kind, not one example: a count, rate, size, seed or budget below its range is a
    one-line ConfigError when the config is read, not a traceback (or a silent run) minutes
    later. -1 keeps its meaning where it has one (max_epochs, max_steps); -7 has none."""
    groups = ("sweep", "journey")
    cfg = load_config([], groups=groups)
    keys = [k for section in ("data", "model", "optim", "trainer", "evaluate", "register", "promote", "tracking",
                              "sweep", "journey") for k in _numeric_keys(getattr(cfg, section), section)]
    assert len(keys) >= 40 and "optim.lr" in keys and "sweep.scheduler.grace_period" in keys
    accepted = []
    for key in keys:
        try:
            load_config([f"{key}=-7"], groups=groups)
            accepted.append(key)
        except ConfigError as err:
            assert key.split(".")[-1] in str(err) and "\n" not in str(err), err
    assert not accepted, f"accepted -7: {accepted}"


def test_every_optional_text_setting_refuses_an_empty_value_at_load():
    """'' for a setting whose null means "the default" (data.dir, sweep.storage_path,
    server.state_dir, tracking.uri, ...) would silently mean the current folder or nothing."""
    groups = ("sweep", "journey", "server", "cluster")
    cfg = load_config([], groups=groups)
    keys = []
    for section in ("data", "trainer", "evaluate", "register", "tracking", "sweep", "server", "cluster"):
        hints = typing.get_type_hints(type(getattr(cfg, section)))
        keys += [f"{section}.{name}" for name, tp in hints.items() if set(typing.get_args(tp)) == {str, type(None)}]
    assert len(keys) >= 10 and {"data.dir", "sweep.storage_path", "tracking.uri"} <= set(keys)
    for key in keys:
        with pytest.raises(ConfigError, match=f"^{re.escape(key)} is empty: give a value, or null for its default$"):
            load_config([f"{key}=''"], groups=groups)


def test_every_required_text_setting_refuses_an_empty_value_at_load():
    """'' for a name, user, language or host (journey.name, server.database, server.role,
    cluster.host, ...) made a folder, role or database named nothing, or PostgreSQL's default.
    Where '' means something (server.host: every interface; server.pg_host: the local socket)
    the class says so (MAY_BE_EMPTY)."""
    groups = ("sweep", "journey", "server", "cluster")
    cfg = load_config([], groups=groups)
    keys, kept = [], []
    for section in ("data", "optim", "trainer", "evaluate", "register", "promote", "tracking", "sweep", "journey",
                    "server", "cluster"):
        obj = getattr(cfg, section)
        hints = typing.get_type_hints(type(obj))
        text = [name for name, tp in hints.items() if tp is str and name in {f.name for f in dataclasses.fields(obj)}]
        keys += [f"{section}.{n}" for n in text if n not in getattr(type(obj), "MAY_BE_EMPTY", ())]
        kept += [f"{section}.{n}" for n in text if n in getattr(type(obj), "MAY_BE_EMPTY", ())]
    assert len(keys) >= 10 and {"journey.name", "server.database", "cluster.host"} <= set(keys)
    assert kept == ["server.host", "server.pg_host"]
    for key in keys:
        with pytest.raises(ConfigError) as err:
            load_config([f"{key}=''"], groups=groups)
        assert key in str(err.value) and "\n" not in str(err.value), err.value
    for key in kept:
        load_config([f"{key}=''"], groups=groups)


def _port_keys(obj, prefix=""):
    """Every ``port`` / ``*_port`` key of a loaded config, sections included."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _port_keys(value, f"{prefix}{f.name}.")
        elif f.name == "port" or f.name.endswith("_port"):
            yield f"{prefix}{f.name}"


PORT_KEYS = sorted(_port_keys(load_config(["server.port=5000", "cluster.port=6390"])))


def test_the_port_keys_are_found():
    assert {"server.port", "server.pg_port", "cluster.port"} <= set(PORT_KEYS)


@pytest.mark.parametrize("key", PORT_KEYS)
@pytest.mark.parametrize("port", [0, 65536, 99999, -1])
def test_a_port_out_of_range_fails_at_load_in_one_line(key, port):
    """Before: `nmt server up server.port=99999` died in socket.bind with a traceback."""
    with pytest.raises(ConfigError) as err:
        load_config([f"{key}={port}"])
    assert str(err.value) == f"{key} must be a TCP port, 1-65535, got {port}"


@pytest.mark.parametrize("key", PORT_KEYS)
def test_a_port_in_range_loads(key):
    section, name = key.rsplit(".", 1)
    assert getattr(getattr(load_config([f"{key}=65535"]), section), name) == 65535


@pytest.mark.parametrize("override, message", [
    ("server.workers=0", "server.workers must be >= 1, got 0"),
    ("server.start_timeout_s=0", "server.start_timeout_s must be > 0, got 0.0"),
    ("cluster.workers=-1", "cluster.workers must be >= 0, got -1"),
    ("cluster.object_store_mb=10", "cluster.object_store_mb must be >= 75 (Ray's smallest object store), got 10"),
])
def test_server_and_cluster_numbers_are_checked_at_load(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config([override])


def test_a_ray_address_with_a_port_out_of_range_is_one_line():
    from nmt.pipeline.studies.sweep.ray_setup import check_ray_address
    with pytest.raises(ConfigError, match=r"sweep.ray_address='127.0.0.2:99999': expected host:port"):
        check_ray_address("127.0.0.2:99999")
