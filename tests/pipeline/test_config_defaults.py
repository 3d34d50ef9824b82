"""Each default is written once. A run's settings live in ``conf/`` only: their dataclasses have
no defaults, and every field must be set by the composed YAML (``parse`` refuses a missing or
unknown key). A model's sizes live in its config class only (they are also what an older
model_config.json means), and ``conf/model/*.yaml`` start from them. A variant lists only what
it changes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing
import pytest
import yaml
from omegaconf import OmegaConf

from nmt.components.system.typed_config import flatten
from nmt.components.system.errors import ConfigError
from nmt.components.data.source_config import DataConfig
from nmt.components.models.factory import ARCHITECTURES, model_dict
from nmt.pipeline.stages import runner
from nmt.components.system.paths import CONF_DIR
from nmt.pipeline.compose import ON_DEMAND, compose_config
from nmt.pipeline.config import PipelineConfig, load_config, section_class

# what data=files and data=hf leave to the user (??? in their YAML)
REQUIRED = {"files": ["data.src_lang=xa", "data.tgt_lang=xb", "data.train=[corpus]"],
            "hf": ["data.path=wmt16", "data.name=ro-en", "data.src_lang=ro", "data.tgt_lang=en"]}


def _run_configs() -> set[type]:
    """Every dataclass a composed config is parsed into, models aside."""
    seen: set[type] = set()
    todo: list[type] = [PipelineConfig, *DataConfig.KINDS.values(), *map(section_class, ON_DEMAND),
                        *filter(None, (s.settings_class() for s in runner.STAGES))]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for tp in typing.get_type_hints(cls).values():
            for arg in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                    todo.append(arg)
    return seen


def test_no_run_setting_has_a_default_in_code():
    classes = _run_configs()
    assert len(classes) >= 15  # pipeline, trainer, sweep and its parts, journey, server, cluster, data kinds
    with_default = [f"{cls.__name__}.{f.name}" for cls in classes for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    assert not with_default, f"defaults belong in conf/*.yaml: {with_default}"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("override", [
    *(f"{g}={o}" for g in ("model", "optim", "trainer", "evaluate", "tracking", "sweep", "journey", "profile")
      for o in _options(g)), *(f"data={o}" for o in _options("data")), "server=local", "cluster=local"])
def test_every_option_sets_every_field_and_only_fields(override):
    kind = override.split("=")[1]
    cfg = load_config([override, *REQUIRED.get(kind, [])] if override.startswith("data=") else [override])
    assert cfg.data.kind in DataConfig.KINDS and cfg.trainer.max_epochs >= 1


def test_a_field_the_yaml_does_not_set_is_refused():
    with pytest.raises(ConfigError, match=r"missing config key trainer\.seed"):
        load_config(["~trainer.seed"])


def test_sweep_journey_server_and_cluster_are_composed_only_when_asked_for():
    cfg = load_config([])
    assert (cfg.sweep, cfg.journey, cfg.server, cfg.cluster) == (None, None, None, None)
    assert not {"sweep", "journey", "server", "cluster"} & set(compose_config([]))
    assert load_config([], groups=("sweep",)).sweep.name == "default" and load_config(["journey.seeds=[4]"]).journey.seeds == (4,)
    cfg = load_config([], groups=("server",))
    assert cfg.server.port == 5000 and cfg.cluster is None
    cfg = load_config(["cluster.workers=3"])
    assert cfg.cluster.workers == 3 and cfg.server is None
    assert load_config(["server=local", "server.port=5001"]).server.port == 5001
    assert load_config([], groups=("cluster",)).cluster.workers == 2  # conf/cluster/local.yaml, the one source


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_an_architecture_yaml_starts_from_its_config_class(arch):
    cls = ARCHITECTURES[arch][0]
    plain = [p.stem for p in (CONF_DIR / "model").glob("*.yaml")
             if yaml.safe_load(p.read_text()).get("defaults", [None])[0] == f"/arch/{arch}@_here_"]
    assert plain, f"no conf/model/*.yaml builds on /arch/{arch}"
    for name in plain:
        own = {k: v for k, v in yaml.safe_load((CONF_DIR / "model" / f"{name}.yaml").read_text()).items()
               if k != "defaults"}
        composed = OmegaConf.to_container(compose_config([f"model={name}"]).model)
        assert composed == {**model_dict(cls()), **own}


def _parent(group: str, name: str) -> dict:
    """What a variant inherits: its first default, composed."""
    first = yaml.safe_load((CONF_DIR / group / f"{name}.yaml").read_text())["defaults"][0]
    if first.startswith("/arch/"):
        cls = ARCHITECTURES[first.split("/")[2].split("@")[0]][0]
        return model_dict(cls())
    return OmegaConf.to_container(compose_config([f"{group}={first}"])[group])


@pytest.mark.parametrize("group, name", [(g, p.stem) for g in ("model", "sweep")
                                         for p in sorted((CONF_DIR / g).glob("*.yaml"))
                                         if isinstance(yaml.safe_load(p.read_text()).get("defaults", [{}])[0], str)])
def test_a_variant_lists_only_what_it_changes(group, name):
    own = flatten({k: v for k, v in yaml.safe_load((CONF_DIR / group / f"{name}.yaml").read_text()).items()
                   if k != "defaults"})
    inherited = flatten(_parent(group, name))
    repeated = sorted(k for k, v in own.items() if inherited.get(k) == v)
    assert not repeated, f"conf/{group}/{name}.yaml repeats what it inherits: {repeated}"


def test_variants_are_composed_as_they_were_written_out():
    """The values the copies used to spell out (sweep=pack, model=lstm, transformer_tiny)."""
    pack = load_config(["sweep=pack"]).sweep
    assert (pack.num_samples, pack.max_concurrent_trials, pack.scheduler.type, pack.resources.trials_per_gpu,
            pack.max_failures, pack.space) == \
        (8, 8, "fifo", 8, 0, {"optim": {"lr": {"type": "loguniform", "low": 0.0005, "high": 0.0015}}})
    rnn = load_config(["sweep=rnn"]).sweep
    assert rnn.search.algorithm == "optuna" and set(rnn.space) == {"arch", "optim", "model"}
    assert "arch" not in load_config(["sweep=smoke"]).sweep.space  # a space replaces the default's whole
    lstm = load_config(["model=lstm"]).model
    assert (lstm.cell, lstm.emb_dim, lstm.hidden_dim, lstm.dropout) == ("lstm", 256, 512, 0.5)
    tiny = load_config(["model=transformer_tiny"]).model
    assert (tiny.d_model, tiny.num_encoder_layers, tiny.num_heads, tiny.ff_dim, tiny.dropout, tiny.norm) == \
        (128, 4, 4, 256, 0.3, "pre")


def test_the_check_would_catch_a_repeated_value():
    own = flatten({"cell": "lstm", "emb_dim": 256})
    assert sorted(k for k, v in own.items() if flatten(_parent("model", "lstm")).get(k) == v) == ["emb_dim"]


def test_reading_nmt_runs_config_imports_no_studies_or_services_module():
    """`nmt run` reads none of the on-demand sections, so it loads none of their modules."""
    code = ("import sys; from nmt.pipeline.config import load_config; load_config([]); "
            "print(sorted(m for m in sys.modules if m.startswith(('nmt.pipeline.studies', 'nmt.pipeline.services'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = code.replace("load_config([])", "load_config([], groups=('sweep',))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "nmt.pipeline.studies.study_config" in out
