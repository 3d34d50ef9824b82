"""``nmt``: a thin command line over the stage functions.

    nmt prepare|train|evaluate|register|run [hydra overrides...]
    nmt translate [--model URI] [--file F] [--beam N] [hydra overrides...]
    nmt promote [--version N | --run ID | --sweep-run ID] [--split S] [--limit N] [--force] [overrides...]
    nmt rollback [overrides...]
    nmt compare [--sweep-run ID | --runs ID...] [overrides...]
    nmt journey [journey=ablation] [overrides...]       architectures (or rungs) x seeds, intervals, p-values
    nmt server up|down|status [server.* overrides]     the shared MLflow tracking server
    nmt cluster up|down|status [cluster.* overrides]   a multi-node Ray cluster on this machine

Every stage command runs the stages before it too, reusing finished identical runs. Every
command reads the same composed config (``conf/``); the flags of translate, promote,
rollback and compare are shorthands for its keys (``--beam 1`` = ``promote.beam_size=1``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from nmt.components import startup
from nmt.components.errors import NmtError
from nmt.components.private import RedactingFilter, redact
from nmt.pipeline.commands import (add_model_command_parsers, cmd_compare, cmd_promote, cmd_rollback, cmd_translate,
                               expand_overrides)

log = logging.getLogger("nmt")
STAGE_COMMANDS = {"prepare": "prepare", "train": "train", "evaluate": "evaluate",
                  "register": "register", "run": "register"}


def _adopt_mlflow_run_env() -> str | None:
    """Under ``mlflow run``, MLFLOW_RUN_ID names a run made for us: it becomes the parent
    (left to ``mlflow run`` to end), and is removed so our own start_run calls aren't hijacked."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return os.environ.pop("MLFLOW_RUN_ID", None)


def cmd_stage(command: str, overrides: list[str]) -> int:
    from nmt.pipeline.config import load_config
    from nmt.pipeline.orchestrate import run_pipeline

    startup.mark("imports")
    cfg = load_config(overrides)
    startup.mark("config")
    out = run_pipeline(cfg, until=STAGE_COMMANDS[command], parent_run_id=_adopt_mlflow_run_env())
    for stage in ("prepare", "train", "evaluate", "register"):
        o = getattr(out, stage)
        if o is not None:
            print(f"{stage:9s} run {o.run_id}{'  (reused)' if stage in out.reused else ''}")
    if out.evaluate:
        for k, v in sorted(out.evaluate.scores.items()):
            if k.count("/") == 2:
                print(f"  {k} = {v:.2f}")
    if out.register:
        r = out.register
        print(f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    if command == "run" and cfg.demo_sentences > 0:
        show_champion(cfg, out.prepare.run_id, cfg.demo_sentences)
    return 0


def show_champion(cfg, prepare_run_id: str, n: int) -> None:
    """Translate the first ``n`` sentences of the primary test split with the registry's champion."""
    from nmt.pipeline.loading import load_translator
    from nmt.pipeline.upstream import test_split

    sources, refs = test_split(prepare_run_id, cfg.data.primary, n)
    uri = f"models:/{cfg.model_name}@{cfg.register.alias}"
    hyps = load_translator(uri).predict(sources)
    print(f"\nTranslations by {uri}:")
    for src, ref, hyp in zip(sources, refs, hyps):
        print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}\n")


def cmd_sweep(overrides: list[str]) -> int:
    from nmt.pipeline.config import load_config

    cfg = load_config(overrides)
    from nmt.pipeline.services.cluster import auth_env_for  # before Ray is imported
    auth_env_for(cfg.sweep.ray_address)
    from nmt.pipeline.sweep.driver import format_summary, run_sweep
    out = run_sweep(cfg, list(overrides))
    print("\n" + format_summary(out.rows))
    r = out.register
    print(f"\nbest trial run {out.best_trial_run_id}: val/bleu {out.best_val_bleu:.2f}; "
          f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    return 0


def cmd_journey(overrides: list[str]) -> int:
    from nmt.pipeline.config import load_config
    from nmt.pipeline.journey import run_journey
    from nmt.pipeline.journey_report import verdict

    cfg = load_config(overrides)
    out = run_journey(cfg, list(overrides))
    for arm, s in out.systems.items():
        print(f"{arm:20s} BLEU {s.bleu:6.2f}  95% [{s.mean - s.ci:.2f}, {s.mean + s.ci:.2f}]  seeds "
              + ", ".join(f"{b:.2f}" for b in s.seeds))
    for p in out.pairs:
        print(f"{p.b} - {p.a}: {p.delta:+.2f} +- {p.delta_ci:.2f}; " + verdict(p, cfg.journey.alpha).replace("**", ""))
    print(f"report: {out.report}\njourney run {out.parent_run_id} ({out.wall_s / 60:.1f} min)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nmt", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, until in STAGE_COMMANDS.items():
        sp = sub.add_parser(name, help=f"run the pipeline up to {until}" if name == "run" or name != until
                            else f"run the {name} stage (and the finished stages before it)")
        sp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=attention trainer.max_epochs=3")
    sw = sub.add_parser("sweep", help="hyperparameter sweep on Ray Tune (conf/sweep/<name>.yaml)")
    sw.add_argument("overrides", nargs="*", help="e.g. sweep=rnn sweep.num_samples=8 sweep.resume=true")
    jp = sub.add_parser("journey", help="each architecture (or ablation rung) x k seeds, with intervals and p-values")
    jp.add_argument("overrides", nargs="*", help="e.g. journey=ablation journey.seeds=[1,2,3,4] journey.budget_minutes=5")
    add_model_command_parsers(sub)
    for name, what in (("server", "the MLflow tracking server (PostgreSQL store, proxied artifacts)"),
                       ("cluster", "a Ray head and worker nodes on this machine")):
        sp = sub.add_parser(name, help=what)
        sp.add_argument("action", choices=["up", "down", "status"])
        sp.add_argument("overrides", nargs="*", help=f"e.g. {name}.port=5001")
    return p


def _store_error(err: Exception) -> str | None:
    """A tracking server's refusal, in one line: what was refused and what to do."""
    from mlflow.exceptions import MlflowException

    if not isinstance(err, MlflowException):
        return None
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else err.error_code
    uri = os.environ.get("MLFLOW_TRACKING_URI", "the tracking store")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if err.error_code == "PERMISSION_DENIED":
        return (f"{uri} refused this for user {user!r} (HTTP 403: {first}); ask the server's admin for "
                "EDIT (runs) or MANAGE (model registry) permission")
    if err.error_code == "UNAUTHENTICATED":
        return (f"{uri} refused the credentials (HTTP 401); set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD")
    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
        return f"{first}; check the name, version or run id against {uri}"
    return None


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def quiet() -> None:
    """What a user should not have to read: advice that does not apply to these runs."""
    # our signatures are list[str] -> list[str]; the hint is about pandas integer columns
    warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")  # Lightning vs torch
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropLitLoggerTip())


def main(argv: Sequence[str] | None = None) -> int:
    startup.reset()
    quiet()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # "Saving the dataset" bars, 5 per prepare
    # MLflow's client retries an unreachable server for ~4 minutes per call; keep each call
    # short and let our writers retry with their own deadline (tracking.outage_deadline_s)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # no user:password@ of a URI in any log line
        handler.addFilter(RedactingFilter())
    args = build_parser().parse_args(argv)
    try:
        if args.command in STAGE_COMMANDS:
            return cmd_stage(args.command, expand_overrides(args.overrides))
        if args.command == "sweep":
            return cmd_sweep(expand_overrides(args.overrides))
        if args.command == "journey":
            return cmd_journey(expand_overrides(args.overrides))
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "translate":
            return cmd_translate(args)
        if args.command == "promote":
            return cmd_promote(args)
        if args.command == "rollback":
            return cmd_rollback(args)
        if args.command == "server":
            from nmt.pipeline.services.commands import cmd_server
            return cmd_server(args.action, expand_overrides(args.overrides))
        if args.command == "cluster":
            from nmt.pipeline.services.commands import cmd_cluster
            return cmd_cluster(args.action, expand_overrides(args.overrides))
    except NmtError as err:  # config, data and service errors: one line, no traceback
        print(f"nmt: error: {redact(str(err))}", file=sys.stderr)
        return 2
    except Exception as err:
        message = _store_error(err)
        if message is None:
            raise
        print(f"nmt: error: {redact(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"nmt: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
