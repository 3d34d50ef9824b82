"""``nmt compare``: one report (Markdown + self-contained HTML) over evaluate runs.

Tables per test split (architecture, parameters, train time, tokens/s, BLEU, chrF, TER),
BLEU-by-length curves of every model in one plot, BLEU against parameters and against
training time, samples and attention maps side by side, and AER where evaluate had a gold set.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from nmt.components.tracking import names as N
from nmt.components.system.errors import ConfigError
from nmt.components.evaluation.evalkey import MULTI30K_PRIMARY, EvalKey
from nmt.components.evaluation.explorer import render
from nmt.components.evaluation.aer import aer_key
from nmt.components.evaluation.plots import length_plot, scatter_plot
from nmt.components.evaluation.report_page import markdown_page
from nmt.components.tracking.run import PARENT_KINDS, RunRecord
from nmt.components.tracking.store import RunStore
from nmt.components.tracking.uri import project_home
from nmt.pipeline.evaluated import hypotheses_path
from nmt.pipeline.upstream import test_split

if TYPE_CHECKING:
    from nmt.pipeline.config import TrackingConfig


@dataclass
class ModelRow:
    label: str
    arch: str
    evaluate_run_id: str
    train_run_id: str
    prepare_run_id: str
    search: str
    split: str = MULTI30K_PRIMARY  # the evaluate run's primary test split (figures and samples come from it)
    params: float | None = None
    train_time_s: float | None = None
    tokens_per_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    length: list[dict] = field(default_factory=list)
    attention: Path | None = None
    map_kind: str = "attention"  # or "saliency": the plain Seq2Seq has no attention to draw
    hypotheses: list[str] = field(default_factory=list)
    explorer: dict | None = None  # this model's attention-explorer data (evaluate's explorer.json)
    explorer_gold: dict | None = None  # the same on evaluate's gold set, its page's sentences under "page"
    align_readout: str | None = None  # the readout its AER is read from, where evaluate had a gold set


def select_evaluate_runs(store: RunStore, *, sweep_run_id: str | None = None,
                         run_ids: list[str] | None = None) -> list[RunRecord]:
    """Evaluate runs by id, under a sweep parent, or every finished one in the store's
    experiment (the newest per train run)."""
    if run_ids:
        return [store.expect(r, "--runs", ("evaluate",), "FINISHED") for r in run_ids]
    if sweep_run_id:
        store.expect(sweep_run_id, "--sweep-run", PARENT_KINDS)
    runs = store.find(stage="evaluate", parent=sweep_run_id, status="FINISHED", limit=200)
    seen, out = set(), []
    for r in runs:
        key = r.params.get(N.PARAM_TRAIN_RUN)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return list(reversed(out))


def _artifact(store: RunStore, run_id: str, path: str) -> Path | None:
    try:
        return store.download(run_id, path)
    except Exception:  # noqa: BLE001 - an older run without this artifact
        return None


def collect(store: RunStore, run: RunRecord, n_samples: int) -> ModelRow:
    p, tags = run.params, run.tags
    train_id = p[N.PARAM_TRAIN_RUN]
    # runs older than the analysis.split tag scored Multi30k's primary split first
    decoded = EvalKey.parse_decoded(tags.get(N.TAG_ANALYSIS_SPLIT, f"{MULTI30K_PRIMARY}/greedy"), "bleu")
    split, search = decoded.split, decoded.search
    arch = tags.get(N.TAG_ARCH, "?")
    row = ModelRow(label=f"{arch} ({run.id[:6]})", arch=arch, evaluate_run_id=run.id,
                   train_run_id=train_id, prepare_run_id=p[N.PARAM_PREPARE_RUN], search=search, split=split,
                   scores=dict(run.metrics))
    train = store.get_run(train_id)
    row.params = train.metrics.get(N.NUM_PARAMS)
    row.train_time_s = train.metrics.get(N.TRAIN_TIME)
    speeds = [m.value for m in store.metric_history(train_id, N.TOKENS_PER_S)]
    row.tokens_per_s = statistics.median(speeds) if speeds else None
    length = _artifact(store, run.id, f"{N.LENGTH_DIR}/{N.LENGTH_JSON}")
    row.length = json.loads(length.read_text()) if length else []
    row.attention = _artifact(store, run.id, f"{N.ATTENTION_DIR}/sample0.png")
    row.map_kind = tags.get(N.TAG_MAP, "attention")
    row.align_readout = tags.get(N.TAG_ALIGN_READOUT)
    for attr, name in (("explorer", N.EXPLORER_JSON), ("explorer_gold", N.EXPLORER_GOLD_JSON)):
        found = _artifact(store, run.id, f"{N.ATTENTION_DIR}/{name}")
        setattr(row, attr, {**json.loads(found.read_text()), "label": row.label} if found else None)
    hyp = _artifact(store, run.id, hypotheses_path(split, search))
    row.hypotheses = hyp.read_text().splitlines()[:n_samples] if hyp else []
    return row


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def _figures(rows: list[ModelRow], out: Path) -> dict[str, Path]:
    """The three plots over all models, saved under ``out``."""
    key = lambda r: r.scores.get(EvalKey(r.split, r.search, "bleu").key)  # noqa: E731
    figs = {
        N.LENGTH_PNG: length_plot({r.label: [(b["bucket"], b["bleu"]) for b in r.length] for r in rows if r.length},
                                  f"BLEU by source length, {rows[0].split}"),
        "bleu_vs_params.png": scatter_plot({r.label: (r.params, key(r)) for r in rows
                                            if r.params and key(r) is not None},
                                           "parameters", "BLEU vs model size", logx=True),
        "bleu_vs_time.png": scatter_plot({r.label: (r.train_time_s / 60, key(r)) for r in rows
                                          if r.train_time_s and key(r) is not None},
                                         "training time (minutes)", "BLEU vs training time"),
    }
    for name, fig in figs.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    return {name: out / name for name in figs}


def _score_tables(rows: list[ModelRow]) -> list[str]:
    md = []
    for split in dict.fromkeys(EvalKey.parse(k).split for r in rows for k in r.scores if EvalKey.is_key(k)):
        have = [r for r in rows if EvalKey(split, r.search, "bleu").key in r.scores]
        if not have:
            continue
        md += [f"## {split}", "", "| model | arch | search | params | train time (min) | tokens/s | BLEU | chrF | TER |",
               "|---|---|---|---|---|---|---|---|---|"]
        for r in have:
            s = lambda m: r.scores.get(EvalKey(split, r.search, m).key)  # noqa: E731
            md.append(f"| {r.label} | {r.arch} | {r.search} | {_fmt(r.params and r.params / 1e6, '.1f')}M | "
                      f"{_fmt(r.train_time_s and r.train_time_s / 60, '.1f')} | {_fmt(r.tokens_per_s, '.0f')} | "
                      f"{_fmt(s('bleu'))} | {_fmt(s('chrf'))} | {_fmt(s('ter'))} |")
        md.append("")
    return md


def aer_table(rows: list[ModelRow]) -> list[str]:
    """AER against evaluate's gold set (``evaluate.alignment_gold``), for the models that have
    one: the default readout's, and the best readout's on the gold set itself (optimistic)."""
    if not (have := [r for r in rows if r.align_readout and aer_key(r.align_readout) in r.scores]):
        return []
    md = ["## Word alignment: AER against the gold set (0-100, lower is better)", "", "Forced decoding on each "
          "reference, one link per target word. The best readout is chosen on the gold pairs themselves: optimistic.", "",
          "| model | arch | readout | AER | best readout on the gold set itself | its AER |", "|---|---|---|---|---|---|"]
    for r in have:
        per = {k[len(N.AER_PREFIX):]: v for k, v in r.scores.items() if k.startswith(N.AER_PREFIX)}
        best = min(per, key=per.get)
        md.append(f"| {r.label} | {r.arch} | {r.align_readout} | {r.scores[aer_key(r.align_readout)]:.2f} | "
                  f"{best.replace('_', ' ')} | {per[best]:.2f} |")
    return md + [""]


def _maps(rows: list[ModelRow], out: Path, figures: dict[str, Path]) -> list[str]:
    """The first sample's maps side by side (copied under ``out``), and what each shows."""
    md = ["## Attention maps (first sample sentence, greedy)", "",
          "Rows are target tokens, columns source tokens; each row sums to 1.", ""]
    maps, notes = [], []
    for r in rows:
        if not r.attention:
            notes.append(f"*{r.label}: no map was logged (evaluate.attention_samples=0, or an older run)*")
            continue
        name = f"attention_{r.evaluate_run_id[:8]}.png"
        (out / name).write_bytes(r.attention.read_bytes())
        figures[name] = out / name
        maps.append(f"![{r.label}]({name})")
        if r.map_kind == "saliency":
            notes.append(f"*{r.label}: no attention (the decoder sees one fixed context vector); its map is "
                         "gradient saliency, |d log p(y_t) / d e(x_s)| normalised per row and drawn with black at "
                         "its largest value (attention maps: black = 1): what each output token is "
                         "sensitive to, not where a model looks.*")
    return md + [" ".join(maps), ""] + [n for note in notes for n in (note, "")]  # maps in one row


def build_report(rows: list[ModelRow], out: Path, samples: list[tuple[str, str]]) -> tuple[Path, Path]:
    """Write report.md (images beside it) and report.html (images embedded)."""
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(rows, out)
    md = ["# The journey, measured", "",
          f"{len(rows)} models; scores are cased, detokenized sacreBLEU / chrF / TER on 0-100 "
          "(TER: lower is better), with the search named in each row.", ""]
    md += _score_tables(rows) + aer_table(rows)
    md += ["## BLEU by source length", "", f"![BLEU by length]({N.LENGTH_PNG})", "",
           "## BLEU against size and training time", "", "![BLEU vs params](bleu_vs_params.png) "
           "![BLEU vs time](bleu_vs_time.png)", "", f"## Sample translations ({rows[0].split})", ""]
    for i, (src, ref) in enumerate(samples):
        md += [f"**{i + 1}.** {src}", "", f"- *reference*: {ref}"]
        md += [f"- *{r.label}*: {r.hypotheses[i] if i < len(r.hypotheses) else '-'}" for r in rows]
        md.append("")
    md += _maps(rows, out, figures)
    entries = [r.explorer for r in rows if r.explorer]
    if entries:  # the same first test sentences in every evaluate run
        k = min(len(samples), *(len(e["sentences"]) for e in entries))
        page = render([{**e, "sentences": e["sentences"][:k]} for e in entries],
                      [{"src": s, "ref": r} for s, r in samples[:k]])
        (out / N.EXPLORER_HTML).write_text(page)
        md += ["## Attention explorer", "", f"{N.EXPLORER_HTML} beside this report: every model's weights "
               "per target token side by side, and the beam at each step (opens offline).", ""]
    md += _gold_explorer(rows, out)
    md_path, html_path = out / N.REPORT_MD, out / N.REPORT_HTML
    md_path.write_text("\n".join(md) + "\n")
    html_path.write_text(markdown_page("\n".join(md), figures))
    return md_path, html_path


def _gold_explorer(rows: list[ModelRow], out: Path) -> list[str]:
    """explorer_gold.html: the models whose evaluate had the first model's gold set, side by side."""
    entries = [r.explorer_gold for r in rows if r.explorer_gold]
    same = [e for e in entries if [p["src"] for p in e["page"]] == [p["src"] for p in entries[0]["page"]]]
    if not same:
        return []
    k = min(len(e["sentences"]) for e in same)
    models = [{**{key: v for key, v in e.items() if key != "page"}, "sentences": e["sentences"][:k]} for e in same]
    (out / N.EXPLORER_GOLD_HTML).write_text(render(models, same[0]["page"][:k]))
    return [f"{N.EXPLORER_GOLD_HTML} beside it: the gold set's first pairs, forced, gold links framed.", ""]


def run_compare(tracking: TrackingConfig, *, sweep_run_id: str | None = None, run_ids: list[str] | None = None,
                out: Path | None = None, n_samples: int = 5) -> tuple[Path, Path, str]:
    """Build the report over the store ``tracking`` (a ``TrackingConfig``) names, and log it
    as a ``compare`` run there; returns (md, html, run id)."""
    store = RunStore.from_config(tracking)
    runs = select_evaluate_runs(store, sweep_run_id=sweep_run_id, run_ids=run_ids)
    if not runs:
        raise ConfigError(f"no finished evaluate runs to compare in experiment {tracking.experiment!r}; "
                          "run `nmt run` or `nmt evaluate` first")
    rows = [collect(store, r, n_samples) for r in runs]
    samples = list(zip(*test_split(store, rows[0].prepare_run_id, rows[0].split, n_samples)))
    out = out or project_home() / "reports" / time.strftime("compare-%Y%m%d-%H%M%S")
    md, page = build_report(rows, out, samples)
    params = {"evaluate_run_ids": ",".join(r.evaluate_run_id for r in rows)}
    with store.run("compare", tags={N.TAG_STAGE: "compare"}, params=params) as run:
        run.log_artifacts(out, N.REPORT_DIR)
    return md, page, run.run_id


def cmd_compare(args, cfg, _pinned: bool) -> int:
    md, page, run_id = run_compare(cfg.tracking, sweep_run_id=args.sweep_run, run_ids=args.runs or None, out=args.out)
    print(f"report: {md}\n        {page}\nlogged to compare run {run_id}")
    return 0
