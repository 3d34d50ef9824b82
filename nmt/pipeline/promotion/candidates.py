"""Which model ``nmt promote`` looks at: the registered model's name and the candidate run.

A plain ``nmt promote`` (or ``rollback``, ``translate``) follows the language pair of the
newest train or trial run in the experiment: after ``nmt run data.src_lang=fr`` it targets
``nmt-fr-en``. ``data.src_lang=.. data.tgt_lang=..`` or ``--model-name`` pin it instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError
from nmt.components.tracking.run import PARENT_KINDS, RunRecord
from nmt.components.tracking.store import ModelVersion, RunStore, StoreError
from nmt.pipeline.config import PipelineConfig
from nmt.pipeline.promotion.aliases import require_model

log = logging.getLogger("nmt")
CANDIDATE_STAGES = ("train", "trial")   # runs that hold a checkpoint and best/val_bleu


@dataclass(frozen=True)
class Candidate:
    run_id: str | None                  # the train or trial run the weights come from
    prepare_run_id: str
    version: ModelVersion | None        # None until registered
    arch: str | None = None


def get_run(store: RunStore, run_id: str, what: str = "run") -> RunRecord:
    try:
        return store.get_run(run_id)
    except StoreError as err:
        raise ConfigError(f"{what} {run_id} not found in {store.uri}: {err.message}") from None


def prepare_of(run: RunRecord) -> str:
    prep = run.params.get(N.PARAM_PREPARE_RUN)
    if not prep:
        raise ConfigError(f"run {run.id} has no {N.PARAM_PREPARE_RUN} param: which test data?")
    return prep


@lru_cache(maxsize=256)
def _pair_of_prepare(store: RunStore, prepare_run_id: str) -> str | None:
    params = store.get_run(prepare_run_id).params
    src, tgt = params.get(N.PARAM_SRC_LANG), params.get(N.PARAM_TGT_LANG)
    return f"{src}-{tgt}" if src and tgt else None


def pair_of(store: RunStore, run: RunRecord) -> str | None:
    """``de-en``: the language pair of a train or trial run's data."""
    prep = run.params.get(N.PARAM_PREPARE_RUN)
    return _pair_of_prepare(store, prep) if prep else None


def model_name(cfg: PipelineConfig, store: RunStore, pinned: bool) -> tuple[str, str | None]:
    """(registered model name, language pair its candidates must have). ``pinned``: the user
    named the pair or the model; else the pair of the newest train or trial run decides."""
    if cfg.register.model_name:
        return cfg.register.model_name, None
    pair = f"{cfg.data.src_lang}-{cfg.data.tgt_lang}"
    if not pinned:
        for run in store.find(status="FINISHED", limit=200):
            if run.tags.get(N.TAG_STAGE) in CANDIDATE_STAGES and pair_of(store, run):
                pair = pair_of(store, run)
                log.info("nmt-%s: the language pair of the newest %s run %s (data.src_lang=.. data.tgt_lang=.. "
                         "to choose)", pair, run.tags[N.TAG_STAGE], run.id)
                break
    return f"nmt-{pair}", pair


def _version_of_run(store: RunStore, name: str, run_id: str) -> ModelVersion | None:
    """The newest version registered from a train/trial run (tag ``train_run_id``)."""
    found = store.versions(name, {N.VTAG_TRAIN_RUN: run_id})
    return max(found, key=lambda mv: int(mv.version)) if found else None


def _best_run(store: RunStore, runs: list[RunRecord], where: str, pair: str | None) -> RunRecord:
    ranked = [r for r in runs if r.tags.get(N.TAG_STAGE) in CANDIDATE_STAGES and N.BEST_VAL_BLEU in r.metrics
              and (pair is None or pair_of(store, r) == pair)]
    if not ranked:
        of = f" of {pair}" if pair else ""
        raise ConfigError(f"no train or trial run{of} with {N.BEST_VAL_BLEU} {where}")
    return max(ranked, key=lambda r: r.metrics[N.BEST_VAL_BLEU])


def from_version(store: RunStore, name: str, version: str) -> Candidate:
    require_model(store, name)  # "no such model, these exist" before "no version N"
    try:
        mv = store.version(name, version)
    except StoreError:
        raise ConfigError(f"{name} has no version {version}") from None
    prep = mv.tags.get(N.VTAG_PREPARE_RUN)
    if not prep:  # versions registered before the tag existed: their register run has it
        prep = prepare_of(get_run(store, mv.tags.get(N.VTAG_TRAIN_RUN) or mv.run_id))
    return Candidate(mv.tags.get(N.VTAG_TRAIN_RUN), prep, mv)


def resolve_candidate(store: RunStore, name: str, *, version: str | None = None, run_id: str | None = None,
                      sweep_run_id: str | None = None, pair: str | None = None) -> Candidate:
    """``version``, else ``run_id``, else the best child of ``sweep_run_id``, else the best
    train or trial run of the experiment (by best/val_bleu, of ``pair`` when given)."""
    if version is not None:
        return from_version(store, name, version)
    if run_id is not None:
        run = store.expect(run_id, "--run", CANDIDATE_STAGES)
    elif sweep_run_id is not None:
        parent = store.expect(sweep_run_id, "--sweep-run", PARENT_KINDS)
        sweep = RunStore(store.uri, parent.experiment_id)  # the sweep's own experiment
        children = sweep.find(parent=sweep_run_id)
        run = _best_run(store, children, f"under sweep run {sweep_run_id}", pair)
    else:
        runs = store.find(ranked_by=N.BEST_VAL_BLEU)
        run = _best_run(store, runs, f"in experiment {store.experiment_id}", pair)
    return Candidate(run.id, prepare_of(run), _version_of_run(store, name, run.id),
                     arch=run.params.get("model.arch") or run.tags.get(N.TAG_ARCH))
