"""``nmt promote`` and ``nmt rollback``: the registry's ``champion`` alias moves only
through a significance gate, and back one step.

promote
  1. The candidate: ``--version N``, else the run with the highest ``best/val_bleu`` among
     ``--run ID``, the children of ``--sweep-run ID`` or the experiment's train and sweep
     trial runs. A run with no registered version yet is logged and registered inside the
     promotion run (:func:`pipeline.stages.register.register_version`).
  2. Already ``@champion``: nothing changes, nothing is logged.
  3. A ``promotion`` run: candidate and champion translate the same test split (from the
     candidate's prepare run), scored with sacreBLEU BLEU and compared by paired bootstrap
     resampling (:mod:`components.significance`).
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
from dataclasses import dataclass

import mlflow
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from components.config import ConfigError
from components.significance import DEFAULT_RESAMPLES, DEFAULT_SEED, paired_bootstrap
from components.tracking import code_version, resolve_tracking_uri, setup_tracking, stage_run

log = logging.getLogger("nmt")

DEFAULT_MODEL = "nmt-de-en"
CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous", "challenger"
CANDIDATE_STAGES = ("train", "trial")   # runs that hold a checkpoint and best/val_bleu
RANK_METRIC = "best/val_bleu"
PREDICT_CHUNK = 500                     # sentences per predict call (the translator takes <= 1000)

# decisions
FIRST = "first"             # no champion yet: promoted without a test
PROMOTED = "promoted"       # higher BLEU, p < threshold
FORCED = "forced"           # the gate said no, --force said yes
REJECTED = "rejected"       # -> @challenger
UNCHANGED = "unchanged"     # the candidate already is @champion
MOVES_CHAMPION = (FIRST, PROMOTED, FORCED)


@dataclass(frozen=True)
class Gate:
    split: str = "test_2016_flickr"
    beam_size: int = 5
    limit: int | None = None            # first N sentences of the split only
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    p_threshold: float = 0.05
    force: bool = False

    def validate(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"beam size must be >= 1, got {self.beam_size}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.n_resamples < 1:
            raise ConfigError(f"resamples must be >= 1, got {self.n_resamples}")
        if self.seed < 1:
            raise ConfigError(f"seed must be >= 1 (sacreBLEU reads 0 as unseeded), got {self.seed}")
        if not 0 < self.p_threshold <= 1:
            raise ConfigError(f"p threshold must be in (0, 1], got {self.p_threshold}")


@dataclass(frozen=True)
class Candidate:
    run_id: str | None                  # the train or trial run the weights come from
    prepare_run_id: str
    version: ModelVersion | None        # None until registered
    arch: str | None = None


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

    @property
    def promoted(self) -> bool:
        return self.decision in MOVES_CHAMPION


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


# ---------------------------------------------------------------- the registry


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """alias -> version of a registered model ({} when the model does not exist yet)."""
    try:
        return {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def _get_run(client: MlflowClient, run_id: str, what: str) -> Run:
    try:
        return client.get_run(run_id)
    except MlflowException as err:
        raise ConfigError(f"{what} {run_id} not found in {mlflow.get_tracking_uri()}: {err.message}") from None


def _prepare_of_run(run: Run) -> str:
    prep = run.data.params.get("upstream.prepare_run_id")
    if not prep:
        raise ConfigError(f"run {run.info.run_id} has no upstream.prepare_run_id param: which test data?")
    return prep


def _version_of_run(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The newest version registered from a train/trial run (tag ``train_run_id``)."""
    found = client.search_model_versions(f"name = '{name}' and tags.train_run_id = '{run_id}'")
    return max(found, key=lambda mv: int(mv.version)) if found else None


def _best_run(runs: list[Run], where: str) -> Run:
    ranked = [r for r in runs if r.data.tags.get("nmt.stage") in CANDIDATE_STAGES and RANK_METRIC in r.data.metrics]
    if not ranked:
        raise ConfigError(f"no train or trial run with {RANK_METRIC} {where}")
    return max(ranked, key=lambda r: r.data.metrics[RANK_METRIC])


def resolve_candidate(client: MlflowClient, name: str, experiment_id: str, *, version: str | None = None,
                      run_id: str | None = None, sweep_run_id: str | None = None) -> Candidate:
    if version is not None:
        try:
            mv = client.get_model_version(name, str(version))
        except MlflowException:
            raise ConfigError(f"{name} has no version {version}") from None
        prep = mv.tags.get("prepare_run_id")
        if not prep:  # versions registered before the tag existed: their register run has it
            prep = _prepare_of_run(_get_run(client, mv.tags.get("train_run_id") or mv.run_id, "run"))
        return Candidate(mv.tags.get("train_run_id"), prep, mv)
    if run_id is not None:
        run = _get_run(client, run_id, "run")
        if run.data.tags.get("nmt.stage") not in CANDIDATE_STAGES:
            raise ConfigError(f"run {run_id} is a {run.data.tags.get('nmt.stage', 'non-stage')} run; "
                              "--run takes a train or sweep trial run")
    elif sweep_run_id is not None:
        parent = _get_run(client, sweep_run_id, "sweep run")
        children = client.search_runs([parent.info.experiment_id],
                                      f"tags.`mlflow.parentRunId` = '{sweep_run_id}'", max_results=1000)
        run = _best_run(children, f"under sweep run {sweep_run_id}")
    else:
        runs = client.search_runs([experiment_id], f"metrics.`{RANK_METRIC}` >= 0",
                                  order_by=[f"metrics.`{RANK_METRIC}` DESC"], max_results=1000)
        run = _best_run(runs, f"in experiment {experiment_id}")
    return Candidate(run.info.run_id, _prepare_of_run(run), _version_of_run(client, name, run.info.run_id),
                     arch=run.data.params.get("model.arch") or run.data.tags.get("arch"))


# ---------------------------------------------------------------- scoring


def load_split(prepare_run_id: str, split: str, limit: int | None) -> tuple[list[str], list[str]]:
    """Raw sources and references of one test split of the prepare run's data."""
    from datasets import load_from_disk

    from pipeline.stages.train import local_inputs
    data_dir, _ = local_inputs(prepare_run_id)
    data = load_from_disk(str(data_dir))
    if split not in data:
        raise ConfigError(f"split {split!r} is not in prepare run {prepare_run_id}; available: "
                          f"{', '.join(k for k in data if k.startswith('test'))}")
    rows = data[split][: limit or len(data[split])]
    return list(rows["src"]), list(rows["tgt"])


def translate(model_uri: str, sources: list[str], beam_size: int) -> list[str]:
    model = mlflow.pyfunc.load_model(model_uri)
    out: list[str] = []
    for i in range(0, len(sources), PREDICT_CHUNK):
        out += model.predict(sources[i:i + PREDICT_CHUNK], params={"beam_size": beam_size})
    return out


def compare(name: str, candidate: str, champion: str, prepare_run_id: str, gate: Gate) -> Comparison:
    """Both versions on the same sentences, then sacreBLEU's paired bootstrap."""
    sources, refs = load_split(prepare_run_id, gate.split, gate.limit)
    hyps = {v: translate(f"models:/{name}/{v}", sources, gate.beam_size) for v in (candidate, champion)}
    res = paired_bootstrap(hyps[champion], hyps[candidate], refs, n_samples=gate.n_resamples, seed=gate.seed)
    return Comparison(len(refs), bleu_candidate=res.bleu_b, bleu_champion=res.bleu_a, p_value=res.p_value)


# ---------------------------------------------------------------- promote / rollback


def _record(client: MlflowClient, name: str, version: str, champion: str | None, decision: str,
            cmp: Comparison | None, run_id: str) -> None:
    """The outcome on the promotion run and on the candidate's version tags."""
    mlflow.log_params({"candidate_version": version, "champion_version": champion or "none"})
    mlflow.set_tag("decision", decision)
    tags = {"promotion.decision": decision, "promotion.run_id": run_id,
            "promotion.champion_version": champion or "none"}
    if cmp is not None:
        metrics = {"bleu_candidate": cmp.bleu_candidate, "bleu_champion": cmp.bleu_champion, "p_value": cmp.p_value}
        mlflow.log_param("n", cmp.n)
        mlflow.log_metrics(metrics)
        tags.update({f"promotion.{k}": f"{v:.6g}" for k, v in metrics.items()})
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, v)


def _move_aliases(client: MlflowClient, name: str, version: str, champion: str | None, decision: str) -> None:
    if decision not in MOVES_CHAMPION:
        client.set_registered_model_alias(name, CHALLENGER, version)
        return
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion)
    if aliases(client, name).get(CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    client.set_registered_model_alias(name, CHAMPION, version)  # the last step


def run_promote(model_name: str = DEFAULT_MODEL, *, version: str | None = None, run_id: str | None = None,
                sweep_run_id: str | None = None, experiment: str = "nmt", gate: Gate = Gate(),
                tracking_uri: str | None = None) -> PromoteOutputs:
    if sum(x is not None for x in (version, run_id, sweep_run_id)) > 1:
        raise ConfigError("give at most one of version, run, sweep run")
    gate.validate()
    exp_id = setup_tracking(resolve_tracking_uri(tracking_uri), experiment)
    client = MlflowClient()
    cand = resolve_candidate(client, model_name, exp_id, version=version, run_id=run_id, sweep_run_id=sweep_run_id)
    champion = aliases(client, model_name).get(CHAMPION)
    if cand.version is not None and str(cand.version.version) == champion:
        log.info("promote: %s version %s already is @%s; nothing to do", model_name, champion, CHAMPION)
        return PromoteOutputs(model_name, champion, champion, UNCHANGED)

    params = {"model_name": model_name, "candidate_run_id": cand.run_id or "none",
              "prepare_run_id": cand.prepare_run_id, "split": gate.split, "beam_size": gate.beam_size,
              "limit": gate.limit or "all", "resamples": gate.n_resamples, "seed": gate.seed,
              "p_threshold": gate.p_threshold, "force": gate.force}
    with stage_run("promotion", experiment_id=exp_id, params=params, code=code_version()) as run:
        mv = cand.version
        if mv is None:
            from pipeline.stages.register import register_version
            mv, _ = register_version(client, model_name, cand.run_id, cand.prepare_run_id, arch=cand.arch)
            log.info("promote: registered run %s as %s version %s", cand.run_id, model_name, mv.version)
        version, cmp = str(mv.version), None
        if champion is None:
            decision = FIRST
        else:
            cmp = compare(model_name, version, champion, cand.prepare_run_id, gate)
            decision = decide(cmp.bleu_candidate, cmp.bleu_champion, cmp.p_value, gate.p_threshold, gate.force)
        _record(client, model_name, version, champion, decision, cmp, run.info.run_id)
        _move_aliases(client, model_name, version, champion, decision)
    log.info("promote: %s version %s: %s", model_name, version, decision)
    return PromoteOutputs(model_name, version, champion, decision, cmp, run.info.run_id)


def run_rollback(model_name: str = DEFAULT_MODEL, *, experiment: str = "nmt",
                 tracking_uri: str | None = None) -> RollbackOutputs:
    exp_id = setup_tracking(resolve_tracking_uri(tracking_uri), experiment)
    client = MlflowClient()
    current = aliases(client, model_name)
    champion, previous = current.get(CHAMPION), current.get(PREVIOUS)
    if previous is None:
        raise ConfigError(f"{model_name} has no @{PREVIOUS} version to roll back to")
    if previous == champion:
        raise ConfigError(f"{model_name} version {previous} already is @{CHAMPION}; nothing to roll back")
    params = {"model_name": model_name, "from_version": champion or "none", "to_version": previous}
    with stage_run("rollback", experiment_id=exp_id, params=params, code=code_version()) as run:
        if champion is not None:
            client.set_model_version_tag(model_name, champion, "rollback.run_id", run.info.run_id)
            client.set_registered_model_alias(model_name, CHALLENGER, champion)
        client.set_registered_model_alias(model_name, CHAMPION, previous)
        client.delete_registered_model_alias(model_name, PREVIOUS)
    log.info("rollback: %s @%s %s -> %s", model_name, CHAMPION, champion, previous)
    return RollbackOutputs(model_name, champion, previous, run.info.run_id)


def describe(out: PromoteOutputs, gate: Gate) -> str:
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
                  f"p = {c.p_value:.4f} (paired bootstrap, {gate.n_resamples} resamples, seed {gate.seed}; "
                  f"threshold {gate.p_threshold})"]
    after = {FIRST: f"version {cand} is @{CHAMPION} (there was none: no test)",
             PROMOTED: f"version {cand} is @{CHAMPION}, version {champ} is @{PREVIOUS}",
             FORCED: f"version {cand} is @{CHAMPION} (forced past the gate), version {champ} is @{PREVIOUS}",
             REJECTED: f"version {cand} is @{CHALLENGER}, @{CHAMPION} stays version {champ}"}[out.decision]
    lines.append(f"decision: {out.decision}: {after}   (promotion run {out.run_id})")
    return "\n".join(lines)
