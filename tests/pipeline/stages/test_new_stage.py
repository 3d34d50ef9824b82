"""Adding a stage takes what the README says: its module (``run_export`` and ``ExportSettings``),
one row in the stage table and its section in ``conf/config.yaml``. A
throwaway ``export`` stage, added that way, gets a command with its config group in
``--help``, runs after the stages it needs inside the pipeline parent, reads its typed
settings, is reused when nothing changed, and re-runs alone when its settings change."""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from nmt.components.system import code_version as imports
from nmt.components.system.errors import ConfigError
from nmt.pipeline.stages import runner
from nmt.pipeline import stages
from nmt.pipeline.cli import main
from nmt.pipeline.config import load_config
from nmt.pipeline.stages.runner import Stage
from tests.conftest import TINY_RUN


# -- the stage module: nmt/pipeline/stages/<name>.py ----------------------------------------
STAGE_MODULE = '''"""export: count the validation pairs short enough to export, beside the trained model."""

from __future__ import annotations

from dataclasses import dataclass

from nmt.components.system.typed_config import ConfigError, flatten, to_dict
from nmt.components.tracking.run import RunLog
from nmt.pipeline.stages.runner import Context, execute
from nmt.pipeline.upstream import PreparedData


@dataclass(frozen=True)
class ExportSettings:
    max_len: int                      # longest tokenized source the export keeps

    def validate(self, prefix: str) -> None:
        if self.max_len < 1:
            raise ConfigError(f"{prefix}.max_len must be >= 1, got {self.max_len}")


@dataclass(frozen=True)
class ExportOutputs:
    run_id: str


def run_export(cfg, ctx: Context, prepare_run_id: str, train_run_id: str) -> ExportOutputs:
    settings: ExportSettings = cfg.stage_settings["export"]
    params = {**flatten(to_dict(settings), "export."), "prepare_run": prepare_run_id, "train_run": train_run_id}

    def body(run: RunLog) -> None:
        from datasets import load_from_disk
        val = load_from_disk(str(PreparedData.load(run.store, prepare_run_id).data_dir))["val"]
        kept = sum(n <= settings.max_len for n in val["src_len"])
        run.log_metrics({"export/kept": float(kept), "export/pairs": float(len(val))})

    return ExportOutputs(execute("export", ctx, cfg, params, body).id)
'''


@pytest.fixture
def export_stage(nmt_home, conf_copy, monkeypatch):
    """The module, the table row and the YAML section; all three taken back afterwards (the
    section in a copy of ``conf/``: tests running beside this one read the checkout's)."""
    name = f"export_test_{uuid.uuid4().hex[:6]}"
    module = Path(stages.__file__).parent / f"{name}.py"
    conf = conf_copy / "config.yaml"
    conf.write_text(conf.read_text() + "\nexport:\n  max_len: 30\n")
    module.write_text(STAGE_MODULE)
    ref = f"nmt.pipeline.stages.{name}"
    row = Stage("export", f"{ref}:run_export", ("prepare", "train"), ("export",), "export the trained model",
                settings=f"{ref}:ExportSettings")
    monkeypatch.setattr(runner, "STAGES", (*runner.STAGES, row))
    imports._this_process.cache_clear()  # this process's sources: now with the new module
    try:
        yield importlib.import_module(ref)
    finally:
        module.unlink()
        sys.modules.pop(ref, None)
        imports._this_process.cache_clear()


def _runs(stage: str) -> list:
    client = MlflowClient()
    exp = client.get_experiment_by_name("nmt").experiment_id
    return client.search_runs([exp], f"tags.`nmt.stage` = '{stage}'")


def test_the_new_stage_has_a_command_listing_its_settings(export_stage, capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "export the trained model" in out and "export    keys export.* (conf/config.yaml)" in out
    assert "data " in out and "model " in out  # the groups of the stages it runs first
    assert load_config([]).stage_settings == {"export": export_stage.ExportSettings(max_len=30)}
    with pytest.raises(ConfigError, match="export.max_len must be >= 1, got 0"):
        load_config(["export.max_len=0"])


@pytest.mark.slow
def test_the_new_stage_runs_after_what_it_needs_and_is_reused(export_stage, capsys):
    assert main(["export", *TINY_RUN]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines() if " run " in line] == ["prepare", "train", "export"]
    (export,) = _runs("export")
    (train,) = _runs("train")
    assert export.data.params["train_run"] == train.info.run_id and export.data.params["export.max_len"] == "30"
    assert export.data.tags["mlflow.parentRunId"] == train.data.tags["mlflow.parentRunId"]
    assert 0 < export.data.metrics["export/kept"] <= export.data.metrics["export/pairs"] == 20

    assert main(["export", *TINY_RUN]) == 0  # nothing changed: every stage reused
    assert "export    run " + export.info.run_id + "  (reused)" in capsys.readouterr().out

    assert main(["export", *TINY_RUN, "export.max_len=1000"]) == 0  # its own setting: it alone re-runs
    out = capsys.readouterr().out
    assert "train     run " + train.info.run_id + "  (reused)" in out
    runs = _runs("export")
    assert len(runs) == 2 and {r.data.metrics["export/kept"] for r in runs if r.data.params["export.max_len"] == "1000"
                               } == {20.0}


def test_the_stage_table_is_what_run_pipeline_and_the_cli_follow():
    names = [s.name for s in runner.STAGES]
    assert names == ["prepare", "train", "evaluate", "register"]
    for i, s in enumerate(runner.STAGES):
        assert set(s.needs) <= set(names[:i]), f"{s.name} needs a later stage"
        assert s.function().__name__ == f"run_{s.name}"
    assert [s.name for s in runner.upto("train")] == ["prepare", "train"]
    with pytest.raises(ValueError, match="unknown stage 'distill'; valid: prepare, train, evaluate, register"):
        runner.upto("distill")
