"""Typed configs for every stage, parsed from the Hydra composition in ``conf/``.

Hydra rejects unknown override keys (struct mode) and unknown group choices (listing the
available ones); :func:`nmt.components.system.typed_config.parse` rejects unknown keys and invalid choices
inside the YAML files themselves.
"""

from __future__ import annotations

import codecs
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nmt.components.system.typed_config import parse, require
from nmt.components.system.errors import ConfigError
from nmt.components.data.source_config import MULTI30K_TESTS, DataConfig
from nmt.components.evaluation.evalkey import PRIMARY, resolve_split
from nmt.components.models.arch_configs import ArchConfig  # torch-free: checked before torch loads
from nmt.pipeline import compose
from nmt.pipeline.compose import ON_DEMAND


@dataclass(frozen=True)
class OptimConfig:
    lr: float
    schedule: Literal["constant", "inverse_sqrt"]
    warmup_steps: int                 # linear warmup, then constant or 1/sqrt(step) decay
    label_smoothing: float            # Szegedy et al. 2016; 0.1 in Vaswani et al. 2017
    cooldown: float                   # the budget's last fraction: the rate falls linearly to 0 (0: off)
    weight_decay: float
    betas: tuple[float, ...]

    def validate(self, prefix: str) -> None:
        require(prefix, self, ("lr", self.lr >= 0, ">= 0 (0: the weights stay as they are)"),
                ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
                ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
                ("cooldown", 0 <= self.cooldown <= 1, "in [0, 1] (a fraction of the training budget; 0: off)"),
                ("weight_decay", self.weight_decay >= 0, ">= 0"),
                ("betas", len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "two values in [0, 1)"))


@dataclass(frozen=True)
class RecipeConfig:
    """Where a training recipe came from (``conf/recipe/<arch>.yaml``, which also sets the
    optim.*, model.dropout and trainer.* values it names): the sweep that tuned it, at what
    budget, and what its winner reached there, so a run below it can be flagged."""
    name: str                         # the architecture it was tuned for, or shared
    tuned_by: str                     # the sweep (command, run id) that found it, or why untuned
    budget_tokens: int | None         # target tokens each tuning trial trained
    trials: int | None                # how many configurations the sweep tried
    reference_val_bleu: float | None  # the winner's val/bleu at budget_tokens

    def validate(self, prefix: str) -> None:
        if (self.budget_tokens is None) != (self.reference_val_bleu is None):
            raise ConfigError(f"{prefix}: budget_tokens and reference_val_bleu go together (both or neither)")


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int
    max_minutes: float | None         # wall-clock cap (Lightning max_time)
    max_steps: int
    max_target_tokens: int | None     # stop once train/tokens_seen reaches it: equal work under any load
    limit_train_batches: float
    accelerator: Literal["auto", "cpu", "gpu"]
    devices: int
    # auto: bf16-mixed where bf16 is native (AMX or AVX512-BF16 CPUs, Ampere+ GPUs), else
    # 16-mixed on a GPU and 32 on a CPU (why: nmt.components.training.devices.native_bf16)
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"]
    batch_tokens: int                 # token budget per batch (longest side x batch size)
    grad_clip: float
    patience: int                     # early stopping on val/bleu
    val_bleu_limit: int               # val sentences decoded for val/bleu at each validation
    # Validation, and with it checkpoints, early stopping and sweep reports, also every N
    # optimizer steps and/or every M minutes, not only at epoch ends: an epoch of WMT14 on
    # 2 cores is ~6 hours. None: epoch ends only.
    val_every_steps: int | None
    val_every_minutes: float | None
    accumulate_grad_batches: int      # one optimizer step per k batches: effective batch k x batch_tokens
    batch_log: str | None             # a JSONL file: each training batch's epoch, step and pair ids (audits)
    seed: int
    log_every_n_steps: int
    num_threads: int | None           # torch intra-op threads; None leaves torch's default
    keep_freed_memory: bool           # CPU: glibc's mmap of large blocks off (nmt.components.training.devices)
    average_checkpoints: int          # > 1: the mean of k epoch checkpoints, kept if it validates better
    average_of: Literal["last", "best"]  # the last k epochs, or the k best by val/bleu

    def validate(self, prefix: str) -> None:
        if self.max_epochs == -1 and not self.max_minutes and self.max_steps == -1 and not self.max_target_tokens:
            raise ConfigError(f"{prefix}.max_epochs=-1 would train for ever: set {prefix}.max_minutes, "
                              f"{prefix}.max_steps or {prefix}.max_target_tokens too, or a number of epochs")
        if self.max_epochs < 1 and self.max_epochs != -1:
            raise ConfigError(f"{prefix}.max_epochs must be >= 1 (or -1 with a time or step limit), "
                              f"got {self.max_epochs}")
        positive = ("val_every_steps", "val_every_minutes", "accumulate_grad_batches", "max_target_tokens",
                    "max_minutes", "num_threads")
        require(prefix, self, *((k, getattr(self, k) is None or getattr(self, k) > 0, "> 0 (or null where allowed)")
                                for k in positive),
                ("max_steps", self.max_steps == -1 or self.max_steps >= 1, ">= 1, or -1 (no limit)"),
                ("limit_train_batches", self.limit_train_batches > 0, "> 0 (a fraction of an epoch, or batches)"),
                ("devices", self.devices >= 1, ">= 1"), ("batch_tokens", self.batch_tokens >= 1, ">= 1"),
                ("grad_clip", self.grad_clip >= 0, ">= 0 (0: no clipping)"), ("patience", self.patience >= 0, ">= 0"),
                ("val_bleu_limit", self.val_bleu_limit >= 1, ">= 1"), ("seed", 0 <= self.seed < 2**32, "in 0..2^32-1"),
                ("log_every_n_steps", self.log_every_n_steps >= 1, ">= 1"),
                ("average_checkpoints", self.average_checkpoints >= 0, ">= 0 (0 or 1: no averaging)"))


@dataclass(frozen=True)
class EvaluateConfig:
    # test splits by name; "all": every test split of the source (a Multi30k pair without one,
    # cs for 2017, skips it); "primary": data.primary_test_split
    splits: tuple[str, ...]
    beam_size: int                    # 1 = greedy only
    length_penalty: float             # GNMT alpha (Wu et al. 2016)
    max_len_ratio: float
    num_samples: int                  # sample translations logged as a table
    attention_samples: int            # test sentences drawn as attention heatmaps
    train_run_id: str | None          # `nmt evaluate` of this finished train run (its own prepare run)
    bleu_tokenize: str                # auto (by data.tgt_lang) or a sacreBLEU tokenizer: zh, 13a, char, ...
    # BLEU under papers' conventions too, beside the standard score (scoring.paper_bleu):
    # moses_lc (lowercased Moses tokens: Wu et al. 2021, bentrevett), lc (sacreBLEU lowercased)
    paper_bleu: tuple[Literal["moses_lc", "lc"], ...]
    alignment_gold: str | None        # a gold set's folder: AER per readout (evaluation.goldset); None: none
    alignment_encoding: str           # its text encoding (RWTH: latin-1)

    def validate(self, prefix: str) -> None:
        from nmt.components.serving.bounds import ParamError, parse_params  # torch-free
        try:  # the decoding options' one set of bounds: translate's, the REST endpoint's, evaluate's
            parse_params({"beam_size": self.beam_size, "max_len_ratio": self.max_len_ratio,
                          "length_penalty": self.length_penalty})
        except ParamError as err:
            raise ConfigError(f"{prefix}.{err.message.removeprefix('params.')}") from None
        require(prefix, self, ("num_samples", self.num_samples >= 0, ">= 0"),
                ("attention_samples", self.attention_samples >= 0, ">= 0"))
        try:
            codecs.lookup(self.alignment_encoding)
        except LookupError:
            raise ConfigError(f"{prefix}.alignment_encoding: unknown {self.alignment_encoding!r}; e.g. utf-8, latin-1") from None
        if self.bleu_tokenize != "auto":  # auto needs no check: no sacreBLEU import for every command
            from nmt.components.evaluation.scoring import check_tokenize
            check_tokenize(self.bleu_tokenize, f"{prefix}.bleu_tokenize")

    def metric(self, data: DataConfig):
        """How this run scores its target language (``nmt.components.evaluation.scoring``)."""
        from nmt.components.evaluation.scoring import choose_metric
        return choose_metric(data.tgt_lang, self.bleu_tokenize)

    def resolve(self, data: DataConfig) -> tuple[str, ...]:
        """The split names to score, the primary one first; ConfigError for one the source lacks."""
        known = (*data.test_splits(), "all", PRIMARY)
        lacking = MULTI30K_TESTS if data.kind == "multi30k" else ()  # a pair without one skips it
        bad = [s for s in self.splits if s not in known and s not in lacking]
        if not self.splits:  # an evaluate run with no score, which register would then rank
            raise ConfigError(f"evaluate.splits is empty; name at least one test split: {', '.join(known)}")
        if bad:
            raise ConfigError(f"evaluate.splits: unknown split {bad[0]!r}; valid: {', '.join(known)}")
        names = [data.primary] + [n for s in self.splits for n in
                                  (data.test_splits() if s == "all" else [resolve_split(s, data.primary)])]
        wanted = set(names[1:])
        return tuple(dict.fromkeys(n for n in names if n in wanted))


@dataclass(frozen=True)
class RegisterConfig:
    model_name: str | None            # default nmt-<src>-<tgt>
    alias: str

    def validate(self, prefix: str) -> None:
        from nmt.components.tracking.name_rules import check_alias, check_model_name
        check_alias(f"{prefix}.alias", self.alias)
        if self.model_name is not None:
            check_model_name(f"{prefix}.model_name", self.model_name)


@dataclass(frozen=True)
class PromoteConfig:
    """``nmt promote``'s gate: both models translate one test split, then a paired bootstrap."""
    split: str                        # a test split by name; primary: data.primary_test_split
    limit: int | None                 # the first N sentences of the split only
    beam_size: int                    # 1 = greedy
    resamples: int
    seed: int                         # as SACREBLEU_SEED
    p_threshold: float                # promote only a better model with p below this
    force: bool                       # promote even when the gate says no

    def validate(self, prefix: str) -> None:
        from nmt.components.serving.bounds import MAX_BEAM  # the registered model's own bound
        require(prefix, self, ("beam_size", 1 <= self.beam_size <= MAX_BEAM, f"in 1..{MAX_BEAM}"),
                ("limit", self.limit is None or self.limit >= 1, ">= 1 or null"), ("resamples", self.resamples >= 1, ">= 1"),
                ("seed", self.seed >= 1, ">= 1 (sacreBLEU reads 0 as unseeded)"),
                ("p_threshold", 0 < self.p_threshold <= 1, "in (0, 1]"))


@dataclass(frozen=True)
class TrackingConfig:
    uri: str | None                   # None -> $MLFLOW_TRACKING_URI -> sqlite in the checkout
    experiment: str
    outage_deadline_s: float          # a server down longer than this fails the run (checkpoint kept)
    buffer_rows: int                  # metric rows held while the server is down
    system_metrics: bool              # MLflow's system/* metrics (CPU, memory, GPU) on stage runs

    def validate(self, prefix: str) -> None:
        from nmt.components.tracking.name_rules import check_experiment
        check_experiment(f"{prefix}.experiment", self.experiment)
        if self.outage_deadline_s <= 0 or self.buffer_rows < 1:
            raise ConfigError(f"{prefix}: outage_deadline_s must be > 0 and buffer_rows >= 1")


@dataclass(frozen=True)
class PipelineConfig:
    data: DataConfig                  # parsed by the source `data.kind` names
    model: ArchConfig                 # parsed by the architecture `model.arch` names
    optim: OptimConfig
    recipe: RecipeConfig | None       # None: the optim/model/trainer values as composed, untracked
    trainer: TrainerConfig
    evaluate: EvaluateConfig
    register: RegisterConfig
    promote: PromoteConfig
    tracking: TrackingConfig
    # the on-demand sections (compose.ON_DEMAND), None unless composed: by the command that
    # reads them (`nmt sweep`: a SweepConfig) or by an override of one of their keys (sweep.*)
    sweep: Any                        # studies.study_config.SweepConfig | None
    journey: Any                      # studies.study_config.JourneyConfig | None
    server: Any                       # services.settings.ServerConfig | None
    cluster: Any                      # services.settings.ClusterConfig | None
    profile: str
    force: bool                       # re-run stages even when a finished match exists
    demo_sentences: int               # translations printed by `nmt run` at the end
    # the typed settings of each stage that brings its own (a stage table row's `settings`),
    # by stage name; set from its section of conf/config.yaml by load_config
    stage_settings: dict[str, Any]

    def validate(self, prefix: str) -> None:
        self.evaluate.resolve(self.data)  # evaluate.splits against the source's test splits
        if self.promote.split not in self.data.test_splits() and self.promote.split != PRIMARY:
            raise ConfigError(f"promote.split={self.promote.split!r}: not a test split of the data; valid: "
                              f"{PRIMARY}, {', '.join(self.data.test_splits())}")

    @property
    def model_name(self) -> str:
        return self.register.model_name or f"nmt-{self.data.src_lang}-{self.data.tgt_lang}"


def load_config(overrides: list[str] | tuple[str, ...] = (), groups: tuple[str, ...] = (),
                cache: Path | None = None) -> PipelineConfig:
    """The composed, parsed config. ``groups``: on-demand groups (:data:`ON_DEMAND`) to compose
    besides those an override names; the others are None. ``cache``: a folder where the
    composition is remembered (:func:`nmt.pipeline.compose.container`; the CLI's). Raises
    ConfigError naming the key."""
    container = compose.container(overrides, groups, cache)
    sections = {group: container.pop(group, None) for group in ON_DEMAND}
    container.setdefault("recipe", None)  # a group that may be null
    container["stage_settings"] = _stage_settings(container)
    cfg = parse(PipelineConfig, {**container, **dict.fromkeys(ON_DEMAND)})
    return dataclasses.replace(cfg, **{g: parse(section_class(g), v, prefix=g) for g, v in sections.items()
                                       if v is not None})


def section_class(group: str) -> type:
    """An on-demand section's class, imported only when that section was composed."""
    if group in ("sweep", "journey"):
        from nmt.pipeline.studies.study_config import JourneyConfig, SweepConfig
        return SweepConfig if group == "sweep" else JourneyConfig
    from nmt.pipeline.services.settings import ClusterConfig, ServerConfig
    return ServerConfig if group == "server" else ClusterConfig


def _stage_settings(container: dict) -> dict[str, Any]:
    """Each stage's own section, taken out of ``container`` and parsed by its settings class."""
    from nmt.pipeline.stages import runner
    out = {}
    for s in runner.STAGES:
        cls = s.settings_class()
        if cls is not None:
            if s.name not in container:
                raise ConfigError(f"missing config section {s.name}: (stage {s.name}'s settings); "
                                  "add it to conf/config.yaml")
            out[s.name] = parse(cls, container.pop(s.name), prefix=s.name)
    return out


__all__ = ["PipelineConfig", "load_config", "section_class"]
