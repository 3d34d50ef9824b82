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
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from nmt.components.tracking import names as N
from nmt.components.evaluation.evalkey import EvalKey
from nmt.components.tracking.run import RunLog, RunRecord
from nmt.components.tracking.store import ModelVersion, RunStore, StoreError
from nmt.components.serving.translator import log_translator
from nmt.pipeline.promotion.aliases import aliases, swap
from nmt.pipeline.stages.runner import Context, execute
from nmt.pipeline.evaluated import EvaluateOutputs
from nmt.pipeline.trained import TrainedModel
from nmt.pipeline.upstream import PreparedData

if TYPE_CHECKING:  # annotations only: the config loader is not code this stage runs
    from nmt.pipeline.config import PipelineConfig

log = logging.getLogger("nmt")
TRANSLATOR_MODEL = "nmt.components.serving.translator_model"
EXAMPLE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]


@dataclass(frozen=True)
class RegisterOutputs:
    """What a register run hands on: written into its params and tag by :meth:`publish`, read
    back (from a reused run too) by :meth:`of`."""
    run_id: str
    model_name: str
    version: str
    model_uri: str
    champion: bool
    VERSION: ClassVar[str] = "registered.version"
    MODEL_URI: ClassVar[str] = "registered.model_uri"

    def publish(self, run: RunLog) -> None:
        run.log_params({self.VERSION: self.version, self.MODEL_URI: self.model_uri})
        run.set_tag(N.TAG_CHAMPION, str(self.champion).lower())

    @classmethod
    def of(cls, run: RunRecord, model_name: str) -> RegisterOutputs:
        p = run.params
        return cls(run.id, model_name, p[cls.VERSION], p[cls.MODEL_URI], run.tags.get(N.TAG_CHAMPION) == "true")


def register_version(store: RunStore, name: str, train_run_id: str, prepare_run_id: str, *, run_id: str,
                     evaluate_run_id: str | None = None, arch: str | None = None) -> tuple[ModelVersion, str]:
    """Log the train (or winning trial) run's model into run ``run_id`` and register it as a
    new version of ``name``, tagged with where it came from; moves no alias.
    Returns the version (with its tags) and the logged model's URI."""
    trained = TrainedModel.load(store, train_run_id)
    tokenizer_dir = PreparedData.load(store, prepare_run_id).tokenizer_dir  # the prepare run's cached copy
    info = log_translator(store, run_id, trained.model(), trained.spec, tokenizer_dir, EXAMPLE)
    mv = store.register(info.model_uri, name)
    bleu = float("-inf") if trained.best_val_bleu is None else trained.best_val_bleu
    tags = {N.VTAG_VAL_BLEU: f"{bleu:.4f}", N.VTAG_TRAIN_RUN: train_run_id, N.VTAG_PREPARE_RUN: prepare_run_id}
    if arch:
        tags[N.TAG_ARCH] = arch
    if evaluate_run_id:
        tags["evaluate_run_id"] = evaluate_run_id
        for k, v in EvaluateOutputs.load(store, evaluate_run_id).scores.items():
            if EvalKey.is_key(k) and EvalKey.parse(k).metric == "bleu":
                tags[k] = f"{v:.4f}"
    store.describe_version(name, mv.version, tags, describe(store, tags, arch))
    return store.version(name, mv.version), info.model_uri


def describe(store: RunStore, tags: dict[str, str], arch: str | None) -> str:
    """A version's description, as the registry UI shows it: architecture, data source, BLEU
    and the command that made it. ``tags``: the version's tags (val BLEU, runs, test BLEUs)."""
    train = store.get_run(tags[N.VTAG_TRAIN_RUN])
    prepare = store.get_run(tags[N.VTAG_PREPARE_RUN])
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


def champion_bleu(store: RunStore, name: str, alias: str) -> float | None:
    try:
        mv = store.version_by_alias(name, alias)
    except StoreError:
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

    def body(run: RunLog) -> None:
        store = run.store
        mv, model_uri = register_version(store, name, train_run_id, prepare_run_id, run_id=run.run_id,
                                         evaluate_run_id=evaluate_run_id, arch=cfg.model.label)
        bleu = float(mv.tags[N.VTAG_VAL_BLEU])
        read = aliases(store, name)
        current = champion_bleu(store, name, alias) if alias in read else None
        promote = current is None or bleu > current
        if promote:  # the alias move is the last step; the outgoing one stays @previous
            moves = {N.PREVIOUS: read[alias]} if current is not None and alias == N.CHAMPION else {}
            swap(store, name, {alias: read.get(alias), N.PREVIOUS: read.get(N.PREVIOUS)},
                 {**moves, alias: str(mv.version)}, "register")
        log.info("register: %s version %s%s", name, mv.version, f" is now @{alias}" if promote else "")
        RegisterOutputs(run.run_id, name, str(mv.version), model_uri, promote).publish(run)

    # the logged model runs translator_model.py, which log_translator reads as a file, not an import
    run = execute("register", ctx, cfg, params, body, ships=(TRANSLATOR_MODEL,))
    return RegisterOutputs.of(run, name)
