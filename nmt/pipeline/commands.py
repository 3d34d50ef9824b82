"""What each ``nmt`` command does: one handler per command, each ``(args) -> exit status``.
Which command runs which handler, with what help and config groups, is the table in
:mod:`nmt.pipeline.cli`. Every command reads the same composed config (``conf/``); the flags of
translate, promote, rollback and compare are shorthands for its keys (``--beam 1`` =
``promote.beam_size=1``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nmt.components.training import startup
from nmt.components.system.typed_config import ConfigError
from nmt.components.evaluation.evalkey import EvalKey
from nmt.pipeline.stages import table as stage_table


def last_stage(command: str) -> str:
    """``nmt <stage>`` runs up to that stage; ``nmt run``, the whole table."""
    return stage_table.STAGES[-1].name if command == "run" else command


def expand_overrides(args: argparse.Namespace) -> list[str]:
    """The command's overrides: each argument exactly as the shell gave it (Hydra reads its
    quotes), then those of ``--overrides-line`` (MLproject's one string of several), split
    by Hydra's override grammar."""
    from nmt.pipeline.override_line import split_overrides
    return [*(getattr(args, "overrides", None) or []), *split_overrides(getattr(args, "overrides_line", None) or "")]


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
    from nmt.pipeline.studies.sweep.space import override_value

    overrides = expand_overrides(args)
    keys = {**FLAG_KEYS, "beam": beam_key}
    for flag, key in keys.items():
        value = getattr(args, flag, None)
        if value is None or value is False:
            continue
        overrides.append(f"{key}={override_value(value)}")  # the grammar's quoting: any text survives
    pinned = any(o.lstrip("+~").split("=")[0] in PAIR_KEYS for o in overrides)
    return load_config(overrides, groups=getattr(args, "groups", ())), pinned


def cmd_compare(args: argparse.Namespace) -> int:
    cfg, _ = command_config(args)
    from nmt.pipeline.studies.compare import run_compare
    md, page, run_id = run_compare(cfg.tracking, sweep_run_id=args.sweep_run, run_ids=args.runs or None,
                                   out=args.out)
    print(f"report: {md}\n        {page}\nlogged to compare run {run_id}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    cfg, pinned = command_config(args)
    from nmt.pipeline.promotion.promote import outcome_text, run_promote
    out = run_promote(cfg, version=args.version, run_id=args.run, sweep_run_id=args.sweep_run, pinned=pinned)
    print(outcome_text(out, cfg.promote))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    cfg, pinned = command_config(args)
    from nmt.pipeline.promotion.promote import run_rollback
    out = run_rollback(cfg, pinned=pinned)
    print(f"rolled back {out.model_name}: @champion is version {out.to_version} again"
          + (f", version {out.from_version} is @challenger" if out.from_version else "")
          + f"   (rollback run {out.run_id})")
    return 0


def _read_input(file: str | None) -> list[str]:
    """The lines to translate, read by the one reading of input text (UTF-8, BOM, CRLF)."""
    from nmt.components.data.text import TextDecodeError, read_lines, read_stream
    try:
        return list(read_lines(Path(file), what="--file")) if file else read_stream(sys.stdin, source="stdin")
    except TextDecodeError as err:
        raise ConfigError(str(err)) from None
    except OSError as err:  # e.g. no permission to read it, a disk error
        raise ConfigError(f"--file {file}: cannot read it ({err.strerror or type(err).__name__}); "
                          "give a readable text file, one sentence per line") from None


def _load_model(args: argparse.Namespace, cfg, pinned: bool, store):
    """``--model`` (default the registered model's alias), built by today's code."""
    from nmt.components.tracking.store import StoreError
    from nmt.pipeline.promotion.candidates import model_name
    from nmt.pipeline.promotion.loading import load_translator
    uri = args.model or f"models:/{model_name(cfg, store, pinned)[0]}@{cfg.register.alias}"
    try:
        return load_translator(store, uri)  # today's code on the version's files: nothing from the store runs
    except (StoreError, OSError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--model {uri}: cannot load it from {store.uri} ({first}); "
                          "check the name and alias or version (the MLflow UI lists registered models)") from None


def _cached_or_load(args: argparse.Namespace, cfg, pinned: bool):
    """The model this request resolved to last time, when the local store has not changed
    since (no store opened, no registry read); else resolved and loaded, then remembered."""
    from nmt.components.tracking.uri import resolve_tracking_uri
    from nmt.pipeline.promotion.loading import cached_translator, remember, store_stamp
    uri = resolve_tracking_uri(cfg.tracking.uri)
    request = "\n".join(map(str, (uri, cfg.tracking.experiment, args.model, cfg.register.model_name, pinned,
                                   cfg.data.src_lang, cfg.data.tgt_lang, cfg.register.alias)))
    model = cached_translator(uri, request)
    if model is None:
        from nmt.components.tracking.store import RunStore
        stamp = store_stamp(uri)  # before resolving: a write meanwhile makes the record stale, never wrong
        model = _load_model(args, cfg, pinned, RunStore.from_config(cfg.tracking))
        remember(request, stamp, model)
    return model


def cmd_align(args: argparse.Namespace) -> int:
    """Pharaoh lines of the --src/--tgt pairs by forced decoding; with --gold, the AER table."""
    from nmt.components.decoding.forced import readout_name
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.studies.alignments import format_table, read_pairs, run_align

    cfg, pinned = command_config(args)
    name = readout_name(args.layer, args.head)
    sources, targets = read_pairs(Path(args.src), Path(args.tgt), args.encoding)
    store = RunStore.from_config(cfg.tracking)
    loaded = _load_model(args, cfg, pinned, store)
    net, codec = loaded.model.model, loaded.model.codec
    out = run_align(net, codec, sources, targets, name=name, gold=Path(args.gold) if args.gold else None,
                    encoding=args.encoding, store=store, model_uri=loaded.uri)
    what = ("gradient saliency: what each output is sensitive to, not attention" if out.readout == "saliency"
            else "attention, " + ("alpha" if out.readout == "alpha" else f"cross-attention {out.readout}"))
    print(f"nmt align: {len(out.lines)} lines, links from {what}", file=sys.stderr)
    text = "".join(line + "\n" for line in out.lines)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if out.table:
        print(format_table(out.table, net.cfg.label) + f"\n(align run {out.run_id})", file=sys.stderr)
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from nmt.components.serving.limits import ParamError, parse_params
    if args.file and not Path(args.file).is_file():
        what = "is a directory" if Path(args.file).is_dir() else "no such file"
        raise ConfigError(f"--file {args.file}: {what}; give a text file with one sentence per line, "
                          "or pipe the sentences to stdin")
    cfg, pinned = command_config(args, beam_key="evaluate.beam_size")
    e = cfg.evaluate  # the evaluate stage's decoding, so translate reproduces its scores
    params = {"beam_size": e.beam_size, "max_len_ratio": e.max_len_ratio, "length_penalty": e.length_penalty,
              "align": bool(getattr(args, "align", False))}
    try:
        parse_params(params)  # bounds before any work (and before torch and MLflow load)
    except ParamError as err:
        raise ConfigError(f"{err.message} (--beam / evaluate.*)") from None
    lines = _read_input(args.file)
    from nmt.components.tracking.store import StoreError
    model = _cached_or_load(args, cfg, pinned)
    try:
        hyps = model.predict(lines, params=params) if lines else []
    except StoreError as err:  # the model's RequestError (its code may be the logged copy)
        raise ConfigError(err.message) from None
    sys.stdout.write("".join(h + "\n" for h in hyps))
    return 0


def _adopt_mlflow_run_env() -> str | None:
    """Under ``mlflow run``, MLFLOW_RUN_ID names a run made for us: it becomes the parent
    (left to ``mlflow run`` to end), and is removed so our own start_run calls aren't hijacked."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return os.environ.pop("MLFLOW_RUN_ID", None)


def cmd_stage(args: argparse.Namespace) -> int:
    cfg, _ = command_config(args)  # first: a config error is answered before torch, MLflow or Ray load
    startup.mark("config")
    from nmt.pipeline.stages.runner import run_pipeline
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


def show_champion(cfg, store, prepare_run_id: str, n: int) -> None:
    """Translate the first ``n`` sentences of the primary test split with the registry's champion."""
    from nmt.pipeline.promotion.loading import load_translator
    from nmt.pipeline.upstream import test_split

    sources, refs = test_split(store, prepare_run_id, cfg.data.primary, n)
    uri = f"models:/{cfg.model_name}@{cfg.register.alias}"
    hyps = load_translator(store, uri).predict(sources)
    print(f"\nTranslations by {uri}:")
    for src, ref, hyp in zip(sources, refs, hyps):
        print(f"  src: {src}\n  ref: {ref}\n  hyp: {hyp}\n")


def cmd_sweep(args: argparse.Namespace) -> int:
    cfg, _ = command_config(args)
    from nmt.pipeline.services.cluster import auth_env_for  # before Ray is imported
    auth_env_for(cfg.sweep.ray_address)
    from nmt.pipeline.studies.sweep.driver import format_summary, run_sweep
    out = run_sweep(cfg, expand_overrides(args))
    print("\n" + format_summary(out.rows))
    r = out.register
    print(f"\nbest trial run {out.best_trial_run_id}: val/bleu {out.best_val_bleu:.2f}; "
          f"registered {r.model_name} version {r.version}{' -> @' + cfg.register.alias if r.champion else ''}")
    return 0


def cmd_journey(args: argparse.Namespace) -> int:
    cfg, _ = command_config(args)
    from nmt.pipeline.studies.journey import run_journey
    from nmt.pipeline.studies.journey_report import verdict
    out = run_journey(cfg, expand_overrides(args))
    for arm, s in out.systems.items():
        print(f"{arm:20s} BLEU {s.bleu:6.2f}  95% [{s.mean - s.ci:.2f}, {s.mean + s.ci:.2f}]  seeds "
              + ", ".join(f"{b:.2f}" for b in s.seeds))
    for p in out.pairs:
        print(f"{p.b} - {p.a}: {p.delta:+.2f} +- {p.delta_ci:.2f}; " + verdict(p, cfg.journey.alpha).replace("**", ""))
    print(f"report: {out.report}\njourney run {out.parent_run_id} ({out.wall_s / 60:.1f} min)")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from nmt.pipeline.services import server

    cfg, action = command_config(args)[0].server, args.action
    if action == "up":
        st = server.up(cfg)
        print(f"MLflow server on {st.url} (pid {st.pid}, PostgreSQL {cfg.pg_host}:{cfg.pg_port}/{cfg.database}"
              f"{', basic auth' if cfg.auth else ''}); log: {st.log}\n"
              f"  export MLFLOW_TRACKING_URI={st.url}")
        return 0
    if action == "down":
        print("stopped" if server.down(cfg) else "no server was running")
        return 0
    st = server.status(cfg)
    print(f"{'up' if st.healthy else 'down'}: {st.url}" + (f" (pid {st.pid})" if st.pid else "") + f"; log: {st.log}")
    return 0 if st.healthy else 3


def cmd_cluster(args: argparse.Namespace) -> int:
    from nmt.pipeline.services import cluster

    cfg, action = command_config(args)[0].cluster, args.action
    if action == "up":
        nodes = cluster.up(cfg)
        print(f"Ray cluster at {cfg.address}: " + ", ".join(n.name for n in nodes)
              + f"\n  nmt sweep sweep.ray_address={cfg.address} sweep.storage_path=<a folder every node sees>")
        return 0
    if action == "down":
        n = cluster.down(cfg)
        print(f"stopped {n} processes" if n else "no cluster was running")
        return 0
    nodes = cluster.nodes(cfg)
    print(f"{len(nodes)} nodes at {cfg.address}" + "".join(f"\n  {n.name} (raylet pid {n.raylet_pid})" for n in nodes))
    return 0 if nodes else 3
