"""The decoding options' bounds, and their one check (the REST endpoint, ``predict``,
``nmt translate`` and the config alike). Imports neither torch nor MLflow, so a bad
``--beam`` is answered before either loads; :mod:`nmt.components.serving.inference` turns
:class:`ParamError` into the REST endpoint's ``RequestError``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from nmt.components.decoding import LEN_RATIO, LENGTH_PENALTY

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
