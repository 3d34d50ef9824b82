"""``nmt translate`` and ``nmt align``: a registered model (``--model``, default the registered
model's alias) loaded into today's code, on sentences from a file or stdin."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from nmt.components.system.errors import ConfigError


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


MODEL_FORMS = "models:/<name>@<alias>, models:/<name>/<version>, runs:/<run id>/<path> or a model's folder"
URI_FORMS = {"models": r"models:/[^/@\s]+(@[\w-]+|/[\w.-]+)", "runs": r"runs:/\w+/\S.*"}


def check_model_uri(uri: str) -> None:
    """``--model`` has a form MLflow resolves, or names a folder that exists: one line
    otherwise, before the store opens (MLflow's own answer is a download error)."""
    scheme = re.match(r"([a-z][\w+.-]+):", uri)
    if scheme is None and not Path(uri).is_dir():
        raise ConfigError(f"--model {uri}: no such folder; give {MODEL_FORMS}")
    form = URI_FORMS.get(scheme.group(1)) if scheme else None
    if form and not re.fullmatch(form, uri):
        raise ConfigError(f"--model {uri}: not a model URI; give {MODEL_FORMS}")


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
    from nmt.pipeline.promotion.local_models import cached_translator, remember, store_stamp
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


def cmd_align(args: argparse.Namespace, cfg, pinned: bool) -> int:
    """Pharaoh lines of the --src/--tgt pairs by forced decoding; with --gold, the AER table."""
    from nmt.components.decoding.forced import readout_name
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.studies.alignments import format_table, read_pairs, run_align

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


def cmd_translate(args: argparse.Namespace, cfg, pinned: bool) -> int:
    """Translations of ``--file`` (or stdin), one a line, by the evaluate stage's decoding."""
    from nmt.components.serving.bounds import ParamError, parse_params
    e = cfg.evaluate  # the evaluate stage's decoding, so translate reproduces its scores
    params = {"beam_size": e.beam_size, "max_len_ratio": e.max_len_ratio, "length_penalty": e.length_penalty,
              "align": bool(getattr(args, "align", False))}
    try:
        parse_params(params)  # bounds before any work (and before torch and MLflow load)
    except ParamError as err:
        raise ConfigError(f"{err.message} (--beam / evaluate.*)") from None
    lines = _read_input(args.file)
    # requests, not the store's MlflowException: a call from the local copy imports no MLflow
    from nmt.components.serving.requests import RequestError
    model = _cached_or_load(args, cfg, pinned)
    try:
        hyps = model.predict(lines, params=params) if lines else []
    except RequestError as err:  # a bad request or a failure (500 with a request id), in one line
        where = f"--file {args.file}" if args.file else "stdin"  # its lines are what "line N" counts
        raise ConfigError(f"{where}: {err.message} (here: --beam, evaluate.*)") from None
    sys.stdout.write("".join(h + "\n" for h in hyps))
    return 0
