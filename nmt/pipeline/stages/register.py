"""register: log the trained model as an MLflow pyfunc translator and register a version.

Reads ``checkpoints/best.ckpt`` + ``model_config.json`` (train run) and ``tokenizer/``
(prepare run). Produces the logged model ``translator`` (a LoggedModel, ``models:/m-<id>``),
a version of ``nmt-<src>-<tgt>``, and alias ``champion`` when there is none yet or this
candidate's ``val/bleu`` is higher (the significance gate is ``nmt promote``).
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import torch
from mlflow.exceptions import MlflowException
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from nmt.components import names as N
from nmt.components.evalkey import EvalKey
from nmt.components.models.factory import save_spec
from nmt.components.translator import DEFAULT_PARAMS
from nmt.pipeline.aliases import aliases, swap
from nmt.pipeline.stages.common import Context, execute
from nmt.pipeline.upstream import download, trained_model

if TYPE_CHECKING:  # annotations only: the config loader is not code this stage runs
    from nmt.pipeline.config import PipelineConfig

log = logging.getLogger("nmt")
TRANSLATOR_MODEL = "nmt.components.translator_model"
EXAMPLE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]


@dataclass(frozen=True)
class RegisterOutputs:
    run_id: str
    model_name: str
    version: str
    model_uri: str
    champion: bool


def log_translator(train_run_id: str, prepare_run_id: str, example: list[str]) -> mlflow.models.model.ModelInfo:
    """Log the pyfunc into the active run; returns its ModelInfo (``models:/m-<id>``)."""
    model, spec = trained_model(train_run_id)
    tok_dir = download(prepare_run_id, N.TOKENIZER_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        weights, cfg_path = Path(tmp) / N.WEIGHTS, save_spec(spec, Path(tmp) / N.MODEL_CONFIG)
        torch.save(model.state_dict(), weights)
        artifacts = {"weights": str(weights), "model_config": str(cfg_path),
                     "src_tokenizer": str(tok_dir / N.SRC_TOKENIZER),
                     "tgt_tokenizer": str(tok_dir / N.TGT_TOKENIZER)}
        # the signature comes from predict's type hints (list[str] -> list[str]) and the
        # example's params: the scoring server then hands predict the raw JSON list, so a
        # malformed payload is a 400 with a message, never silently coerced to strings
        # models from code: MLflow stores translator_model.py, no pickle of our objects
        return mlflow.pyfunc.log_model(
            name=N.MODEL_NAME, python_model=translator_model_file(), artifacts=artifacts,
            code_paths=[str(Path(__file__).resolve().parents[2])],
            input_example=(example, DEFAULT_PARAMS), pip_requirements=_requirements())


def translator_model_file() -> str:
    """The models-from-code file (read, not imported here: importing it sets MLflow's model)."""
    return str(Path(__file__).resolve().parents[3].joinpath(*TRANSLATOR_MODEL.split(".")).with_suffix(".py"))


def _requirements() -> list[str]:
    import pytorch_lightning, sacrebleu, tokenizers  # noqa: E401
    return [f"torch=={torch.__version__.split('+')[0]}", f"tokenizers=={tokenizers.__version__}",
            f"mlflow=={mlflow.__version__}", f"sacrebleu=={sacrebleu.__version__}",
            f"pytorch-lightning=={pytorch_lightning.__version__}"]


def register_version(client: MlflowClient, name: str, train_run_id: str, prepare_run_id: str, *,
                     evaluate_run_id: str | None = None, arch: str | None = None) -> tuple[ModelVersion, str]:
    """Log the train (or winning trial) run's model into the active run and register it as a
    new version of ``name``, tagged with where it came from; moves no alias.
    Returns the version (with its tags) and the logged model's URI."""
    info = log_translator(train_run_id, prepare_run_id, EXAMPLE)
    mv = mlflow.register_model(info.model_uri, name)
    bleu = client.get_run(train_run_id).data.metrics.get(N.BEST_VAL_BLEU, float("-inf"))
    tags = {N.VTAG_VAL_BLEU: f"{bleu:.4f}", N.VTAG_TRAIN_RUN: train_run_id, N.VTAG_PREPARE_RUN: prepare_run_id}
    if arch:
        tags[N.TAG_ARCH] = arch
    if evaluate_run_id:
        tags["evaluate_run_id"] = evaluate_run_id
        for k, v in client.get_run(evaluate_run_id).data.metrics.items():
            if EvalKey.is_key(k) and EvalKey.parse(k).metric == "bleu":
                tags[k] = f"{v:.4f}"
    for k, v in tags.items():
        client.set_model_version_tag(name, mv.version, k, v)
    client.update_model_version(name, mv.version, description=describe(client, tags, arch))
    return client.get_model_version(name, mv.version), info.model_uri


def describe(client: MlflowClient, tags: dict[str, str], arch: str | None) -> str:
    """A version's description, as the registry UI shows it: architecture, data source, BLEU
    and the command that made it. ``tags``: the version's tags (val BLEU, runs, test BLEUs)."""
    train = client.get_run(tags[N.VTAG_TRAIN_RUN]).data
    prepare = client.get_run(tags[N.VTAG_PREPARE_RUN]).data
    p = prepare.params
    keys = ("data.kind", "data.path", "data.name", *(("data.train",) if p.get("data.kind") == "files" else ()))
    where = [p[k] for k in keys if p.get(k) not in (None, "None")]  # a file corpus is named by its files
    split = prepare.tags.get(N.TAG_PRIMARY_SPLIT, "")
    keys = {EvalKey.parse(k): v for k, v in sorted(tags.items()) if EvalKey.is_key(k)}
    tests = ", ".join(f"{k.search} {float(v):.2f}" for k, v in keys.items() if k.split == split and k.metric == "bleu")
    command = os.environ.get(N.ENV_COMMAND) or shlex.join(sys.argv)
    return (f"{arch or train.params.get('model.arch', '?')} on {' '.join(where)} "
            f"({p.get(N.PARAM_SRC_LANG)}-{p.get(N.PARAM_TGT_LANG)}).\n"
            f"BLEU: validation {float(tags[N.VTAG_VAL_BLEU]):.2f}" + (f"; {split} {tests}" if tests else "") + ".\n"
            f"Made by: {command}\n"
            f"Train run {tags[N.VTAG_TRAIN_RUN]}, prepare run {tags[N.VTAG_PREPARE_RUN]}.")


def champion_bleu(client: MlflowClient, name: str, alias: str) -> float | None:
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return float(mv.tags[N.VTAG_VAL_BLEU]) if N.VTAG_VAL_BLEU in mv.tags else None


def register_params(cfg: PipelineConfig, prepare_run_id: str, train_run_id: str, evaluate_run_id: str
                    ) -> dict[str, str]:
    """The reuse key's params: every config value the body reads (``model.label``: the arch tag)."""
    return {"register.model_name": cfg.model_name, "register.alias": cfg.register.alias, "model.label": cfg.model.label,
            N.PARAM_PREPARE_RUN: prepare_run_id, N.PARAM_TRAIN_RUN: train_run_id,
            "upstream.evaluate_run_id": evaluate_run_id}


def run_register(cfg: PipelineConfig, ctx: Context, prepare_run_id: str, train_run_id: str,
                 evaluate_run_id: str) -> RegisterOutputs:
    name, alias = cfg.model_name, cfg.register.alias
    params = register_params(cfg, prepare_run_id, train_run_id, evaluate_run_id)

    def body(run_id: str) -> None:
        client = MlflowClient()
        mv, model_uri = register_version(client, name, train_run_id, prepare_run_id,
                                         evaluate_run_id=evaluate_run_id, arch=cfg.model.label)
        bleu = float(mv.tags[N.VTAG_VAL_BLEU])
        read = aliases(client, name)
        current = champion_bleu(client, name, alias) if alias in read else None
        promote = current is None or bleu > current
        if promote:  # the alias move is the last step; the outgoing one stays @previous
            moves = {N.PREVIOUS: read[alias]} if current is not None and alias == N.CHAMPION else {}
            swap(client, name, {alias: read.get(alias), N.PREVIOUS: read.get(N.PREVIOUS)},
                 {**moves, alias: str(mv.version)}, "register")
        log.info("register: %s version %s%s", name, mv.version, f" is now @{alias}" if promote else "")
        mlflow.log_params({"registered.version": mv.version, "registered.model_uri": model_uri})
        mlflow.set_tag(N.TAG_CHAMPION, str(promote).lower())

    # the logged model runs translator_model.py, which register reads as a file, not an import
    run = execute("register", ctx, cfg, params, body, ships=(TRANSLATOR_MODEL,))
    version = run.data.params["registered.version"]
    return RegisterOutputs(run.info.run_id, name, version, run.data.params["registered.model_uri"],
                           run.data.tags.get(N.TAG_CHAMPION) == "true")
