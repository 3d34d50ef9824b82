"""The statistical baseline for attention as alignment (issue 34): eflomal (Östling &
Tiedemann 2016, an HMM with fertility by Gibbs sampling) trained on the same data as our
models, scored with our own AER on the RWTH German-English gold set, beside a diagonal.

    python -m benchmarks.bench_alignment [--multi30k DIR] [--gold DIR] [--train-limit N] [--runs 1]

eflomal is an optional dependency (``pip install -e '.[bench]'``; a source package, built
with the machine's gcc). As the literature does (Dou & Neubig 2021, Zenkel et al. 2020), it
is trained on the training corpus *plus* the 508 test pairs, unsupervised (no gold links),
and the test pairs' links are kept: the Multi30k de-en training captions (29,000 pairs,
streamed from ``$MULTI30K_DIR``), then the 508 RWTH pairs (``de``, ``en``, Latin-1, read in
place: research use only, never copied).

Text choices:
- Tokenization: the RWTH sentences are already tokenized (spaces around punctuation,
  hyphenated words kept whole) and the gold indexes those tokens, so they go in as they are.
  The Multi30k captions are raw; they get the project's one normalisation
  (:func:`nmt.components.data.text.normalize`) and then the Moses tokenizer (``sacremoses``,
  German or English rules, no escaping, no aggressive hyphen splitting), the tokenizer that
  resembles the RWTH files', so that ``Büsche.`` and ``Büsche .`` are one word.
- Case: eflomal lowercases every token itself (its ``prepare_files``); nothing else is
  folded (no stemming, no prefix or suffix cut).

eflomal's two directions (its ``forward`` and ``reverse`` files, both written German-English)
are scored alone and combined (:mod:`nmt.components.evaluation.symmetrize`);
grow-diag-final-and is the combination eflomal's authors report. eflomal samples at random
and takes no seed: ``--runs N`` repeats it and prints each run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from nmt.components.data.text import normalize, read_lines
from nmt.components.evaluation.aer import AerScore, aer, read_alignments, read_text
from nmt.components.evaluation.symmetrize import HEURISTICS, symmetrize

ROOT = Path(__file__).resolve().parents[1]
GOLD_ENCODING = "latin-1"
GOLD_FILE = "alignmentDeEn.talp"


def multi30k_pairs(folder: Path, limit: int | None) -> tuple[list[str], list[str]]:
    """Multi30k de-en training pairs: normalised, Moses-tokenized; a pair with an empty side is dropped."""
    from sacremoses import MosesTokenizer

    tok = {lang: MosesTokenizer(lang=lang) for lang in ("de", "en")}
    de, en = [], []
    for k, (d, e) in enumerate(zip(read_lines(folder / "train.de.gz", what="Multi30k train.de"),
                                   read_lines(folder / "train.en.gz", what="Multi30k train.en"))):
        if limit is not None and k >= limit:
            break
        d, e = (tok[lang].tokenize(normalize(s), escape=False, return_str=True) for lang, s in (("de", d), ("en", e)))
        if d and e:
            de.append(d)
            en.append(e)
    return de, en


def diagonal(de: list[str], en: list[str]) -> list[set[tuple[int, int]]]:
    """No model: English word j to German word round(j |S| / |T|) (the last word at most)."""
    out = []
    for d, e in zip(de, en):
        s, t = len(d.split()), len(e.split())
        out.append({(min(s - 1, round(j * s / t)), j) for j in range(t)})
    return out


def eflomal_links(de: list[str], en: list[str], keep_last: int) -> tuple[list[set], list[set], float]:
    """eflomal's forward and reverse links of the last ``keep_last`` pairs, and its seconds."""
    import eflomal

    with tempfile.TemporaryDirectory(prefix="bench-align-") as work:
        fwd, rev = Path(work) / "fwd", Path(work) / "rev"
        t = time.perf_counter()
        eflomal.Aligner().align(de, en, links_filename_fwd=str(fwd), links_filename_rev=str(rev), quiet=True)
        seconds = time.perf_counter() - t
        out = [[a.sure for a in read_alignments(p)[-keep_last:]] for p in (fwd, rev)]
    return out[0], out[1], seconds


def row(name: str, s: AerScore) -> str:
    return f"| {name} | {s.precision:.2f} | {s.recall:.2f} | {s.aer:.2f} | {s.links} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--multi30k", type=Path, default=Path(os.environ.get("MULTI30K_DIR", ROOT.parent / "shared/data/multi30k")))
    ap.add_argument("--gold", type=Path, default=Path(os.environ.get("NMT_ALIGNMENT_GOLD")
                                                      or ROOT.parent / "shared/data/alignment-deen"))
    ap.add_argument("--train-limit", type=int, default=None, help="the first N Multi30k pairs only (a quick run)")
    ap.add_argument("--runs", type=int, default=1, help="eflomal runs (it samples at random, without a seed)")
    args = ap.parse_args()
    try:
        import eflomal  # noqa: F401
    except ImportError:
        raise SystemExit("eflomal is not installed: pip install -e '.[bench]' (it builds with gcc)") from None
    gold = read_alignments(args.gold / GOLD_FILE, one_indexed=True, encoding=GOLD_ENCODING)
    test_de = read_text(args.gold / "de", what="gold de", encoding=GOLD_ENCODING)
    test_en = read_text(args.gold / "en", what="gold en", encoding=GOLD_ENCODING)
    t = time.perf_counter()
    train_de, train_en = multi30k_pairs(args.multi30k, args.train_limit)
    prep = time.perf_counter() - t
    print(f"# {machine()}, load average {os.getloadavg()[0]:.1f}\n"
          f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; eflomal trained on "
          f"{len(train_de):,} Multi30k de-en pairs + {len(test_de)} RWTH pairs (tokenized in {prep:.1f} s)\n")
    print("| aligner | precision | recall | AER | links |\n|---|---|---|---|---|")
    print(row("diagonal (no model)", aer(diagonal(test_de, test_en), gold)))
    for run in range(args.runs):
        fwd, rev, seconds = eflomal_links(train_de + test_de, train_en + test_en, len(test_de))
        tag = f"eflomal run {run + 1} ({seconds:.0f} s)"
        print(row(f"{tag}: forward", aer(fwd, gold)))
        print(row(f"{tag}: reverse", aer(rev, gold)))
        for heuristic in HEURISTICS:
            print(row(f"{tag}: {heuristic}", aer([symmetrize(f, r, heuristic) for f, r in zip(fwd, rev)], gold)))


if __name__ == "__main__":
    main()
