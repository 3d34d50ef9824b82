"""Whatever users send through ``nmt translate`` (``--file``, stdin) and the Python ``predict``:
a translation per line, or one line that says what to do; never a traceback, never a lost
batch. On a tiny Transformer champion (max_positions 128)."""

from __future__ import annotations

import gzip
import io
import logging
import sys
from pathlib import Path

import mlflow
import pytest

from nmt.components.evaluation.scoring import corpus_scores
from nmt.components.data.text import normalize
from nmt.pipeline.cli import main

pytestmark = pytest.mark.slow

CHAMPION = "models:/nmt-de-en@champion"
LONG = ("EIN MANN IN EINEM BLAUEN HEMD STEHT AUF EINER LEITER UND PUTZT EIN FENSTER. " * 30)[:1920]
NORMAL = "Ein Hund läuft im Park."


class Result:
    def __init__(self, returncode: int, stdout: bytes, stderr: bytes):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def translate(monkeypatch, capsys, caplog):
    """``nmt translate ARGS`` in process with ``data`` as stdin's bytes -> exit code, stdout,
    stderr (with the log lines a terminal would show)."""
    def run(store: str, *args: str, data: bytes) -> Result:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        capsys.readouterr()
        caplog.clear()
        with caplog.at_level(logging.INFO):
            code = main(["translate", *args])
        cap = capsys.readouterr()
        logged = "".join(f"{r.levelname} {r.name}: {r.getMessage()}\n" for r in caplog.records)
        return Result(code, cap.out.encode(), (cap.err + logged).encode())
    return run


@pytest.fixture(scope="module")
def model(transformer_store, monkeypatch_module, tmp_path_factory):
    monkeypatch_module.setenv("MLFLOW_TRACKING_URI", transformer_store)
    mlflow.set_tracking_uri(transformer_store)
    return mlflow.pyfunc.load_model(CHAMPION, dst_path=str(tmp_path_factory.mktemp("champion")))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_a_long_line_passes_max_positions_and_the_file_is_still_translated(transformer_store, translate, model, tmp_path):
    m = model.unwrap_python_model()
    tokens = len(m.codec.encode_src([normalize(LONG)])[0]) + 1  # + EOS
    assert len(LONG) == 1920 and tokens > m.model.max_positions  # really too long for the model
    f = tmp_path / "in.de"
    f.write_text(f"{NORMAL}\n{LONG}\n{NORMAL}\n", encoding="utf-8")
    proc = translate(transformer_store, "--file", str(f), "--beam", "2", data=b"")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode().split("\n")[:-1]
    assert len(out) == 3 and out[0] == out[2] and out[0]  # the sentence after the long line too
    err = proc.stderr.decode()
    assert "Traceback" not in err and "line 2:" in err and "at most 127" in err


def test_the_cli_has_no_rest_character_limit(transformer_store, translate, tmp_path):
    f = tmp_path / "in.de"
    f.write_text(("Hund " * 401)[:2005] + "\n" + NORMAL + "\n", encoding="utf-8")
    proc = translate(transformer_store, "--file", str(f), "--beam", "1", data=b"")
    assert proc.returncode == 0 and len(proc.stdout.decode().split("\n")[:-1]) == 2, proc.stderr.decode()[-2000:]


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_bom_on_line_one_changes_nothing(transformer_store, translate, tmp_path, how):
    plain = f"{NORMAL}\nZwei Männer spielen.\n".encode()
    outs = []
    for data in (plain, b"\xef\xbb\xbf" + plain, plain.replace(b"\n", b"\r\n")):
        if how == "file":
            (tmp_path / "in.de").write_bytes(data)
            proc = translate(transformer_store, "--file", str(tmp_path / "in.de"), "--beam", "1", data=b"")
        else:
            proc = translate(transformer_store, "--beam", "1", data=data)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        outs.append(proc.stdout)
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_lines_of_zero_width_characters_stay_empty(transformer_store, translate, tmp_path, how):
    data = f"{NORMAL}\n\u200b\n\u2060\n\ufeff\n\u200b\u2060\ufeff\u00ad\n\u200e \u200f\n".encode()
    (tmp_path / "in.de").write_bytes(data)
    args = ("--file", str(tmp_path / "in.de")) if how == "file" else ()
    proc = translate(transformer_store, *args, "--beam", "1", data=data if how == "stdin" else b"")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode().split("\n")[:-1]
    assert len(out) == 6 and out[0] and out[1:] == [""] * 5


@pytest.mark.parametrize("raw, line, byte", [
    ("Ein Hund.\nEin Bär läuft.\n".encode("latin-1"), 2, 6),
    ("Größe\n".encode("cp1252"), 1, 3),
    (b"Ein Hund.\nOK\n\xff\xfeE\x00\n", 3, 1),
])
@pytest.mark.parametrize("how", ["file", "stdin"])
def test_a_file_that_is_not_utf8_is_one_line_naming_file_line_and_byte(transformer_store, translate, tmp_path, raw,
                                                                        line, byte, how):
    f = tmp_path / "latin1.de"
    f.write_bytes(raw)
    proc = translate(transformer_store, *(("--file", str(f)) if how == "file" else ()), data=raw if how == "stdin" else b"")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and proc.stdout == b""
    (msg,) = [x for x in err.splitlines() if x.startswith("nmt: error")]
    source = str(f) if how == "file" else "stdin"
    assert f"{source}: line {line}, byte {byte}" in msg and "iconv" in msg


@pytest.mark.parametrize("beam, bound", [("100000", "beam_size <= 16"), ("0", "1 <= beam_size")])
def test_a_beam_out_of_bounds_is_one_line(transformer_store, translate, beam, bound):
    proc = translate(transformer_store, "--beam", beam, data=f"{NORMAL}\n".encode())
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and bound in err


def test_predict_reads_text_the_same_way(model):
    """The Python predict: blank-looking lines stay blank, a BOM changes nothing, a long line
    is truncated and the rest of the batch translated, any length in process."""
    texts = [NORMAL, "\u200b\u2060", "\ufeff" + NORMAL, LONG, ("Hund " * 500), NORMAL + "\u200b"]
    out = model.predict(texts, params={"beam_size": 2})
    assert len(out) == 6 and out[1] == "" and out[0] == out[2] == out[5] and out[3] and out[4]


def test_translate_reproduces_the_evaluate_run_s_bleu(transformer_store, translate, multi30k_dir, tmp_path):
    """``nmt translate`` on test_2016_flickr (the evaluate run's sentences: the first
    data.test_limit) gives the evaluate run's hypotheses, so its BLEU exactly."""
    client = mlflow.tracking.MlflowClient(transformer_store)  # this store, whichever test ran before
    runs = client.search_runs([client.get_experiment_by_name("nmt").experiment_id], max_results=50)
    evaluate = next(r for r in runs if "test_2016_flickr/greedy/bleu" in r.data.metrics)
    path = client.download_artifacts(evaluate.info.run_id, "hypotheses/test_2016_flickr.greedy.txt",
                                     str(tmp_path))  # not a temp folder left in /tmp
    expected = Path(path).read_text(encoding="utf-8").split("\n")[:-1]
    with gzip.open(multi30k_dir / "test_2016_flickr.de.gz", "rb") as f:
        src = b"".join(f.readline() for _ in range(len(expected)))
    with gzip.open(multi30k_dir / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        refs = [normalize(f.readline()) for _ in range(len(expected))]
    proc = translate(transformer_store, "--beam", "1", data=src)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    hyps = proc.stdout.decode().split("\n")[:-1]
    assert hyps == expected
    bleu = corpus_scores(hyps, refs)["bleu"].score
    assert bleu == pytest.approx(evaluate.data.metrics["test_2016_flickr/greedy/bleu"], abs=1e-9)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_nul_bytes_and_blank_glyphs_mid_stream(transformer_store, translate, tmp_path, how):
    """NUL and other control bytes inside a line are spaces; lines of blank glyphs that are
    not Cf (Hangul fillers, NBSP, Braille blank, lone combining marks) stay empty."""
    lines = [NORMAL, "Ein Hund\x00läuft im Park.", "\x00\x00", "\u3164", "\u115f\u1160", "\u00a0",
             "\u2800 \u3000", "\u0301\u0301", NORMAL.replace(" ", "\u3164")]
    data = "\n".join(lines).encode() + b"\n"
    (tmp_path / "in.de").write_bytes(data)
    args = ("--file", str(tmp_path / "in.de")) if how == "file" else ()
    proc = translate(transformer_store, *args, "--beam", "1", data=data if how == "stdin" else b"")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode().split("\n")[:-1]
    assert len(out) == 9 and out[0] and out[0] == out[1] == out[8] and out[2:8] == [""] * 6


@pytest.mark.parametrize("make, expected", [
    (lambda d: d, "is a directory"),
    (lambda d: d / "missing.de", "no such file"),
    (lambda d: d / "absent" / "x.de", "no such file"),
    (lambda d: _write(d / "image.de", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00"), "binary file"),
    (lambda d: _write(d / "packed.de", gzip.compress(b"Ein Hund.\n" * 50)), "not UTF-8"),
    (lambda d: _write(d / "utf16.de", "Ein Hund.\n".encode("utf-16")), "iconv -f utf-16"),
])
def test_a_file_that_is_not_a_text_file_is_one_line(transformer_store, translate, tmp_path, make, expected):
    proc = translate(transformer_store, "--file", str(make(tmp_path)), "--beam", "1", data=b"")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and proc.stdout == b"", err[-2000:]
    (msg,) = [x for x in err.splitlines() if x.startswith("nmt: error")]
    assert expected in msg and ("--file" in msg or str(tmp_path) in msg), msg


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("args, expected", [
    (("evaluate.beam_size=wide",), "evaluate.beam_size: expected an integer, got 'wide'"),
    (("evaluate.max_len_ratio=[1]",), "evaluate.max_len_ratio: expected a number"),
    (("evaluate.length_penalty=-1",), "0 <= length_penalty <= 10"),
    (("evaluate.max_len_ratio=0",), "0 < max_len_ratio <= 4"),
])
def test_a_decoding_config_value_of_the_wrong_type_or_out_of_bounds_is_one_line(transformer_store, translate,
                                                                                  args, expected):
    proc = translate(transformer_store, *args, data=f"{NORMAL}\n".encode())
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err and expected in err and proc.stdout == b"", err


@pytest.mark.parametrize("texts, message", [
    (5, "inputs must be a list of strings, got int"), (None, "inputs must be a list of strings, got NoneType"),
    (NORMAL, "inputs must be a list of strings, got str"), ({"text": NORMAL}, "got dict"),
    ([NORMAL, 3], "inputs[1] is int"), ([NORMAL, None], "inputs[1] is NoneType"), ([[NORMAL]], "inputs[0] is list"),
    ([NORMAL.encode()], "inputs[0] is bytes"), ([], "inputs is an empty list"),
])
def test_predict_with_inputs_of_the_wrong_type_names_the_field(model, texts, message):
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        model.predict(texts, params={"beam_size": 1})
    assert message in err.value.message and NORMAL not in err.value.message


@pytest.mark.parametrize("params, field", [({"beam_size": 2.5}, "params.beam_size"), ({"beam_size": 99}, "params.beam_size"),
                                           ({"max_len_ratio": -1}, "params.max_len_ratio")])
def test_predict_with_params_out_of_bounds_names_the_field(model, params, field):
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        model.predict([NORMAL], params=params)
    assert err.value.message.startswith(field) and NORMAL not in err.value.message


@pytest.mark.parametrize("params", [{"beam_size": "wide"}, {"beam_size": True}, {"beam_size": [2]}, "beam_size=2"])
def test_predict_with_params_of_the_wrong_type_is_mlflow_s_one_line_naming_it(model, params):
    """In process MLflow checks params against the signature before the model runs (see the
    README): its error names the param, never the inputs."""
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        model.predict([f"{NORMAL} Erika Mustermann"], params=params)
    assert "Mustermann" not in err.value.message and ("beam_size" in err.value.message or "dictionary" in err.value.message)
