"""What one translation request may ask and cost: the decoding options' bounds and their one
check (the REST endpoint, ``predict``, ``nmt translate`` and the config alike:
:func:`parse_params`); source length against the model's positions, the memory a decoding
batch needs and the time the whole request takes, estimated before any decoding starts.
Imports neither torch nor MLflow, so a bad ``--beam`` is answered before either loads;
:mod:`nmt.components.serving.inference` turns :class:`ParamError` into the REST endpoint's
``RequestError``.

Long sources are **truncated**, not refused: a source longer than the model accepts keeps its
first ``max_positions - 1`` tokens (EOS takes the last position), the caller gets a warning
naming the line, and every other sentence of the batch is translated as usual.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from nmt.components.decoding import LEN_RATIO, LENGTH_PENALTY
from nmt.components.models.arch_configs import ArchConfig
from nmt.components.serving.requests import env_number

if TYPE_CHECKING:  # annotations only: the bounds are checked before torch loads
    from nmt.components.models.base import Seq2SeqModel

log = logging.getLogger("nmt.translate")

MAX_BEAM = 16
MAX_LEN_RATIO = 4.0
MAX_LENGTH_PENALTY = 10.0


@dataclass(frozen=True)
class DecodeParams:
    beam_size: int = 5            # 1 = greedy
    max_len_ratio: float = LEN_RATIO            # decoding budget per source token
    length_penalty: float = LENGTH_PENALTY      # GNMT alpha
    align: bool = False           # add each translation's word alignment (serving.inference)


DEFAULT_PARAMS = asdict(DecodeParams())


class ParamError(ValueError):
    """A decoding option out of its bounds: ``message`` names it, ``field`` is ``params.<key>``."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


def _number(key: str, value: Any, integer: bool = False) -> float:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e300:
        value = 1e300 if value > 0 else -1e300  # a JSON integer of 400 digits: out of bounds, no OverflowError
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (integer and value != int(value)):
        kind = "a whole number" if integer else "a finite number"
        raise ParamError(f"params.{key} must be {kind}, got {type(value).__name__}", f"params.{key}")
    return value


def parse_params(params: dict[str, Any] | None) -> DecodeParams:
    """``predict``'s params -> :class:`DecodeParams`; :class:`ParamError` names the field
    and its bound (``params.beam_size=100000: at most 16``)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULT_PARAMS))
    if unknown:
        raise ParamError(f"params.{unknown[0]}: unknown; valid: {', '.join(DEFAULT_PARAMS)}", f"params.{unknown[0]}")
    p = {**DEFAULT_PARAMS, **{k: v for k, v in params.items() if v is not None}}
    beam = int(_number("beam_size", p["beam_size"], integer=True))
    ratio = float(_number("max_len_ratio", p["max_len_ratio"]))
    penalty = float(_number("length_penalty", p["length_penalty"]))
    if not isinstance(p["align"], bool):
        raise ParamError(f"params.align must be true or false, got {type(p['align']).__name__}", "params.align")
    for key, value, ok, bound in (("beam_size", beam, 1 <= beam <= MAX_BEAM, f"1 <= beam_size <= {MAX_BEAM}"),
                                  ("max_len_ratio", ratio, 0 < ratio <= MAX_LEN_RATIO,
                                   f"0 < max_len_ratio <= {MAX_LEN_RATIO:g}"),
                                  ("length_penalty", penalty, 0 <= penalty <= MAX_LENGTH_PENALTY,
                                   f"0 <= length_penalty <= {MAX_LENGTH_PENALTY:g}")):
        if not ok:
            raise ParamError(f"params.{key}={value:g} is out of bounds: {bound}", f"params.{key}")
    return DecodeParams(beam, ratio, penalty, p["align"])


MEMORY_ENV = "NMT_DECODE_MEMORY_MB"
DEFAULT_MEMORY_MB = 768       # working memory one decoding batch may take (weights not counted)
BYTES = 4                     # float32 activations
SAFETY = 1.5                  # allocator slack and the copies select_state makes each step
# Decoding time, in "work": per hypothesis and step, the positions it attends to (source S,
# target so far t) plus STEP_COST for the step's fixed part; the benchmark's 2-core CPU
# decoded WORK_RATE of it per second both for everyday sentences and for 511-token sources
# at beam 16 (BENCHMARKS.md, REST), which is what fitted STEP_COST.
STEP_COST = 160


def source_limit(model: Seq2SeqModel) -> int | None:
    """Source tokens a sentence may keep (EOS is added after them); None: no bound."""
    return None if model.max_positions is None else model.max_positions - 1


def fit_sources(ids: list[list[int]], limit: int | None, lines: list[int]) -> list[list[int]]:
    """Truncate each over-long token list to ``limit``; a warning per line (1-based ``lines``),
    never the text itself (it may be personal data and this may be a server log)."""
    if limit is None:
        return ids
    out = []
    for row, line in zip(ids, lines):
        if len(row) > limit:
            log.warning("line %d: %d source tokens, the model reads at most %d; translating its first %d",
                        line, len(row), limit, limit)
            row = row[:limit]
        out.append(row)
    return out


@dataclass(frozen=True)
class Shape:
    """The sizes of an architecture that decide decoding memory (from its config)."""

    vocab: int       # target vocabulary V
    width: int       # d_model, or the widest hidden size of an RNN
    layers: int      # decoder layers (state kept per layer)
    heads: int       # attention heads (encoder self-attention is heads x S x S)
    ff: int          # feed-forward width

    @classmethod
    def of(cls, config: ArchConfig, tgt_vocab: int) -> "Shape":
        values = {f.name: getattr(config, f.name) for f in fields(config)}
        dims = [v for k, v in values.items() if (k.endswith("_dim") or k == "d_model") and isinstance(v, int)]
        width = values.get("d_model") or max(dims, default=1)
        layers = values.get("num_decoder_layers") or values.get("num_layers") or 1
        return cls(tgt_vocab, width, layers, values.get("num_heads") or 1, values.get("ff_dim") or width)


def decode_bytes(shape: Shape, sentences: int, beam: int, src_len: int, tgt_len: int) -> int:
    """Upper estimate of the working memory (bytes) of decoding ``sentences`` together with
    ``beam`` hypotheses each: per hypothesis row, ~4 (R, V) score tensors per step (logits,
    the masked copy, log-softmax, running totals) and the decoder state (keys and values of
    every layer over source and target); per sentence, the encoder's attention (nh, S, S)."""
    rows = sentences * beam
    per_row = 4 * shape.vocab + 4 * shape.layers * shape.width * (src_len + tgt_len) + 2 * tgt_len
    per_sentence = 2 * shape.heads * src_len * src_len + src_len * (shape.ff + 4 * shape.width)
    return int(SAFETY * BYTES * (rows * per_row + sentences * per_sentence))


def memory_budget() -> int:
    """Bytes one decoding batch may take: ``$NMT_DECODE_MEMORY_MB`` or 768 MB."""
    return int(env_number(MEMORY_ENV, DEFAULT_MEMORY_MB) * 2**20)


def batch_size_for(shape: Shape, beam: int, src_len: int, tgt_len: int, most: int) -> int:
    """Sentences that fit in one batch at these lengths (at most ``most``); 0 when not even
    one does (the caller refuses the request)."""
    one = decode_bytes(shape, 1, beam, src_len, tgt_len)
    return min(most, memory_budget() // max(one, 1))


def decode_work(beam: int, sources: list[int], steps: list[int]) -> int:
    """Estimated decoding time of sentences (``sources``: tokens incl. EOS; ``steps``: each
    one's step budget) at ``beam``, in work units (``WORK_RATE`` per second on the benchmark's
    CPU): ``beam * sum_i T_i * (S_i + T_i / 2 + STEP_COST)``, an upper bound (every hypothesis
    runs to its budget)."""
    return int(beam * sum(t * (s + t / 2 + STEP_COST) for s, t in zip(sources, steps)))
