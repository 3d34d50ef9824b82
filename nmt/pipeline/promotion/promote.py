"""``nmt promote`` and ``nmt rollback``: the registry's ``champion`` alias moves only
through a significance gate, and back one step. Which model and candidate:
:mod:`nmt.pipeline.promotion.candidates`.

promote
  1. The candidate: ``--version N``, else the run with the highest ``best/val_bleu`` among
     ``--run ID``, the children of ``--sweep-run ID`` or the experiment's train and sweep
     trial runs. A run with no registered version yet is logged and registered inside the
     promotion run (:func:`nmt.pipeline.stages.register.register_version`).
  2. Already ``@champion``: nothing changes, nothing is logged.
  3. A ``promotion`` run: candidate and champion translate the same test split (from the
     candidate's prepare run), scored with sacreBLEU BLEU, tokenized for that run's target
     language (``evaluate.bleu_tokenize``), and compared by paired bootstrap resampling
     (:mod:`nmt.components.evaluation.significance`).
  4. :func:`decide`: the candidate becomes champion when its BLEU is higher with
     ``p < p_threshold`` (or ``force``); otherwise it becomes ``@challenger``. With no
     champion yet, the candidate becomes champion without a test.
  5. Scores, p-value and decision go into the candidate's version tags and the run.
  6. Last, the aliases: the outgoing champion becomes ``@previous``, the candidate
     ``@champion``. A promotion that fails before this step never moves ``@champion``.

rollback
  ``@champion`` goes back to ``@previous``; the rolled-back version becomes ``@challenger``
  and ``@previous`` is removed: one step of history, so a second rollback fails until the
  next promotion. To bring the rolled-back version back: ``nmt promote --version N``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError
from nmt.components.evaluation.evalkey import resolve_split
from nmt.components.system.code_version import running_code_version
from nmt.components.tracking.names import CHALLENGER, CHAMPION, PREVIOUS
from nmt.components.tracking.run import RunLog
from nmt.components.evaluation.scoring import MetricChoice, choose_metric, warn
from nmt.components.evaluation.significance import paired_bootstrap
from nmt.components.tracking.store import RunStore
from nmt.components.tracking.uri import stage_tags
from nmt.pipeline.promotion.aliases import aliases, check_unmoved, require_model, swap
from nmt.pipeline.promotion.candidates import Candidate, model_name, resolve_candidate
from nmt.pipeline.config import PipelineConfig, PromoteConfig
from nmt.pipeline.promotion.loading import load_translator
from nmt.pipeline.upstream import test_split

log = logging.getLogger("nmt")

# decisions
FIRST = "first"             # no champion yet: promoted without a test
PROMOTED = "promoted"       # higher BLEU, p < threshold
FORCED = "forced"           # the gate said no, --force said yes
REJECTED = "rejected"       # -> @challenger
UNCHANGED = "unchanged"     # the candidate already is @champion
MOVES_CHAMPION = (FIRST, PROMOTED, FORCED)


@dataclass(frozen=True)
class Comparison:
    n: int
    bleu_candidate: float
    bleu_champion: float
    p_value: float


@dataclass(frozen=True)
class PromoteOutputs:
    model_name: str
    candidate_version: str
    champion_version: str | None        # the champion before this promotion
    decision: str
    comparison: Comparison | None = None
    run_id: str | None = None           # the promotion run (None when nothing changed)


@dataclass(frozen=True)
class RollbackOutputs:
    model_name: str
    from_version: str | None
    to_version: str
    run_id: str


def decide(bleu_candidate: float, bleu_champion: float, p_value: float, p_threshold: float,
           force: bool = False) -> str:
    """The gate: promote only a candidate that is better, and significantly so."""
    if bleu_candidate > bleu_champion and p_value < p_threshold:
        return PROMOTED
    return FORCED if force else REJECTED


def gate_metric(store: RunStore, cfg: PipelineConfig, prepare_run_id: str) -> MetricChoice:
    """How the gate scores: BLEU tokenized for the target language of the candidate's data."""
    lang = store.get_run(prepare_run_id).params.get(N.PARAM_TGT_LANG, cfg.data.tgt_lang)
    metric = choose_metric(lang, cfg.evaluate.bleu_tokenize)
    warn(metric)
    return metric


def gate_comparison(store: RunStore, name: str, candidate: str, champion: str, prepare_run_id: str,
                    gate: PromoteConfig, metric: MetricChoice = MetricChoice()) -> Comparison:
    """Both versions translate the same sentences, then sacreBLEU's paired bootstrap."""
    sources, refs = test_split(store, prepare_run_id, gate.split, gate.limit)
    # both versions' weights in today's code (nmt.pipeline.promotion.loading): the gate compares
    # models, not the code each version shipped, and runs nothing from the artifact store
    hyps = {v: load_translator(store, f"models:/{name}/{v}").predict(sources, params={"beam_size": gate.beam_size})
            for v in (candidate, champion)}
    res = paired_bootstrap(hyps[champion], hyps[candidate], refs, n_samples=gate.resamples, seed=gate.seed,
                           tokenize=metric.tokenize)
    return Comparison(len(refs), bleu_candidate=res.bleu_b, bleu_champion=res.bleu_a, p_value=res.p_value)


def _record(run: RunLog, name: str, version: str, champion: str | None, decision: str, cmp: Comparison | None
            ) -> None:
    """The outcome on the promotion run and on the candidate's version tags."""
    run.log_params({"candidate_version": version, "champion_version": champion or "none"})
    run.set_tag(N.TAG_DECISION, decision)
    tags = {"decision": decision, "run_id": run.run_id, "champion_version": champion or "none"}
    if cmp is not None:
        metrics = {"bleu_candidate": cmp.bleu_candidate, "bleu_champion": cmp.bleu_champion, "p_value": cmp.p_value}
        run.log_params({"n": cmp.n})
        run.log_metrics(metrics)
        tags.update({k: f"{v:.6g}" for k, v in metrics.items()})
    run.store.tag_version(name, version, {N.VTAG_PROMOTION + k: v for k, v in tags.items()})


def _move_aliases(store: RunStore, name: str, version: str, read: dict[str, str], decision: str) -> None:
    """Compare-and-swap against the aliases read at the start (:mod:`nmt.pipeline.promotion.aliases`)."""
    champion = read.get(CHAMPION)
    before = {a: read.get(a) for a in (CHAMPION, PREVIOUS, CHALLENGER)}
    if decision not in MOVES_CHAMPION:
        swap(store, name, before, {CHALLENGER: version}, "promote")
        return
    moves: dict[str, str | None] = {PREVIOUS: champion} if champion is not None else {}
    if read.get(CHALLENGER) == version:
        moves[CHALLENGER] = None
    moves[CHAMPION] = version  # the last step
    swap(store, name, before, moves, "promote")


def _command_run(store: RunStore, stage: str, params: Mapping[str, Any]) -> AbstractContextManager[RunLog]:
    """A promotion or rollback run, tagged as a stage run is (stage, code version, key)."""
    code = running_code_version(__name__)
    return store.run(stage, tags=stage_tags(stage, params, code), params=params)


def run_promote(cfg: PipelineConfig, *, version: str | None = None, run_id: str | None = None,
                sweep_run_id: str | None = None, pinned: bool = True) -> PromoteOutputs:
    """``pinned=False``: the model follows the newest run's language pair (a plain ``nmt promote``)."""
    if sum(x is not None for x in (version, run_id, sweep_run_id)) > 1:
        raise ConfigError("give at most one of version, run, sweep run")
    gate = replace(cfg.promote, split=resolve_split(cfg.promote.split, cfg.data.primary))
    store = RunStore.from_config(cfg.tracking)
    name, pair = model_name(cfg, store, pinned)
    cand = resolve_candidate(store, name, version=version, run_id=run_id, sweep_run_id=sweep_run_id, pair=pair)
    read = aliases(store, name)  # what the alias moves compare against at the end
    champion = read.get(CHAMPION)
    if cand.version is not None and str(cand.version.version) == champion:
        log.info("promote: %s version %s already is @%s; nothing to do", name, champion, CHAMPION)
        return PromoteOutputs(name, champion, champion, UNCHANGED)

    metric = gate_metric(store, cfg, cand.prepare_run_id)
    params = {"model_name": name, "candidate_run_id": cand.run_id or "none", N.PARAM_PREPARE_RUN: cand.prepare_run_id,
              "split": gate.split, "beam_size": gate.beam_size, "limit": gate.limit or "all",
              "resamples": gate.resamples, "seed": gate.seed, "p_threshold": gate.p_threshold, "force": gate.force,
              N.PARAM_METRIC: metric.key}
    with _command_run(store, "promotion", params) as run:
        version = _registered(run, name, cand)
        cmp, decision = None, FIRST
        if champion is not None:
            cmp = gate_comparison(store, name, version, champion, cand.prepare_run_id, gate, metric)
            decision = decide(cmp.bleu_candidate, cmp.bleu_champion, cmp.p_value, gate.p_threshold, gate.force)
        check_unmoved(store, name, {a: read.get(a) for a in (CHAMPION, PREVIOUS, CHALLENGER)}, "promote")
        _record(run, name, version, champion, decision, cmp)
        _move_aliases(store, name, version, read, decision)
    log.info("promote: %s version %s: %s", name, version, decision)
    return PromoteOutputs(name, version, champion, decision, cmp, run.run_id)


def _registered(run: RunLog, name: str, cand: Candidate) -> str:
    """The candidate's version; a run not registered yet is, inside the promotion run."""
    if cand.version is not None:
        return str(cand.version.version)
    from nmt.pipeline.stages.register import register_version
    mv, _ = register_version(run.store, name, cand.run_id, cand.prepare_run_id, run_id=run.run_id, arch=cand.arch)
    log.info("promote: registered run %s as %s version %s", cand.run_id, name, mv.version)
    return str(mv.version)


def run_rollback(cfg: PipelineConfig, *, pinned: bool = True) -> RollbackOutputs:
    store = RunStore.from_config(cfg.tracking)
    name, _ = model_name(cfg, store, pinned)
    current = require_model(store, name)
    champion, previous = current.get(CHAMPION), current.get(PREVIOUS)
    if previous is None:
        raise ConfigError(f"{name} has no @{PREVIOUS} version to roll back to")
    if previous == champion:
        raise ConfigError(f"{name} version {previous} already is @{CHAMPION}; nothing to roll back")
    params = {"model_name": name, "from_version": champion or "none", "to_version": previous}
    with _command_run(store, "rollback", params) as run:
        before = {a: current.get(a) for a in (CHAMPION, PREVIOUS, CHALLENGER)}
        check_unmoved(store, name, before, "rollback")
        if champion is not None:
            store.tag_version(name, champion, {N.VTAG_ROLLBACK_RUN: run.run_id})
        swap(store, name, before, {**({CHALLENGER: champion} if champion is not None else {}),
                                   CHAMPION: previous, PREVIOUS: None}, "rollback")
    log.info("rollback: %s @%s %s -> %s", name, CHAMPION, champion, previous)
    return RollbackOutputs(name, champion, previous, run.run_id)


def outcome_text(out: PromoteOutputs, gate: PromoteConfig) -> str:
    """What ``nmt promote`` prints."""
    name, cand, champ = out.model_name, out.candidate_version, out.champion_version
    if out.decision == UNCHANGED:
        return f"{name} version {cand} already is @{CHAMPION}: nothing changed"
    lines = []
    if out.comparison is not None:
        c = out.comparison
        lines += [f"candidate {name} version {cand} vs @{CHAMPION} version {champ} on {gate.split} "
                  f"(n={c.n}, beam {gate.beam_size})",
                  f"  BLEU candidate {c.bleu_candidate:.2f}  champion {c.bleu_champion:.2f}  "
                  f"p = {c.p_value:.4f} (paired bootstrap, {gate.resamples} resamples, seed {gate.seed}; "
                  f"threshold {gate.p_threshold})",
                  f"  both versions' weights ran in today's code (nmt code version "
                  f"{running_code_version(__name__)}), not in "
                  "the code each version shipped"]
    after = {FIRST: f"version {cand} is @{CHAMPION} (there was none: no test)",
             PROMOTED: f"version {cand} is @{CHAMPION}, version {champ} is @{PREVIOUS}",
             FORCED: f"version {cand} is @{CHAMPION} (forced past the gate), version {champ} is @{PREVIOUS}",
             REJECTED: f"version {cand} is @{CHALLENGER}, @{CHAMPION} stays version {champ}"}[out.decision]
    lines.append(f"decision: {out.decision}: {after}   (promotion run {out.run_id})")
    return "\n".join(lines)


def cmd_promote(args, cfg, pinned: bool) -> int:
    out = run_promote(cfg, version=args.version, run_id=args.run, sweep_run_id=args.sweep_run, pinned=pinned)
    print(outcome_text(out, cfg.promote))
    return 0


def cmd_rollback(args, cfg, pinned: bool) -> int:
    out = run_rollback(cfg, pinned=pinned)
    print(f"rolled back {out.model_name}: @champion is version {out.to_version} again"
          + (f", version {out.from_version} is @challenger" if out.from_version else "")
          + f"   (rollback run {out.run_id})")
    return 0
