"""The one place that runs the stages: the table of stages in order, the tracking
:class:`Context` with its lazily created pipeline parent run, :func:`execute` (reuse a finished
identical run, or run the stage's body in a fresh one: the MLflow multistep example's cache) and
:func:`run_pipeline`; ``nmt <stage>`` / ``nmt run`` print what it ran.

Adding a stage is a row of :data:`STAGES`, its module (``run_<stage>(cfg, ctx, **upstream) ->
outputs`` with a ``run_id``) and, if it has settings of its own, their section in
``conf/config.yaml``: the README's "Add a stage". This module is record keeping
(:data:`BOOKKEEPING`): no stage's code version covers it, so a new row or an edit here retrains
nothing. It imports no stage, MLflow or the config loader at module level, so ``nmt --help``
reads the table at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nmt.components.evaluation.evalkey import EvalKey
from nmt.components.system.code_version import running_code_version
from nmt.components.system.errors import ConfigError
from nmt.components.tracking import names as N
from nmt.components.tracking.uri import stage_tags
from nmt.components.training import startup

if TYPE_CHECKING:  # annotations only
    from nmt.components.tracking.run import RunRecord
    from nmt.components.tracking.run import RunLog
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.config import PipelineConfig

log = logging.getLogger("nmt")
TRAIN_GROUPS = ("data", "model", "optim", "trainer", "evaluate", "profile", "tracking")


# -- the table --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One stage. ``run`` and ``settings`` are ``"module:name"``, imported only when needed
    (``nmt train`` never imports evaluate's figures)."""

    name: str
    run: str                          # run_<stage>(cfg, ctx, **{f"{n}_run_id": ...}) -> outputs with .run_id
    needs: tuple[str, ...]            # earlier stages it runs after, whose run ids it takes as <stage>_run_id=
    groups: tuple[str, ...]           # config groups and sections it reads: `nmt <stage> --help`
    help: str
    settings: str | None = None       # its own typed section of conf/config.yaml: cfg.stage_settings[name]
    # check(cfg): this stage's inputs that the config alone cannot vouch for (a folder it reads
    # or writes), answered before the first stage runs, not after the ones before it
    check: str | None = None

    def function(self) -> Callable[..., Any]:
        return resolve(self.run)

    def settings_class(self) -> type | None:
        return resolve(self.settings) if self.settings else None


def resolve(ref: str) -> Any:
    """``"module:name"`` -> that object, its module imported now."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


STAGES: tuple[Stage, ...] = (
    Stage("prepare", "nmt.pipeline.stages.prepare:run_prepare", (), ("data", "tracking"),
          "clean the corpus, train the subword tokenizer, write the tokenized splits"),
    Stage("train", "nmt.pipeline.stages.train:run_train", ("prepare",), TRAIN_GROUPS,
          "train the model (Lightning), keeping the best checkpoint by val/bleu",
          check="nmt.pipeline.stages.train:check"),
    Stage("evaluate", "nmt.pipeline.stages.evaluate:run_evaluate", ("prepare", "train"), TRAIN_GROUPS,
          "score the test splits with sacreBLEU, greedy and beam, with figures",
          check="nmt.pipeline.stages.evaluate:gold_set"),
    Stage("register", "nmt.pipeline.stages.register:run_register", ("prepare", "train", "evaluate"),
          (*TRAIN_GROUPS, "register"), "register the model; @champion if it is the first or the best"),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise ValueError(f"unknown stage {name!r}; valid: {', '.join(s.name for s in STAGES)}")


def upto(name: str) -> tuple[Stage, ...]:
    """The stages that run for ``nmt <name>``: it and what it needs, transitively, in table order."""
    wanted, todo = set(), [stage(name)]
    while todo:
        s = todo.pop()
        if s.name not in wanted:
            wanted.add(s.name)
            todo += [stage(n) for n in s.needs]
    return tuple(s for s in STAGES if s.name in wanted)


# -- one invocation's runs -----------------------------------------------------------------

@dataclass
class Context:
    """Tracking context of one ``nmt`` invocation, used as ``with ctx:``. The pipeline parent
    run is created the first time a stage actually runs (when every stage is reused, nothing
    new is logged), inside :meth:`RunStore.run`, and ends with the ``with`` block."""

    store: RunStore
    code: str                         # the command's code version (its parent run's tag); stages have their own
    parent_run_id: str | None = None
    owns_parent: bool = False
    reused: dict[str, str] = field(default_factory=dict)
    label: str = "pipeline"           # the parent run's name: what it ran, e.g. "gru de-en quick"
    _runs: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def experiment_id(self) -> str:
        return self.store.experiment_id

    @property
    def tracking_uri(self) -> str:
        return self.store.uri

    @classmethod
    def create(cls, cfg: PipelineConfig, parent_run_id: str | None = None,
               command: str = "nmt.pipeline.stages.runner") -> "Context":
        """``command``: the module that runs this invocation, whose code version tags its parent run."""
        from nmt.components.tracking.store import RunStore  # MLflow: only once a stage runs
        store = RunStore.from_config(cfg.tracking)
        store.recover_orphans()
        label = f"{cfg.model.label} {cfg.data.src_lang}-{cfg.data.tgt_lang} {cfg.profile}"
        return cls(store=store, code=running_code_version(command), parent_run_id=parent_run_id, label=label)

    def parent(self) -> str:
        if self.parent_run_id is None:
            tags = {N.TAG_PIPELINE: "true", N.TAG_CODE_VERSION: self.code}
            run = self._runs.enter_context(self.store.run(self.label, tags=tags))
            self._runs.push(self._log_reused)  # runs before the parent ends
            self.parent_run_id, self.owns_parent = run.run_id, True
            log.info("pipeline parent run %s", self.parent_run_id)
        return self.parent_run_id

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> bool:
        """End the parent run we created: FINISHED, or FAILED/KILLED by what left the block."""
        return self._runs.__exit__(*exc)

    def _log_reused(self, kind: type | None, *_: object) -> bool:
        """Record on the parent which finished runs were reused; an unreachable store fails a
        success, and is only reported while an error is on its way out."""
        try:
            self.store.log(self.parent_run_id, tags={f"reused.{k}": v for k, v in self.reused.items()})
        except Exception as err:  # noqa: BLE001 - store unreachable: a later command ends it
            if kind is None:
                raise
            log.warning("could not tag the pipeline run %s (%s)", self.parent_run_id, str(err).splitlines()[0][:120])
        return False


# Record keeping, not results: how runs are stored, named and found, and this runner. A stage's
# params and upstream run ids already key what it computed, so an edit here re-runs nothing.
BOOKKEEPING = ("nmt.components.tracking", "nmt.components.system.code_version", __name__)


def stage_code(body: Callable[[str], None], ships: tuple[str, ...] = ()) -> str:
    """A stage's code version: the sources of the module holding its ``body`` and of every
    ``nmt`` module that one imports, at module level or in a function (``nmt.components.system.code_version``),
    plus the closures of ``ships``, modules its output carries without importing them; never
    :data:`BOOKKEEPING` nor what only it imports."""
    return running_code_version(body.__module__, *ships, outside=BOOKKEEPING)


def execute(stage: str, ctx: Context, cfg: PipelineConfig, params: Mapping[str, Any],
            body: Callable[[RunLog], None], ships: tuple[str, ...] = ()) -> RunRecord:
    """Reuse the newest FINISHED run with the same key (stage, params, :func:`stage_code`), or
    run ``body(run)`` inside a fresh stage run nested under the pipeline parent. Returns the
    finished run."""
    code, params = stage_code(body, ships), {k: str(v) for k, v in params.items()}
    found = None if cfg.force else ctx.store.find_reusable(stage, params, code)
    if found is not None:
        log.info("%s: reusing finished run %s", stage, found.id)
        ctx.reused[stage] = found.id
        return found
    with ctx.store.run(stage, parent=ctx.parent(), tags=stage_tags(stage, params, code), params=params) as run:
        log.info("%s: run %s", stage, run.run_id)
        body(run)
    return ctx.store.get_run(run.run_id)


# -- the pipeline and its commands ------------------------------------------------------------

@dataclass(frozen=True)
class PipelineOutputs:
    """Each stage's outputs by name, in the order they ran (each has a ``run_id``)."""

    parent_run_id: str | None
    store: RunStore
    runs: Mapping[str, Any] = field(default_factory=dict)
    reused: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:  # out.train, out.evaluate: None where it did not run
        if name == "runs" or name not in {s.name for s in STAGES}:  # "runs": not yet set (copies)
            raise AttributeError(name)
        return self.runs.get(name)


def run_pipeline(cfg: PipelineConfig, until: str = "register", parent_run_id: str | None = None) -> PipelineOutputs:
    """Run the stages up to and including ``until``; each reuses a finished identical run.
    The pipeline parent run ends FAILED (or KILLED) if any stage does."""
    stages = upto(until)
    given = cfg.evaluate.train_run_id
    if given and until != "evaluate":
        raise ConfigError(f"evaluate.train_run_id is for `nmt evaluate`, not the stages up to {until}; to register "
                          f"a trained model: nmt promote --run {given}")
    startup.begin_pipeline()
    check_stages(cfg, until)
    startup.mark("stage checks")  # imports the checked stages' modules (train's: Lightning): its own phase
    ctx = Context.create(cfg, parent_run_id)
    startup.mark("tracking store")  # the store, the experiment, orphaned runs
    out: dict[str, Any] = {}
    with ctx:
        if given:  # evaluate a model trained earlier, on the data its own prepare run made
            # named, as the table names them: stages import this module, never the reverse
            train, prepare_run_id = resolve("nmt.pipeline.stages.train:existing_train")(ctx.store, given)
            prepared = resolve("nmt.pipeline.stages.prepare:prepare_outputs")(ctx.store.get_run(prepare_run_id))
            out["prepare"], out["train"] = prepared, train
        for s in stages:
            if s.name not in out:
                out[s.name] = s.function()(cfg, ctx, **{f"{n}_run_id": out[n].run_id for n in s.needs})
                startup.mark(s.name)
    return PipelineOutputs(ctx.parent_run_id if ctx.owns_parent else None, ctx.store, out, tuple(ctx.reused))


def check_stages(cfg: PipelineConfig, until: str = "register") -> None:
    """The checks of the stages up to ``until`` (a row's ``check``): a later stage's bad folder
    is answered before any stage runs, not after the stages before it ran."""
    for s in upto(until):
        if s.check:
            resolve(s.check)(cfg)


def last_stage(command: str) -> str:
    """``nmt <stage>`` runs up to that stage; ``nmt run``, the whole table."""
    return STAGES[-1].name if command == "run" else command


def _adopt_mlflow_run_env() -> str | None:
    """Under ``mlflow run``, MLFLOW_RUN_ID names a run made for us: it becomes the parent
    (left to ``mlflow run`` to end), and is removed so our own start_run calls aren't hijacked."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return os.environ.pop("MLFLOW_RUN_ID", None)


def cmd_stage(args: argparse.Namespace, cfg: PipelineConfig, _pinned: bool) -> int:
    """``nmt <stage>`` and ``nmt run``: the stages, then each run id, the scores, the version."""
    startup.mark("imports")
    command = args.command
    out = run_pipeline(cfg, until=last_stage(command), parent_run_id=_adopt_mlflow_run_env())
    for stage, o in out.runs.items():
        print(f"{stage:9s} run {o.run_id}{'  (reused)' if stage in out.reused else ''}")
    if out.evaluate:
        for k, v in sorted(out.evaluate.scores.items()):
            if EvalKey.is_key(k):
                print(f"  {k} = {v:.2f}")
    if out.register:
        r = out.register
        print(f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    if command == "run" and cfg.demo_sentences > 0:
        show_champion(cfg, out.store, out.prepare.run_id, cfg.demo_sentences)
    return 0


def show_champion(cfg: PipelineConfig, store: RunStore, prepare_run_id: str, n: int) -> None:
    """Translate the first ``n`` sentences of the primary test split with the registry's champion."""
    from nmt.pipeline.promotion.loading import load_translator
    from nmt.pipeline.upstream import test_split

    sources, refs = test_split(store, prepare_run_id, cfg.data.primary, n)
    uri = f"models:/{cfg.model_name}@{cfg.register.alias}"
    hyps = load_translator(store, uri).predict(sources)
    print(f"\nTranslations by {uri}:")
    for src, ref, hyp in zip(sources, refs, hyps):
        print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}\n")
