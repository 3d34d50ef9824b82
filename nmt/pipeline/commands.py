"""The commands about registered models and their runs: ``nmt translate``, ``promote``,
``rollback`` and ``compare``. Each reads the same composed config as the stage commands;
its flags are shorthands for keys of that config (``--beam 1`` = ``promote.beam_size=1``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nmt.components.config import ConfigError


def expand_overrides(args: list[str]) -> list[str]:
    """`mlflow run -P overrides="a=1 b=2"` arrives as one argument: split such an argument
    when every piece is itself an override (``evaluate.splits=[a, b]`` stays whole)."""
    out: list[str] = []
    for arg in args:
        parts = shlex.split(arg) if " " in arg else [arg]
        out += parts if all("=" in p or p.startswith("~") for p in parts) else [arg]
    return out


# flag -> config key: the commands' flags are shorthands for keys of the one composed config
FLAG_KEYS = {"experiment": "tracking.experiment", "tracking_uri": "tracking.uri", "model_name": "register.model_name",
             "split": "promote.split", "limit": "promote.limit", "beam": "promote.beam_size",
             "resamples": "promote.resamples", "seed": "promote.seed", "p_threshold": "promote.p_threshold",
             "force": "promote.force"}
PAIR_KEYS = ("data.src_lang", "data.tgt_lang", "register.model_name")


def command_config(args: argparse.Namespace, beam_key: str = "promote.beam_size"):
    """The composed config of a non-stage command: its overrides, then its flags on top.
    -> (config, pinned): pinned when the user chose the language pair or the model name."""
    from nmt.pipeline.config import load_config
    from nmt.pipeline.sweep.space import override_value

    overrides = expand_overrides(getattr(args, "overrides", []) or [])
    keys = {**FLAG_KEYS, "beam": beam_key}
    for flag, key in keys.items():
        value = getattr(args, flag, None)
        if value is None or value is False:
            continue
        overrides.append(f"{key}={override_value(value)}")  # the grammar's quoting: any text survives
    pinned = any(o.lstrip("+~").split("=")[0] in PAIR_KEYS for o in overrides)
    return load_config(overrides), pinned


def cmd_compare(args: argparse.Namespace) -> int:
    import mlflow

    from nmt.components.tracking import resolve_tracking_uri
    from nmt.pipeline.compare import run_compare
    cfg, _ = command_config(args)
    mlflow.set_tracking_uri(resolve_tracking_uri(cfg.tracking.uri))
    md, page, run_id = run_compare(cfg.tracking.experiment, sweep_run_id=args.sweep_run, run_ids=args.runs or None,
                                   out=args.out)
    print(f"report: {md}\n        {page}\nlogged to compare run {run_id}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from nmt.pipeline.promote import outcome_text, run_promote

    cfg, pinned = command_config(args)
    out = run_promote(cfg, version=args.version, run_id=args.run, sweep_run_id=args.sweep_run, pinned=pinned)
    print(outcome_text(out, cfg.promote))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from nmt.pipeline.promote import run_rollback

    cfg, pinned = command_config(args)
    out = run_rollback(cfg, pinned=pinned)
    print(f"rolled back {out.model_name}: @champion is version {out.to_version} again"
          + (f", version {out.from_version} is @challenger" if out.from_version else "")
          + f"   (rollback run {out.run_id})")
    return 0


def add_model_command_parsers(sub) -> None:
    cp = sub.add_parser("compare", help="one report (Markdown + HTML) comparing evaluated models")
    cp.add_argument("--sweep-run", default=None, help="only the evaluate runs under this sweep parent run")
    cp.add_argument("--runs", nargs="+", default=None, help="these evaluate run ids")
    cp.add_argument("--out", type=Path, default=None, help="output folder (default <home>/reports/compare-<time>)")
    cp.add_argument("--experiment", help="MLflow experiment (tracking.experiment)")
    cp.add_argument("--tracking-uri", help="tracking.uri (default $MLFLOW_TRACKING_URI or the checkout's store)")
    cp.add_argument("overrides", nargs="*", help="Hydra overrides")
    tp = sub.add_parser("translate", help="translate sentences from a file or stdin with a registered model")
    tp.add_argument("--model", help="model URI (default models:/<model name>@<register.alias>)")
    tp.add_argument("--file", help="input file, one sentence per line (default stdin)")
    tp.add_argument("--beam", type=int, help="beam size, 1 = greedy (evaluate.beam_size)")
    _add_common_flags(tp)

    _add_promote_parsers(sub)


def _add_promote_parsers(sub) -> None:
    pp = sub.add_parser("promote", help="move @champion to a better model, through a significance gate")
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
    rp = sub.add_parser("rollback", help="move @champion back to @previous (the rolled-back one: @challenger)")
    for sp in (pp, rp):
        _add_common_flags(sp)


def _add_common_flags(sp) -> None:
    sp.add_argument("--model-name", help="registered model (register.model_name; default nmt-<src>-<tgt> of the "
                    "newest train run, or of data.src_lang/data.tgt_lang when given)")
    sp.add_argument("--experiment", help="MLflow experiment (tracking.experiment)")
    sp.add_argument("--tracking-uri", help="tracking.uri (default $MLFLOW_TRACKING_URI or the checkout's store)")
    sp.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.src_lang=fr")


def _read_input(file: str | None) -> list[str]:
    """The lines to translate, read by the one reading of input text (UTF-8, BOM, CRLF)."""
    from nmt.components.text import TextDecodeError, read_lines, read_stream
    try:
        return list(read_lines(Path(file), what="--file")) if file else read_stream(sys.stdin, source="stdin")
    except TextDecodeError as err:
        raise ConfigError(str(err)) from None
    except OSError as err:  # e.g. no permission to read it, a disk error
        raise ConfigError(f"--file {file}: cannot read it ({err.strerror or type(err).__name__}); "
                          "give a readable text file, one sentence per line") from None


def cmd_translate(args: argparse.Namespace) -> int:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from nmt.components.inference import parse_params
    from nmt.components.serving import RequestError
    from nmt.components.tracking import resolve_tracking_uri, setup_tracking
    from nmt.pipeline.candidates import model_name
    from nmt.pipeline.loading import load_translator
    if args.file and not Path(args.file).is_file():
        what = "is a directory" if Path(args.file).is_dir() else "no such file"
        raise ConfigError(f"--file {args.file}: {what}; give a text file with one sentence per line, "
                          "or pipe the sentences to stdin")
    cfg, pinned = command_config(args, beam_key="evaluate.beam_size")
    e = cfg.evaluate  # the evaluate stage's decoding, so translate reproduces its scores
    params = {"beam_size": e.beam_size, "max_len_ratio": e.max_len_ratio, "length_penalty": e.length_penalty}
    try:
        parse_params(params)  # bounds before any work
    except RequestError as err:
        raise ConfigError(f"{err.message} (--beam / evaluate.*)") from None
    lines = _read_input(args.file)
    exp_id = setup_tracking(resolve_tracking_uri(cfg.tracking.uri), cfg.tracking.experiment)
    uri = args.model or f"models:/{model_name(cfg, MlflowClient(), exp_id, pinned)[0]}@{cfg.register.alias}"
    try:
        model = load_translator(uri)  # today's code on the version's files: nothing from the store runs
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--model {uri}: cannot load it from {mlflow.get_tracking_uri()} ({first}); "
                          "check the name and alias or version (the MLflow UI lists registered models)") from None
    try:
        hyps = model.predict(lines, params=params) if lines else []
    except MlflowException as err:  # the model's RequestError (its code may be the logged copy)
        raise ConfigError(err.message) from None
    sys.stdout.write("".join(h + "\n" for h in hyps))
    return 0
