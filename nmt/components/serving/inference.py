"""Translate raw sentences with a loaded model: the decoding options checked against their
bounds before any work, the text read the one way (:func:`nmt.components.data.text.normalize`),
long sources truncated with a warning, and batches sized to the memory budget.

Bounds (the REST endpoint, ``predict`` and ``nmt translate`` alike):
``1 <= beam_size <= 16``, ``0 < max_len_ratio <= 4``, ``0 <= length_penalty <= 10``; in the
REST endpoint also the decoding work of the whole request (:func:`_check_work`).

``align: true`` adds each translation's word alignment, ``translation ||| i-j ...``
(:mod:`nmt.components.serving.aligned`, imported only then). A blank line gives `` ||| ``.

:class:`TranslatorCore` is the translator without MLflow: a logged model's files in
(``weights.pt``, a state_dict read with ``weights_only=True``, ``model_config.json`` and the
two tokenizers), ``predict(texts, params)`` out. The MLflow pyfunc
(:class:`~nmt.components.serving.translator.Translator`) is a thin shell around it; ``nmt
translate`` uses it directly, so a call answered from a local copy never imports MLflow
(about 1 s of a one-sentence call's start-up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nmt.components.serving import bounds
from nmt.components.serving.bounds import (MEMORY_ENV, DecodeParams, Shape, batch_size_for, decode_bytes, decode_work,
                                           fit_sources, memory_budget, source_limit)
from nmt.components.data.batching import source_batch
from nmt.components.data.tokenizer import TextCodec
from nmt.components.decoding.search import step_budget, translate_ids
from nmt.components.models.base import Seq2SeqModel
from nmt.components.models.factory import build, load_spec
from nmt.components.serving.requests import (WORK_ENV, RequestError, check_input, internal_error, past_deadline,
                                             request_deadline, request_timeout, work_limit)
from nmt.components.training.devices import inference_device
from nmt.components.data.text import normalize
from nmt.components.decoding import LEN_EXTRA

BATCH_SIZE = 64             # sentences decoded together at most (fewer when memory says so)
ALIGN_SEP = " ||| "         # translation ||| its Pharaoh links (align: true)


def parse_params(params: dict[str, Any] | None) -> DecodeParams:
    """``predict``'s params -> :class:`DecodeParams`; :class:`RequestError` names the field
    and its bound (``params.beam_size=100000: at most 16``)."""
    try:
        return bounds.parse_params(params)
    except bounds.ParamError as err:
        raise RequestError(err.message, err.field) from None


def _batch_size(shape: Shape, p: DecodeParams, longest: int, steps: int, line: int) -> int:
    """Sentences per batch for the longest source (tokens incl. EOS; ``line``: its 1-based line);
    refuses a request whose single sentence would not fit in the memory budget."""
    n = batch_size_for(shape, p.beam_size, longest, steps, BATCH_SIZE)
    if n < 1:
        need = decode_bytes(shape, 1, p.beam_size, longest, steps) / 2**20
        raise RequestError(f"params.beam_size={p.beam_size} with the {longest}-token source of line {line} needs "
                           f"~{need:.0f} MB to decode, above the decoding memory budget of "
                           f"{memory_budget() / 2**20:.0f} MB (${MEMORY_ENV}); use a smaller beam_size or "
                           "shorter sentences", "params.beam_size")
    return n


def _check_work(model: Seq2SeqModel, p: DecodeParams, lengths: list[int]) -> None:
    """Refuse, before decoding, a REST request whose estimated decoding time exceeds the
    server's work limit (``lengths``: source tokens incl. EOS)."""
    limit = work_limit()
    if limit is None:
        return
    steps = [step_budget(model, int(p.max_len_ratio * n) + LEN_EXTRA) for n in lengths]
    work = decode_work(p.beam_size, lengths, steps)
    if work > limit:
        raise RequestError(f"inputs: {len(lengths)} sentences of up to {max(lengths)} tokens at beam_size "
                           f"{p.beam_size} need ~{work / 1e6:.1f}M units of decoding work; at most "
                           f"{limit / 1e6:.1f}M per request (${WORK_ENV}; the request timeout is "
                           f"{request_timeout():g} s); send fewer or shorter sentences or a smaller beam_size",
                           "inputs")


def translate_texts(model: Seq2SeqModel, codec: TextCodec, texts: list[str], p: DecodeParams) -> list[str]:
    """Translations in input order; a line that is blank after normalisation stays blank.
    Sentences of similar length are decoded together; over-long sources are truncated
    (a warning names the 1-based line)."""
    clean = [normalize(t) for t in texts]
    out = [ALIGN_SEP if p.align else ""] * len(texts)
    todo = [i for i, t in enumerate(clean) if t]
    if not todo:
        return out
    ids = dict(zip(todo, fit_sources(codec.encode_src([clean[i] for i in todo]), source_limit(model),
                                     [i + 1 for i in todo])))
    todo.sort(key=lambda i: len(ids[i]))
    _check_work(model, p, [len(ids[i]) + 1 for i in todo])
    longest = len(ids[todo[-1]]) + 1  # + EOS
    steps = step_budget(model, int(p.max_len_ratio * longest) + LEN_EXTRA)  # as decoding.max_target_len
    shape = Shape.of(model.cfg, codec.tgt.get_vocab_size())
    size = _batch_size(shape, p, longest, steps, todo[-1] + 1)
    deadline = request_deadline()  # the estimate can be wrong (a busier CPU): never decode past the 504
    if p.align:
        from nmt.components.serving.aligned import aligned_translations  # the plain path loads none of it
    for start in range(0, len(todo), size):
        if start:
            past_deadline(deadline, start, len(todo))
        chunk = todo[start:start + size]
        src, src_mask = source_batch([ids[i] for i in chunk])
        if p.align:
            hyp, aligned = aligned_translations(model, codec, src, src_mask, [ids[i] for i in chunk], p, LEN_EXTRA)
        else:
            hyp = translate_ids(model, src, src_mask, beam_size=p.beam_size, max_len_ratio=p.max_len_ratio,
                                max_len_extra=LEN_EXTRA, length_penalty=p.length_penalty)
        for k, (i, h) in enumerate(zip(chunk, codec.decode_tgt(hyp))):
            out[i] = h + ALIGN_SEP + aligned[k] if p.align else h
    return out


ARTIFACTS = ("weights", "model_config", "src_tokenizer", "tgt_tokenizer")  # the logged model's artifact keys


class TranslatorCore:
    """A loaded model and its codec on this process's inference device, in eval mode."""

    def __init__(self, model: Seq2SeqModel, codec: TextCodec) -> None:
        self.model, self.codec = model, codec

    @classmethod
    def from_artifacts(cls, artifacts: Mapping[str, str]) -> TranslatorCore:
        """From the paths of the logged model's artifacts (:data:`ARTIFACTS`)."""
        model = build(load_spec(artifacts["model_config"]))
        model.load_state_dict(torch.load(artifacts["weights"], map_location="cpu", weights_only=True))
        model.to(inference_device()).eval()
        return cls(model, TextCodec.from_files(artifacts["src_tokenizer"], artifacts["tgt_tokenizer"]))

    def translate(self, texts: list[str], beam_size: int, max_len_ratio: float, length_penalty: float,
                  align: bool = False) -> list[str]:
        """Translations in input order; a line blank after normalisation stays blank (with
        ``align``, each is ``translation ||| i-j ...``)."""
        return translate_texts(self.model, self.codec, texts,
                               DecodeParams(beam_size, max_len_ratio, length_penalty, align))

    def predict(self, texts: Any, params: dict[str, Any] | None = None) -> list[str]:
        """Raw sentences -> translations, one each; params ``beam_size``, ``max_len_ratio``,
        ``length_penalty`` within :mod:`nmt.components.serving.bounds`' bounds, else RequestError;
        ``align: true`` adds each one's word alignment (``translation ||| i-j ...``)."""
        try:
            checked = check_input(texts)
            p = parse_params(params)  # bounds first: no work starts for a request out of them
            return self.translate(checked, p.beam_size, p.max_len_ratio, p.length_penalty, p.align)
        except RequestError:
            raise
        except Exception as err:  # a 500 with a request id, never a stack trace in the answer
            raise internal_error(err) from None
