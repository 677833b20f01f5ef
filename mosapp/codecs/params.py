"""Typed, range-checked reading of a stream's codec parameters (``Encoded.params``).

Each codec declares what its header may hold by reading it through these functions in its
``check_stream``, before anything is allocated or decoded: a value of the wrong type, out
of the codec's declared range or not one of its choices is an :class:`InvalidStreamError`
naming the codec, the key, the value and what is accepted (the command line prefixes the
file: "IN.sgc is not a valid mosapp file: …").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mosapp.codecs.base import Encoded
from mosapp.core.errors import InvalidStreamError

_MISSING = object()


def _fail(encoded: Encoded, key: str, what: str) -> InvalidStreamError:
    return InvalidStreamError(f"the {encoded.codec} stream's parameter {key} {what}")


def _get(encoded: Encoded, key: str, default: Any) -> Any:
    if key in encoded.params:
        return encoded.params[key]
    if default is _MISSING:
        raise _fail(encoded, key, "is missing")
    return default


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(encoded: Encoded, key: str, lo: float, hi: float, *, integer: bool = False, unit: str = "",
           default: Any = _MISSING) -> float:
    """``params[key]`` as a finite number in [lo, hi] (a whole number with ``integer``)."""
    value = _get(encoded, key, default)
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        kind = "a whole number" if integer else "a finite number"
        raise _fail(encoded, key, f"is {_short(value)}, not {kind}")
    if not lo <= value <= hi:
        raise _fail(encoded, key, f"is {value:g}{unit}, outside the codec's range {lo:g} to {hi:g}{unit}")
    return int(value) if integer else float(value)


def numbers(encoded: Encoded, key: str, count: int, lo: float, hi: float, *, unit: str = "") -> list[float]:
    """``params[key]`` as a list of exactly ``count`` finite numbers, each in [lo, hi]."""
    values = _get(encoded, key, _MISSING)
    if not isinstance(values, list) or len(values) != count:
        raise _fail(encoded, key, f"is {_short(values)}; it needs one number per coded channel ({count})")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(encoded, key, f"holds {_short(value)}, not a finite number")
        if not lo <= value <= hi:
            raise _fail(encoded, key, f"holds {value:g}{unit}, outside the codec's range {lo:g} to {hi:g}{unit}")
        out.append(float(value))
    return out


def choice(encoded: Encoded, key: str, allowed: Iterable[Any], *, default: Any = _MISSING) -> Any:
    """``params[key]``, which must be one of ``allowed`` (same type: True is not 1)."""
    allowed = list(allowed)
    value = _get(encoded, key, default)
    if not any(type(value) is type(a) and value == a for a in allowed):
        shown = ", ".join(str(a) for a in allowed)
        raise _fail(encoded, key, f"is {_short(value)}; this codec writes {shown}")
    return value


def hex_bytes(encoded: Encoded, key: str, max_bytes: int, *, default: Any = _MISSING) -> bytes:
    """``params[key]`` as a hex string of at most ``max_bytes`` bytes."""
    value = _get(encoded, key, default)
    if not isinstance(value, str) or len(value) > 2 * max_bytes:
        raise _fail(encoded, key, f"is {_short(value)}, not a hex string of at most {max_bytes} bytes")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _fail(encoded, key, f"is {_short(value)}, not a hex string") from None


__all__ = ["choice", "hex_bytes", "number", "numbers"]
