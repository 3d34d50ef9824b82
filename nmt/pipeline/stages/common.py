"""What every stage shares: the tracking context, a lazily created pipeline parent run,
and :func:`execute`, which reuses a finished identical run or runs the stage's body."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nmt.components.tracking import names as N
from nmt.components.system.code_version import running_code_version
from nmt.components.tracking.runlog import RunLog
from nmt.components.tracking.record import RunRecord
from nmt.components.tracking.store import RunStore

if TYPE_CHECKING:  # annotations only: a stage's code version leaves out the config loader's modules
    from nmt.pipeline.config import PipelineConfig

log = logging.getLogger("nmt")


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


def execute(stage: str, ctx: Context, cfg: PipelineConfig, params: Mapping[str, str],
            body: Callable[[RunLog], None], ships: tuple[str, ...] = ()) -> RunRecord:
    """Reuse the newest FINISHED run with the same key (stage, params, :func:`stage_code`), or
    run ``body(run)`` inside a fresh stage run nested under the pipeline parent. Returns the
    finished run."""
    run, reused = ctx.store.reuse_or_run(stage, params, stage_code(body, ships), body, parent=ctx.parent,
                                         force=cfg.force)
    if reused:
        log.info("%s: reusing finished run %s", stage, run.id)
        ctx.reused[stage] = run.id
    return run
