"""``nmt``: a thin command line over the stage functions.

Every command is one row of :func:`commands`: ``nmt --help`` lists them, ``nmt <command>
--help`` gives its flags and the config groups it reads. Every stage command runs the stages
before it too, reusing finished identical runs; every command reads the same composed config
(``conf/``), set by ``group=option`` and ``key=value`` overrides, and the flags of translate,
promote, rollback and compare are shorthands for its keys (``--beam 1`` = ``promote.beam_size=1``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.components.tracking import names as N
from nmt.components.training import startup
from nmt.components.system import progress
from nmt.components.system.errors import NmtError
from nmt.components.system.paths import CONF_DIR, RedactingFilter, check_input, check_output, other_checkout, redact
from nmt.components.system.procs import Terminated, sigterm_interrupts
from nmt.pipeline.override_line import check_words, expand_overrides, override_value
from nmt.pipeline.stages import runner
from nmt.pipeline.stages.runner import TRAIN_GROUPS, Stage

log = logging.getLogger("nmt")


@dataclass(frozen=True)
class Command:
    """One ``nmt`` command: what runs it (``"module:function"`` under ``nmt.pipeline``, imported only after its config
    was read: ``function(args, cfg, pinned) -> exit status``), its help line, the config groups
    (or sections of ``conf/config.yaml``) it reads, an example of its overrides, its own
    arguments, and the key its ``--beam`` sets."""

    handler: str
    help: str
    groups: tuple[str, ...]
    example: str = "Hydra overrides, e.g. data.src_lang=fr"
    flags: Callable[[argparse.ArgumentParser], None] | None = None
    beam_key: str = "promote.beam_size"


def _compare_flags(cp: argparse.ArgumentParser) -> None:
    cp.add_argument("--sweep-run", default=None, help="only the evaluate runs under this sweep parent run")
    cp.add_argument("--runs", nargs="+", default=None, help="these evaluate run ids")
    cp.add_argument("--out", type=Path, default=None, help="output folder (default <home>/reports/compare-<time>)")
    cp.add_argument("--experiment", help="MLflow experiment (tracking.experiment)")
    cp.add_argument("--tracking-uri", help="tracking.uri (default $MLFLOW_TRACKING_URI or the checkout's store)")


def _translate_flags(tp: argparse.ArgumentParser) -> None:
    tp.add_argument("--model", help="model URI (default models:/<model name>@<register.alias>)")
    tp.add_argument("--file", help="input file, one sentence per line (default stdin)")
    tp.add_argument("--beam", type=int, help="beam size, 1 = greedy (evaluate.beam_size)")
    tp.add_argument("--align", action="store_true",
                    help="print each translation with its word alignment: translation ||| i-j ... (Pharaoh, 0-indexed)")
    _model_flags(tp)


def _promote_flags(pp: argparse.ArgumentParser) -> None:
    which = pp.add_mutually_exclusive_group()
    which.add_argument("--version", help="this registered version (default: the best run by best/val_bleu)")
    which.add_argument("--run", help="this train or sweep trial run (registered if it is not yet)")
    which.add_argument("--sweep-run", help="the best trial run under this sweep parent run")
    pp.add_argument("--split", help="test split both models translate (promote.split)")
    pp.add_argument("--limit", type=int, help="only the first N sentences of the split (promote.limit)")
    pp.add_argument("--beam", type=int, help="beam size for both models, 1 = greedy (promote.beam_size)")
    pp.add_argument("--resamples", type=int, help="paired bootstrap resamples (promote.resamples)")
    pp.add_argument("--seed", type=int, help="bootstrap seed, as SACREBLEU_SEED (promote.seed)")
    pp.add_argument("--p-threshold", type=float, help="promote only when p < this (promote.p_threshold)")
    pp.add_argument("--force", action="store_true", help="promote even when the gate says no (promote.force)")
    _model_flags(pp)


def _align_flags(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--src", required=True, help="source sentences, one a line")
    ap.add_argument("--tgt", required=True, help="their translations (references), one a line")
    ap.add_argument("--layer", help="Transformer: mean | penultimate (default, Garg et al. 2019) | N (1-based)")
    ap.add_argument("--head", type=int, help="Transformer: head H (1-based) of --layer N (default: heads averaged)")
    ap.add_argument("--encoding", default="utf-8", help="of --src, --tgt and --gold (the RWTH gold set: latin-1)")
    ap.add_argument("--gold", help="gold links, 1-indexed i-j sure / ipj possible: print and log every readout's AER")
    ap.add_argument("--out", help="write the Pharaoh lines here (default stdout)")
    ap.add_argument("--model", help="model URI (default models:/<model name>@<register.alias>)")
    _model_flags(ap)


def _model_flags(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--model-name", help="registered model (register.model_name; default nmt-<src>-<tgt> of the "
                    "newest train run, or of data.src_lang/data.tgt_lang when given)")
    sp.add_argument("--experiment", help="MLflow experiment (tracking.experiment)")
    sp.add_argument("--tracking-uri", help="tracking.uri (default $MLFLOW_TRACKING_URI or the checkout's store)")


def _action_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("action", choices=["up", "down", "status"])


STAGE_EXAMPLE = "Hydra overrides, e.g. model=attention trainer.max_epochs=3"
TOOLS: dict[str, Command] = {  # the commands besides the stages'
    "sweep": Command("studies.sweep:cmd_sweep", "hyperparameter sweep on Ray Tune (conf/sweep/<name>.yaml)",
                     (*TRAIN_GROUPS, "sweep", "register"), "e.g. sweep=rnn sweep.num_samples=8 sweep.resume=true"),
    "journey": Command("studies.journey:cmd_journey",
                       "each architecture (or ablation rung) x k seeds, with intervals and p-values",
                       (*TRAIN_GROUPS, "journey"),
                       "e.g. journey=ablation journey.seeds=[1,2,3,4] journey.budget_minutes=5"),
    "compare": Command("studies.compare:cmd_compare", "one report (Markdown + HTML) comparing evaluated models",
                       ("tracking",), "Hydra overrides", _compare_flags),
    "translate": Command("promotion.translate:cmd_translate",
                         "translate sentences from a file or stdin with a registered model",
                         ("data", "evaluate", "register", "tracking"), flags=_translate_flags,
                         beam_key="evaluate.beam_size"),
    "align": Command("promotion.translate:cmd_align",
                     "word alignments of given sentence pairs (forced decoding), Pharaoh i-j; AER with --gold",
                     ("data", "register", "tracking"), flags=_align_flags),
    "promote": Command("promotion.promote:cmd_promote", "move @champion to a better model, through a significance gate",
                       ("data", "promote", "register", "tracking"), flags=_promote_flags),
    "rollback": Command("promotion.promote:cmd_rollback",
                        "move @champion back to @previous (the rolled-back one: @challenger)",
                        ("data", "register", "tracking"), flags=_model_flags),
    "server": Command("services.server:cmd_server", "the MLflow tracking server (PostgreSQL store, proxied artifacts)",
                      ("server",), "e.g. server.port=5001", _action_flag),
    "cluster": Command("services.cluster:cmd_cluster", "a Ray head and worker nodes on this machine", ("cluster",),
                       "e.g. cluster.port=6391", _action_flag),
}


def commands() -> dict[str, Command]:
    """Every ``nmt`` command: one per row of the stage table (each reads the groups of the
    stages it runs), ``run`` for all of them, then :data:`TOOLS`."""
    stages = runner.STAGES

    def reads(rows: tuple[Stage, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g for row in rows for g in row.groups))

    out = {s.name: Command("stages.runner:cmd_stage", f"{s.help} (after the stages before it, reused when finished)",
                           reads(stages[:i + 1]), STAGE_EXAMPLE) for i, s in enumerate(stages)}
    out["run"] = Command("stages.runner:cmd_stage", "run the whole pipeline: " + " -> ".join(s.name for s in stages),
                         reads(stages), STAGE_EXAMPLE)
    return {**out, **TOOLS}


def groups_text(groups: tuple[str, ...]) -> str:
    """``nmt <command> --help``'s list: each group with its options (``conf/<group>/*.yaml``), or
    a section of ``conf/config.yaml`` set by its keys."""
    lines = ["config groups (group=option, group.key=value):"]
    for group in groups:
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        lines.append(f"  {group:9s} " + (" | ".join(options) if options else f"keys {group}.* (conf/config.yaml)"))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    # no abbreviated flags: `--model` would silently be promote's `--model-name`
    p = argparse.ArgumentParser(prog="nmt", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    sub = p.add_subparsers(dest="command", required=True)
    for name, command in commands().items():
        sp = sub.add_parser(name, help=command.help, description=command.help, epilog=groups_text(command.groups),
                            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        if command.flags:
            command.flags(sp)
        sp.add_argument("-q", "--quiet", action="store_true",
                        help="no progress: neither bars (on a terminal) nor progress lines (in logs)")
        sp.add_argument("overrides", nargs="*", help=command.example)
        sp.add_argument("--overrides-line", default="", metavar="'K=V K=V'",
                        help="several overrides in one string, split by Hydra's grammar (MLproject's)")
        sp.set_defaults(handler=command.handler, groups=command.groups, beam_key=command.beam_key,
                        example=command.example)
    return p


# flag -> config key: the commands' flags are shorthands for keys of the one composed config
FLAG_KEYS = {"experiment": "tracking.experiment", "tracking_uri": "tracking.uri", "model_name": "register.model_name",
             "split": "promote.split", "limit": "promote.limit", "beam": "promote.beam_size",
             "resamples": "promote.resamples", "seed": "promote.seed", "p_threshold": "promote.p_threshold",
             "force": "promote.force"}
PAIR_KEYS = ("data.src_lang", "data.tgt_lang", "register.model_name")


def command_config(args: argparse.Namespace):
    """The composed config of a command: its overrides, then its flags on top.
    -> (config, pinned): pinned when the user chose the language pair or the model name."""
    from nmt.pipeline.config import load_config

    overrides = expand_overrides(args)
    keys = {**FLAG_KEYS, "beam": getattr(args, "beam_key", "promote.beam_size")}
    for flag, key in keys.items():
        value = getattr(args, flag, None)
        if value is None or value is False:
            continue
        overrides.append(f"{key}={override_value(value)}")  # the grammar's quoting: any text survives
    pinned = any(o.lstrip("+~").split("=")[0] in PAIR_KEYS for o in overrides)
    from nmt.components.tracking.uri import project_home
    cache = project_home() / ".nmt" / "configs"  # a repeated command line skips Hydra
    return load_config(overrides, groups=getattr(args, "groups", ()), cache=cache), pinned


INPUT_FLAGS = {"file": "a text file with one sentence per line, or pipe the sentences to stdin",
               "src": "a text file with one sentence per line", "tgt": "a text file with one sentence per line",
               "gold": "a file of links, one line per sentence pair"}


def read_command(args: argparse.Namespace):
    """The command's config, read before its handler is imported: a config error is answered
    before torch, MLflow or Ray load. -> (handler, config, pinned)"""
    for flag, what in INPUT_FLAGS.items():  # input files, checked before anything is read or loaded
        if getattr(args, flag, None):
            check_input(f"--{flag}", getattr(args, flag), what)
    check_words(args)
    if getattr(args, "out", None):  # compare's folder (made if missing), align's file
        check_output("--out", args.out, folder=args.command == "compare")
    if getattr(args, "model", None):  # translate's and align's --model: its form, before any import
        from nmt.pipeline.promotion.translate import check_model_uri
        check_model_uri(args.model)
    cfg, pinned = command_config(args)
    startup.mark("config")
    return runner.resolve(f"nmt.pipeline.{args.handler}"), cfg, pinned


def command_uri(args: argparse.Namespace) -> str:
    """The tracking URI this command used: ``--tracking-uri``, else a ``tracking.uri=`` override,
    else what the config resolves (``$MLFLOW_TRACKING_URI``, else the embedded store)."""
    from nmt.components.tracking.uri import resolve_tracking_uri
    configured = getattr(args, "tracking_uri", None)
    for o in expand_overrides(args):
        if o.lstrip("+").startswith("tracking.uri="):
            configured = configured or o.split("=", 1)[1].strip("'\"") or None
    return resolve_tracking_uri(configured)


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def _process_settings() -> None:
    """MLflow's client and the log lines, for every command; no advice that does not apply."""
    # our signatures are list[str] -> list[str]; the hint is about pandas integer columns
    warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")  # Lightning vs torch
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropLitLoggerTip())
    # MLflow's client retries an unreachable server for ~4 minutes per call; keep each call
    # short and let our writers retry with their own deadline (tracking.outage_deadline_s)
    for var, value in (("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false"), ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3"),
                       ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")):
        os.environ.setdefault(var, value)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # no user:password@ of a URI in any log line
        handler.addFilter(RedactingFilter())


def main(argv: Sequence[str] | None = None) -> int:
    startup.reset()
    _process_settings()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if (other := other_checkout()) is not None:  # what runs is the code the results will be tagged with
        log.warning("this folder is the checkout %s, but nmt runs the code of %s: set PYTHONPATH=%s "
                    "(or install this checkout's own venv) to run it", other, CONF_DIR.parent, other)
    if progress.choose(args.quiet) != progress.BARS:  # datasets' "Saving the dataset" bars, 5 per prepare
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    before = os.environ.get(N.ENV_COMMAND)
    os.environ[N.ENV_COMMAND] = redact(shlex.join(["nmt", *argv]))  # what registered versions say made them
    try:
        with sigterm_interrupts():  # kill or timeout: the runs end KILLED, not RUNNING
            handler, cfg, pinned = read_command(args)
            return handler(args, cfg, pinned)
    except NmtError as err:  # config, data and service errors: one line, no traceback
        print(f"nmt: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except Exception as err:
        from nmt.components.tracking.login import refusal_line  # here: `nmt --help` does not wait for MLflow
        message = refusal_line(err, lambda: command_uri(args))
        if message is None and isinstance(err, OSError) and err.filename:  # a path the command read or wrote
            message = f"{err.filename}: {err.strerror or type(err).__name__}; check the path and its permissions"
        if message is None:
            raise
        print(f"nmt: error: {redact(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"nmt: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130  # 128 + the signal, as a shell reports it
    finally:  # main() called again in one process (tests, notebooks) names its own command
        progress.reset()
        if before is None:
            os.environ.pop(N.ENV_COMMAND, None)
        else:
            os.environ[N.ENV_COMMAND] = before


if __name__ == "__main__":
    sys.exit(main())
