import subprocess
import sys

from nmt.components.evaluation.scoring import corpus_scores


def test_bleu_matches_sacrebleu_cli(tmp_path, multi30k_dir):
    from nmt.components.data.text import read_lines
    refs = list(read_lines(multi30k_dir / "val.en.gz"))[:100]
    # a systematic corruption of the references as "hypotheses": drop every third word
    hyps = [" ".join(w for i, w in enumerate(r.split()) if i % 3 != 1) for r in refs]
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n")
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
                          str(tmp_path / "hyp.txt"), "-m", "bleu", "chrf", "ter", "-b", "-f", "text"],
                         check=True, capture_output=True, text=True).stdout.split()
    scores = corpus_scores(hyps, refs)
    assert [round(scores[m].score, 1) for m in ("bleu", "chrf", "ter")] == [float(x) for x in out]
    assert 0 < scores["bleu"].score < 100 and scores["ter"].score > 0
    assert scores["bleu"].signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a")
