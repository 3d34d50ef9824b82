"""Attention as alignment on trained models (issue 34): each model's readouts scored with our
AER on the RWTH German-English gold set, the Transformer's layer chosen on held-out pairs.

    NMT_HOME=<a store with train runs> python -m benchmarks.bench_alignment_models \\
        --train-runs ID [ID ...] [--dev 100] [--gold DIR] [--eflomal-runs 1]

The 508 RWTH pairs are split in order: the first ``--dev`` pairs choose each model's readout
(the one of lowest AER there: a layer, a head, the mean, or the only one a model has), the
other pairs are the test set on which every row is reported. The penultimate layer averaged
over heads (Garg et al. 2019; ``nmt align``'s default) is reported beside the chosen one, and
so is the best readout *of the test pairs themselves*, labelled as optimistic. The diagonal and,
when installed, eflomal (trained on the Multi30k training pairs plus all 508, as in
``bench_alignment``) are scored on the same test pairs. The gold files are read in place.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from benchmarks.bench_alignment import GOLD_ENCODING, GOLD_FILE, diagonal, eflomal_links, multi30k_pairs
from benchmarks.common import machine, trained
from nmt.components.decoding.forced import PENULTIMATE, align_pairs, readouts
from nmt.components.evaluation.aer import AerScore, aer, read_alignments, read_text
from nmt.components.evaluation.symmetrize import symmetrize
from nmt.components.tracking import names as N
from nmt.components.tracking.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def row(model: str, how: str, s: AerScore) -> str:
    return f"| {model} | {how} | {s.precision:.2f} | {s.recall:.2f} | {s.aer:.2f} | {s.links} |"


def score_model(store: RunStore, run_id: str, de: list[str], en: list[str], gold: list, dev: int) -> list[str]:
    """Rows of one train run: the readout chosen on the dev pairs, the default, the test's own best."""
    run = store.get_run(run_id)
    model, codec = trained(store, run_id)
    names = readouts(model)
    t = time.perf_counter()
    found = align_pairs(model, codec, de, en, names)
    seconds = time.perf_counter() - t
    on_dev = {n: aer(found[n][:dev], gold[:dev]) for n in names}
    on_test = {n: aer(found[n][dev:], gold[dev:]) for n in names}
    chosen = min(names, key=lambda n: on_dev[n].aer)
    bleu = run.metrics.get(N.BEST_VAL_BLEU)
    label = f"`{model.cfg.label}` (val BLEU {bleu:.2f}; run {run_id[:8]}; {seconds:.0f} s)"
    rows = [row(label, f"chosen on dev: {chosen} (dev AER {on_dev[chosen].aer:.2f})", on_test[chosen])]
    if PENULTIMATE in names and chosen != PENULTIMATE:
        rows.append(row("", f"{PENULTIMATE} (the default)", on_test[PENULTIMATE]))
    best = min(names, key=lambda n: on_test[n].aer)
    if len(names) > 1:
        rows.append(row("", f"best of the test pairs themselves (optimistic): {best}", on_test[best]))
        layers = [n for n in names if n.startswith("layer ") and " head " not in n]
        if layers:
            rows.append("| | per layer on test, heads averaged: "
                        + " / ".join(f"{n.split()[1]}: {on_test[n].aer:.2f}" for n in layers) + " | | | | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-runs", nargs="+", required=True, help="train run ids in $NMT_HOME's store")
    ap.add_argument("--gold", type=Path, default=Path(os.environ.get("NMT_ALIGNMENT_GOLD")
                                                      or ROOT.parent / "shared/data/alignment-deen"))
    ap.add_argument("--dev", type=int, default=100, help="the first N pairs choose the readout (default 100)")
    ap.add_argument("--eflomal-runs", type=int, default=1, help="0: no eflomal row")
    ap.add_argument("--multi30k", type=Path, default=Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared/data/multi30k")))
    args = ap.parse_args()
    gold = read_alignments(args.gold / GOLD_FILE, one_indexed=True, encoding=GOLD_ENCODING)
    de = read_text(args.gold / "de", what="gold de", encoding=GOLD_ENCODING)
    en = read_text(args.gold / "en", what="gold en", encoding=GOLD_ENCODING)
    store = RunStore.open(None, "nmt")
    print(f"# {machine()}, load average {os.getloadavg()[0]:.1f}\n"
          f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; store {store.uri}; "
          f"readouts chosen on RWTH pairs 1-{args.dev}, every row scored on pairs {args.dev + 1}-{len(de)}\n")
    print("| model | readout | precision | recall | AER | links |\n|---|---|---|---|---|---|")
    for run_id in args.train_runs:
        print("\n".join(score_model(store, run_id, de, en, gold, args.dev)), flush=True)
    print(row("no model", "diagonal", aer(diagonal(de, en)[args.dev:], gold[args.dev:])))
    if args.eflomal_runs:
        train_de, train_en = multi30k_pairs(args.multi30k, None)
        for k in range(args.eflomal_runs):
            fwd, rev, _ = eflomal_links(train_de + de, train_en + en, len(de))
            links = [symmetrize(f, r, "grow-diag-final-and") for f, r in zip(fwd, rev)]
            print(row(f"eflomal, run {k + 1}", "grow-diag-final-and", aer(links[args.dev:], gold[args.dev:])))


if __name__ == "__main__":
    main()
