"""Translating raw sentences without MLflow: the request bounds, the memory estimate, long
sources and the decode budget against ``max_positions``, and the one reading of text. A tiny
real tokenizer and a tiny Transformer (untrained: it decodes to its full budget)."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from nmt.components.serving import bounds as budget
from nmt.components.data.tokenizer import TextCodec, train_tokenizer
from nmt.components.decoding.search import beam_search, greedy_decode, step_budget
from nmt.components.serving.bounds import DecodeParams, MAX_BEAM
from nmt.components.serving.inference import parse_params, translate_texts
from nmt.components.serving.requests import WORK_ENV, WORK_RATE, MAX_CHARS, RequestError, check_input, internal_error, work_limit
from nmt.components.data.text import normalize
from tests.conftest import tiny_net

CORPUS = ["Ein Hund läuft im Park.", "A dog runs in the park.", "Zwei Männer spielen Fußball.",
          "Two men play football.", "Eine Frau liest ein Buch.", "A woman reads a book."] * 5
NAME = "Erika Mustermann"  # a person's name: never in an error or a log line


@pytest.fixture(scope="module")
def codec() -> TextCodec:
    tok = train_tokenizer(CORPUS, kind="bpe", vocab_size=120)
    return TextCodec(tok, tok)


def transformer(codec: TextCodec, max_positions: int = 24):
    torch.manual_seed(0)
    v = codec.src.get_vocab_size()
    return tiny_net({"arch": "transformer", "d_model": 12, "num_encoder_layers": 1, "num_decoder_layers": 1,
                     "num_heads": 2, "ff_dim": 16, "dropout": 0.0, "max_positions": max_positions}, v, v,
                    shared=True).eval()


@pytest.mark.parametrize("params, field, bound", [
    ({"beam_size": 100000}, "params.beam_size", f"beam_size <= {MAX_BEAM}"),
    ({"beam_size": MAX_BEAM + 1}, "params.beam_size", f"beam_size <= {MAX_BEAM}"),
    ({"beam_size": 0}, "params.beam_size", "1 <= beam_size"),
    ({"beam_size": 2.5}, "params.beam_size", "a whole number"),
    ({"beam_size": True}, "params.beam_size", "a whole number"),
    ({"max_len_ratio": -3}, "params.max_len_ratio", "0 < max_len_ratio"),
    ({"max_len_ratio": 0}, "params.max_len_ratio", "0 < max_len_ratio"),
    ({"max_len_ratio": 1e9}, "params.max_len_ratio", "max_len_ratio <= 4"),
    ({"max_len_ratio": float("nan")}, "params.max_len_ratio", "a finite number"),
    ({"length_penalty": -1}, "params.length_penalty", "0 <= length_penalty"),
    ({"length_penalty": -0.01}, "params.length_penalty", "0 <= length_penalty"),
    ({"length_penalty": float("inf")}, "params.length_penalty", "a finite number"),
    ({"length_penalty": "high"}, "params.length_penalty", "a finite number"),
    ({"beam": 4}, "params.beam", "unknown; valid: beam_size"),
])
def test_every_param_has_bounds_named_in_the_error(params, field, bound):
    with pytest.raises(RequestError) as err:
        parse_params(params)
    assert err.value.field == field and bound in err.value.message and field in err.value.message
    assert json.loads(err.value.serialize_as_json())["field"] == field


def test_params_within_bounds_and_defaults():
    assert parse_params(None) == DecodeParams()
    assert parse_params({"beam_size": 16.0, "max_len_ratio": 4, "length_penalty": 0}) == DecodeParams(16, 4.0, 0.0)
    assert parse_params({"beam_size": None}).beam_size == 5  # null: the default


def test_a_request_error_keeps_its_message_when_the_server_rewrites_it():
    """MLflow's scoring server does ``e.message = f"Failed to predict data '{data}'..."``."""
    err = RequestError("inputs[0] is int, not a string", "inputs[0]")
    err.message = f"Failed to predict data '[{NAME}]'. \nError: {err.message}"
    body = json.loads(err.serialize_as_json())
    assert body["message"] == "inputs[0] is int, not a string" and NAME not in json.dumps(body)
    assert err.get_http_status_code() == 400 and "stack_trace" not in body


def test_an_unexpected_error_is_a_500_with_a_request_id_and_no_text(caplog):
    try:
        raise TypeError(f"cannot tokenize {NAME!r}")
    except TypeError as e:
        err = internal_error(e)
    body = json.loads(err.serialize_as_json())
    assert err.get_http_status_code() == 500 and body["request_id"] in body["message"]
    assert NAME not in json.dumps(body) and "stack_trace" not in body
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert body["request_id"] in logged[0].getMessage() and all(NAME not in r.getMessage() for r in logged)


@pytest.mark.parametrize("texts, field", [("Ein Hund.", "inputs"), ({"text": "Ein Hund."}, "inputs"),
                                          ([], "inputs"), (["Hund", 1], "inputs[1]"), ([None], "inputs[0]"),
                                          ([["Ein", "Hund"]], "inputs[0]")])
def test_bad_inputs_name_the_field(texts, field):
    with pytest.raises(RequestError) as err:
        check_input(texts)
    assert err.value.field == field


def test_the_character_limit_is_the_server_s_alone(monkeypatch):
    long = "Hund " * MAX_CHARS
    assert check_input([long]) == [long]  # in process / CLI: any length
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
    with pytest.raises(RequestError, match=f"at most {MAX_CHARS}"):
        check_input([long])


@pytest.mark.parametrize("ratio", [1.5, 4.0])
def test_the_decode_budget_never_passes_max_positions(codec, ratio):
    """1.5 * S + 10 (or 4 * S + 10) for a source of max_positions - 1 tokens is far beyond
    max_positions; greedy and beam search stop at it instead of raising."""
    model = transformer(codec, max_positions=24)
    src = torch.full((2, 23), 5)
    mask = torch.ones(2, 23, dtype=torch.bool)
    budget_len = int(ratio * 23) + 10
    assert budget_len > 24 and step_budget(model, budget_len) == 24
    ids, _ = greedy_decode(model, src, mask, budget_len)
    assert ids.shape[1] <= 24
    hyps = beam_search(model, src, mask, 3, budget_len, with_attention=False)
    assert all(len(h.tokens) <= 24 for hs in hyps for h in hs)


def test_a_long_source_is_truncated_with_a_warning_naming_the_line(codec, caplog):
    model = transformer(codec, max_positions=24)
    long = "ZWEI MÄNNER SPIELEN FUSSBALL IM PARK " * 4
    assert len(codec.encode_src([normalize(long)])[0]) + 1 > model.max_positions  # really too long
    texts = ["Ein Hund läuft im Park.", long, "", "Eine Frau liest ein Buch."]
    with caplog.at_level(logging.WARNING, logger="nmt.translate"):
        out = translate_texts(model, codec, texts, DecodeParams(beam_size=2))
    assert len(out) == 4 and out[2] == "" and all(isinstance(t, str) for t in out)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "nmt.translate"]
    assert warning.startswith("line 2:") and "at most 23" in warning and "MÄNNER" not in warning


@pytest.mark.parametrize("invisible", ["\u200b", "\u2060", "\ufeff", "\u200b\u200c\u200d", "\u00ad \u2061"])
def test_lines_of_invisible_characters_stay_empty(codec, invisible):
    out = translate_texts(transformer(codec), codec, ["Ein Hund.", invisible, " \t "], DecodeParams(beam_size=1))
    assert out[1:] == ["", ""]


@pytest.mark.parametrize("marked", ["\ufeffEin Hund läuft im Park.", "Ein\u200b Hund läuft im\u2060 Park.",
                                    "Ein Hund läuft im Park.\u200e", "Ein Hund läuft\r im Park."])
def test_invisible_characters_do_not_change_a_translation(codec, marked):
    model = transformer(codec)
    plain, other = translate_texts(model, codec, ["Ein Hund läuft im Park.", marked], DecodeParams(beam_size=1))
    assert plain == other


def test_the_memory_estimate_refuses_what_would_not_fit(codec, monkeypatch):
    model = transformer(codec, max_positions=512)
    monkeypatch.setenv(budget.MEMORY_ENV, "1")  # a 1 MB budget
    with pytest.raises(RequestError) as err:
        translate_texts(model, codec, ["Ein Hund.", "", "Ein Hund läuft im Park. " * 40, "Ein Hund läuft."],
                        DecodeParams(beam_size=MAX_BEAM))
    assert err.value.field == "params.beam_size" and "NMT_DECODE_MEMORY_MB" in err.value.message
    assert "source of line 3 needs" in err.value.message  # the longest: the line to shorten


def test_the_estimate_shrinks_the_batch_instead_of_refusing():
    shape = budget.Shape(vocab=8000, width=256, layers=3, heads=8, ff=1024)
    one = budget.decode_bytes(shape, 1, MAX_BEAM, 512, 512)
    assert budget.decode_bytes(shape, 2, MAX_BEAM, 512, 512) > one  # grows with sentences
    assert budget.decode_bytes(shape, 1, MAX_BEAM, 512, 512) > budget.decode_bytes(shape, 1, 1, 512, 512)
    assert 1 <= budget.batch_size_for(shape, MAX_BEAM, 512, 512, 64) < 64
    assert budget.batch_size_for(shape, 1, 20, 40, 64) == 64


def test_prepare_and_inference_share_one_normalisation():
    from nmt.components.data import clean
    from nmt.components.serving import inference
    assert clean.normalize is inference.normalize is normalize


@pytest.mark.parametrize("broken", ["Ein Hund\nläuft im Park.", "Ein Hund\r\nläuft im Park.",
                                    "Ein Hund\u2028läuft im Park.", "Ein Hund\x0bläuft\x0c im Park."])
def test_a_line_break_inside_one_sentence_is_a_space(codec, broken):
    model = transformer(codec)
    one, other = translate_texts(model, codec, ["Ein Hund läuft im Park.", broken], DecodeParams(beam_size=1))
    assert one == other


@pytest.mark.parametrize("blank", ["\u3164", "\u115f", "\u00a0", "\u0301\u0301", "\u3164 \u115f\u1160\uffa0",
                                   "\u2800", "\u034f\ufe0f", "\u0308 \u20dd", "\u00a0\u2007\u202f\u3000"])
def test_lines_of_other_invisible_characters_stay_empty(codec, blank):
    """Not category Cf, but drawn as nothing (Hangul fillers, Braille blank, NBSP and other
    spaces, variation selectors) or only combining marks with no letter: a blank line."""
    assert normalize(blank) == ""
    assert translate_texts(transformer(codec), codec, [blank], DecodeParams(beam_size=1)) == [""]


def test_a_filler_between_words_is_a_space_and_a_mark_on_a_letter_stays():
    assert normalize("Ein\u3164Hund\u2800läuft") == "Ein Hund läuft"
    assert normalize("Cafe\u0301") == "Café" and normalize("\u0301Ein Hund") == "\u0301Ein Hund"


def test_the_work_bound_refuses_a_request_before_decoding_in_the_server(codec, monkeypatch):
    """REST only: estimated decoding beyond the work bound is a 400 naming it; the same
    request in process (no request timeout there) is translated."""
    model = transformer(codec, max_positions=64)
    texts, p = ["Ein Hund läuft im Park. " * 8] * 20, DecodeParams(beam_size=4, max_len_ratio=4)
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
    assert work_limit() == int(WORK_RATE * 0.75 * 60)  # 3/4 of MLflow's default 60 s
    monkeypatch.setenv("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT", "120")
    assert work_limit() == int(WORK_RATE * 0.75 * 120)
    monkeypatch.setenv(WORK_ENV, "100000")
    with pytest.raises(RequestError) as err:
        translate_texts(model, codec, texts, p)
    assert err.value.field == "inputs" and "at most 0.1M per request ($NMT_SERVE_MAX_WORK" in err.value.message
    assert "timeout is 120 s" in err.value.message and "Hund" not in err.value.message
    assert len(translate_texts(model, codec, texts[:1], DecodeParams(beam_size=1))) == 1  # a small one passes
    monkeypatch.delenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT")
    assert work_limit() is None and len(translate_texts(model, codec, texts, p)) == 20


def test_the_work_estimate_grows_with_beam_sentences_and_length():
    base = budget.decode_work(1, [10], [26])
    assert budget.decode_work(2, [10], [26]) == 2 * base == budget.decode_work(1, [10, 10], [26, 26])
    assert budget.decode_work(1, [100], [160]) > 10 * base


def test_decoding_stops_between_batches_once_the_request_timeout_has_passed(codec, monkeypatch, caplog):
    """If the estimate was wrong (a busier CPU), a request past MLflow's timeout (the caller
    already has its 504) stops after the batch it is in, with a warning of counts only."""
    monkeypatch.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "true")
    monkeypatch.setenv("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT", "0.000001")
    monkeypatch.setenv(WORK_ENV, "1e12")
    texts = [f"{NAME} läuft im Park."] * 200  # 4 batches of 64
    with pytest.raises(RequestError) as err:
        translate_texts(transformer(codec), codec, texts, DecodeParams(beam_size=1))
    assert err.value.get_http_status_code() == 503 and "after 64 of 200 sentences" in err.value.message
    assert "decoding stopped" in caplog.text and NAME not in caplog.text and NAME not in err.value.message
