"""The pipeline's stages, in order: the one table that ``run_pipeline`` runs and ``nmt``'s stage
commands are made from.

Adding a stage is a row here, its module (``run_<stage>(cfg, ctx, **upstream) -> outputs`` with
a ``run_id``) and, if it has settings of its own, their section in ``conf/config.yaml``: the
README's "Add a stage". No stage imports this module, so adding a row changes no stage's code
version (nothing retrains), and it imports no stage, so ``nmt --help`` reads it at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TRAIN_GROUPS = ("data", "model", "optim", "trainer", "evaluate", "profile", "tracking")


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
          "train the model (Lightning), keeping the best checkpoint by val/bleu"),
    Stage("evaluate", "nmt.pipeline.stages.evaluate:run_evaluate", ("prepare", "train"), TRAIN_GROUPS,
          "score the test splits with sacreBLEU, greedy and beam, with figures"),
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
