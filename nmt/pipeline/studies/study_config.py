"""Typed configs of the studies made of many runs: sweeps (Ray Tune) and journeys (arms x seeds).

Parsed as parts of :class:`nmt.pipeline.config.PipelineConfig`, which re-exports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from nmt.components.system.errors import ConfigError
from nmt.components.system.typed_config import require


@dataclass(frozen=True)
class SchedulerConfig:
    type: Literal["asha", "fifo"]
    time_attr: Literal["validations", "tokens"]  # what ASHA's rungs count: reports, or target tokens trained
    grace_period: int                 # that many (validations, or tokens) before ASHA may stop a trial
    reduction_factor: float

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("grace_period", self.grace_period >= 1, ">= 1"),
                ("reduction_factor", self.reduction_factor > 1, "> 1"))


@dataclass(frozen=True)
class SearchConfig:
    algorithm: Literal["random", "optuna"]
    seed: int

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("seed", 0 <= self.seed < 2**32, "in 0..2^32-1"))


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float                        # per trial; also the trial's torch thread count
    gpu: float                        # fractional: 0.25 packs four trials per GPU (at least 1/16)
    trials_per_gpu: int | None        # the same said the other way: gpu = 1 / trials_per_gpu
    trial_memory_mb: float | None     # measured peak (a run's gpu/peak_mem_mb); None: estimated

    @property
    def per_trial_gpu(self) -> float:
        return 1.0 / self.trials_per_gpu if self.trials_per_gpu else self.gpu

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("trial_memory_mb", self.trial_memory_mb is None or self.trial_memory_mb > 0, "> 0 or null"))
        if self.trials_per_gpu is not None:
            if not 1 <= self.trials_per_gpu <= 16:
                raise ConfigError(f"{prefix}.trials_per_gpu must be 1..16, got {self.trials_per_gpu}")
            if self.gpu and abs(self.gpu - 1 / self.trials_per_gpu) > 1e-9:
                raise ConfigError(f"{prefix}: gpu={self.gpu} and trials_per_gpu={self.trials_per_gpu} disagree; "
                                  "set one of them")
        g = self.per_trial_gpu
        if 0 < g < 1 / 16 - 1e-9 or (g > 1 and g != int(g)):
            raise ConfigError(f"{prefix}.gpu={g:g}: a trial takes a fraction of one GPU down to 1/16 "
                              "(0.0625), or whole GPUs")


FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+-]{0,99}")


def check_folder_name(key: str, value: str) -> None:
    """A name that becomes one folder under a shared root: one plain path component, never
    empty, ``.``, ``..`` or anything with a ``/`` that would reach outside it."""
    if not FOLDER_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"{key}={value!r} is not a usable folder name: use letters, digits and . _ - = + "
                          f"(no '/', no '..', not empty), e.g. {key}=my-sweep")


@dataclass(frozen=True)
class SweepConfig:
    name: str
    num_samples: int
    max_concurrent_trials: int
    scheduler: SchedulerConfig
    search: SearchConfig
    resources: ResourcesConfig
    ray_address: str | None           # None: a local Ray for this sweep
    storage_path: str | None          # None: <home>/.nmt/ray
    max_failures: int
    resume: bool
    space: dict[str, Any]

    def validate(self, prefix: str) -> None:
        from nmt.pipeline.studies.sweep.space import parse_space
        check_folder_name(f"{prefix}.name", self.name)
        require(prefix, self, *((key, getattr(self, key) >= low, f">= {low}")
                                for key, low in (("num_samples", 1), ("max_concurrent_trials", 1), ("max_failures", 0))))
        self.resources.validate(f"{prefix}.resources")
        if self.resources.cpu <= 0 or self.resources.gpu < 0:
            raise ConfigError(f"{prefix}.resources: cpu must be > 0 and gpu >= 0, got "
                              f"cpu={self.resources.cpu} gpu={self.resources.gpu}")
        parse_space(self.space)


@dataclass(frozen=True)
class JourneyConfig:
    """``nmt journey``: every arm (a list of overrides: an architecture, an ablation rung) x every
    seed at one budget, under one parent run; compared by nmt.components.evaluation.significance."""
    name: str
    arms: dict[str, Any]              # arm name -> overrides; the first is the baseline
    pairs: Any                        # all | baseline (each arm against the first) | [[arm, arm], ...]
    seeds: tuple[int, ...]
    budget_minutes: float | None      # each run's wall-clock budget (trainer.max_minutes)
    # each run's budget in target tokens (trainer.max_target_tokens): the same work however busy
    # the machine; with budget_minutes too, whichever comes first
    budget_tokens: int | None
    # own: each arm trains at its architecture's tuned recipe (conf/recipe/<model>.yaml); shared:
    # every arm at conf/recipe/shared.yaml, to show how much the recipe moves the verdict
    recipe: Literal["own", "shared"]
    split: str                        # a test split by name; primary: data.primary_test_split
    resamples: int
    seed: int                         # the bootstrap's, as SACREBLEU_SEED
    alpha: float                      # family-wise, after Holm's adjustment

    def validate(self, prefix: str) -> None:
        bad = [k for k, v in self.arms.items() if not isinstance(v, list) or not all(isinstance(o, str) for o in v)]
        require(prefix, self,
                ("arms", len(self.arms) >= 2 and not bad, f"two or more, each a list of overrides {bad[:1]}"),
                ("seeds", len(set(self.seeds)) == len(self.seeds) >= 1, "distinct, at least one"),
                ("budget_minutes", self.budget_minutes is None or self.budget_minutes > 0, "> 0 or null"),
                ("budget_tokens", self.budget_tokens is None or self.budget_tokens > 0, "> 0 or null"),
                ("split", bool(self.split), "a test split's name, or primary"),
                ("resamples", self.resamples >= 1, ">= 1"), ("seed", self.seed >= 1, ">= 1"),
                ("alpha", 0 < self.alpha < 1, "in (0, 1)"))
