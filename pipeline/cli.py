"""``nmt``: a thin command line over the stage functions.

    nmt prepare|train|evaluate|register|run [hydra overrides...]
    nmt translate [--model URI] [--file F] [--beam N]
    nmt promote [--version N | --run ID | --sweep-run ID] [--split S] [--limit N] [--force] ...
    nmt rollback
    nmt server up|down|status [server.* overrides]     the shared MLflow tracking server
    nmt cluster up|down|status [cluster.* overrides]   a multi-node Ray cluster on this machine

Every stage command runs the stages before it too, reusing finished identical runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import warnings
from pathlib import Path
from collections.abc import Sequence

from components.config import ConfigError
from components.data.multi30k import DataError
from components.tracking_writer import TrackingUnavailable

log = logging.getLogger("nmt")
STAGE_COMMANDS = {"prepare": "prepare", "train": "train", "evaluate": "evaluate",
                  "register": "register", "run": "register"}


def _adopt_mlflow_run_env() -> str | None:
    """Under ``mlflow run``, MLFLOW_RUN_ID names a run made for us: it becomes the parent
    (left to ``mlflow run`` to end), and is removed so our own start_run calls aren't hijacked."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return os.environ.pop("MLFLOW_RUN_ID", None)


def expand_overrides(args: list[str]) -> list[str]:
    """`mlflow run -P overrides="a=1 b=2"` arrives as one argument: split such an argument
    when every piece is itself an override (``evaluate.splits=[a, b]`` stays whole)."""
    out: list[str] = []
    for arg in args:
        parts = shlex.split(arg) if " " in arg else [arg]
        out += parts if all("=" in p or p.startswith("~") for p in parts) else [arg]
    return out


def cmd_stage(command: str, overrides: list[str]) -> int:
    from pipeline.config import load_config
    from pipeline.orchestrate import run_pipeline

    cfg = load_config(overrides)
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
    """Translate the first ``n`` test sentences with the registry's champion."""
    import mlflow
    from datasets import load_from_disk

    from pipeline.stages.train import local_inputs

    data_dir, _ = local_inputs(prepare_run_id)
    test = load_from_disk(str(data_dir))["test_2016_flickr"]
    uri = f"models:/{cfg.model_name}@{cfg.register.alias}"
    model = mlflow.pyfunc.load_model(uri)
    hyps = model.predict(test["src"][:n])
    print(f"\nTranslations by {uri}:")
    for src, ref, hyp in zip(test["src"][:n], test["tgt"][:n], hyps):
        print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}\n")


def cmd_sweep(overrides: list[str]) -> int:
    from pipeline.config import load_config

    cfg = load_config(overrides)
    from pipeline.services.cluster import auth_env_for  # before Ray is imported
    auth_env_for(cfg.sweep.ray_address)
    from pipeline.sweep.driver import format_summary, run_sweep
    out = run_sweep(cfg, list(overrides))
    print("\n" + format_summary(out.rows))
    r = out.register
    print(f"\nbest trial run {out.best_trial_run_id}: val/bleu {out.best_val_bleu:.2f}; "
          f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import mlflow

    from components.tracking import resolve_tracking_uri
    from pipeline.compare import run_compare
    mlflow.set_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    md, page, run_id = run_compare(args.experiment, sweep_run_id=args.sweep_run, run_ids=args.runs or None,
                                   out=args.out)
    print(f"report: {md}\n        {page}\nlogged to compare run {run_id}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from pipeline.promote import Gate, describe, run_promote

    gate = Gate(split=args.split, beam_size=args.beam, limit=args.limit, n_resamples=args.resamples,
                seed=args.seed, p_threshold=args.p_threshold, force=args.force)
    out = run_promote(args.model_name, version=args.version, run_id=args.run, sweep_run_id=args.sweep_run,
                      experiment=args.experiment, gate=gate, tracking_uri=args.tracking_uri)
    print(describe(out, gate))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from pipeline.promote import run_rollback

    out = run_rollback(args.model_name, experiment=args.experiment, tracking_uri=args.tracking_uri)
    print(f"rolled back {out.model_name}: @champion is version {out.to_version} again"
          + (f", version {out.from_version} is @challenger" if out.from_version else "")
          + f"   (rollback run {out.run_id})")
    return 0


def _add_promote_parsers(sub) -> None:
    pp = sub.add_parser("promote", help="move @champion to a better model, through a significance gate")
    which = pp.add_mutually_exclusive_group()
    which.add_argument("--version", help="this registered version (default: the best run by best/val_bleu)")
    which.add_argument("--run", help="this train or sweep trial run (registered if it is not yet)")
    which.add_argument("--sweep-run", help="the best trial run under this sweep parent run")
    pp.add_argument("--experiment", default="nmt", help="where to look for runs and log the promotion (default nmt)")
    pp.add_argument("--split", default="test_2016_flickr", help="test split both models translate")
    pp.add_argument("--limit", type=int, default=None, help="only the first N sentences of the split")
    pp.add_argument("--beam", type=int, default=5, help="beam size for both models (1 = greedy)")
    pp.add_argument("--resamples", type=int, default=1000, help="paired bootstrap resamples (sacreBLEU default 1000)")
    pp.add_argument("--seed", type=int, default=12345, help="bootstrap seed (as SACREBLEU_SEED; default 12345)")
    pp.add_argument("--p-threshold", type=float, default=0.05, help="promote only when p < this (default 0.05)")
    pp.add_argument("--force", action="store_true", help="promote even when the gate says no")
    rp = sub.add_parser("rollback", help="move @champion back to @previous (the rolled-back one: @challenger)")
    rp.add_argument("--experiment", default="nmt", help="where to log the rollback run (default nmt)")
    for sp in (pp, rp):
        sp.add_argument("--model-name", default="nmt-de-en", help="registered model (default nmt-de-en)")
        sp.add_argument("--tracking-uri", default=None, help="default $MLFLOW_TRACKING_URI or the checkout's store")


def cmd_translate(args: argparse.Namespace) -> int:
    import mlflow

    from components.tracking import resolve_tracking_uri
    mlflow.set_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    from mlflow.exceptions import MlflowException
    if args.file and not Path(args.file).is_file():
        raise ConfigError(f"--file {args.file}: no such file; give a text file with one sentence per line, "
                          "or pipe the sentences to stdin")
    stream = open(args.file, encoding="utf-8") if args.file else sys.stdin
    lines = [line.rstrip("\n") for line in stream]
    try:
        model = mlflow.pyfunc.load_model(args.model)
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--model {args.model}: cannot load it from {mlflow.get_tracking_uri()} ({first}); "
                          "check the name and alias or version (the MLflow UI lists registered models)") from None
    params = {"beam_size": args.beam}
    for i in range(0, len(lines), 256):
        chunk = lines[i:i + 256]
        keep = [j for j, t in enumerate(chunk) if t.strip()]
        hyps = model.predict([chunk[j] for j in keep], params=params) if keep else []
        out = [""] * len(chunk)
        for j, h in zip(keep, hyps):
            out[j] = h
        sys.stdout.write("".join(h + "\n" for h in out))
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
    cp = sub.add_parser("compare", help="one report (Markdown + HTML) comparing evaluated models")
    cp.add_argument("--experiment", default="nmt", help="MLflow experiment (default nmt)")
    cp.add_argument("--sweep-run", default=None, help="only the evaluate runs under this sweep parent run")
    cp.add_argument("--runs", nargs="*", default=None, help="these evaluate run ids")
    cp.add_argument("--out", type=Path, default=None, help="output folder (default <home>/reports/compare-<time>)")
    cp.add_argument("--tracking-uri", default=None, help="default $MLFLOW_TRACKING_URI or the checkout's store")
    tp = sub.add_parser("translate", help="translate sentences from a file or stdin with a registered model")
    tp.add_argument("--model", default="models:/nmt-de-en@champion", help="model URI")
    tp.add_argument("--file", help="input file, one sentence per line (default stdin)")
    tp.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    tp.add_argument("--tracking-uri", default=None, help="default $MLFLOW_TRACKING_URI or the checkout's store")
    _add_promote_parsers(sub)
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
    quiet()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's client retries an unreachable server for ~4 minutes per call; keep each call
    # short and let our writers retry with their own deadline (tracking.outage_deadline_s)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command in STAGE_COMMANDS:
            return cmd_stage(args.command, expand_overrides(args.overrides))
        if args.command == "sweep":
            return cmd_sweep(expand_overrides(args.overrides))
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "translate":
            return cmd_translate(args)
        if args.command == "promote":
            return cmd_promote(args)
        if args.command == "rollback":
            return cmd_rollback(args)
        if args.command == "server":
            from pipeline.services.commands import cmd_server
            return cmd_server(args.action, expand_overrides(args.overrides))
        if args.command == "cluster":
            from pipeline.services.commands import cmd_cluster
            return cmd_cluster(args.action, expand_overrides(args.overrides))
    except (ConfigError, DataError, TrackingUnavailable) as err:
        print(f"nmt: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        message = _store_error(err)
        if message is None:
            raise
        print(f"nmt: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(f"nmt: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
