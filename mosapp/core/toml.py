"""Reading TOML (study definitions, training configs): :mod:`tomllib`, or its backport ``tomli`` on Python 3.10.

Nesting deeper than :data:`MAX_DEPTH` (arrays in arrays, inline tables in inline tables) is a
:class:`TOMLDecodeError` like any other mistake in the text, not a RecursionError from the
parser's recursion.

>>> from mosapp.core.toml import TOMLDecodeError, loads
>>> loads('name = "sgc-12"')
{'name': 'sgc-12'}
"""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (declared in pyproject for < 3.11)
    import tomli as tomllib

#: What :func:`loads` raises for text that is not TOML.
TOMLDecodeError = tomllib.TOMLDecodeError
#: Arrays and inline tables nest at most this deep (a study or config nests 2 or 3 levels).
MAX_DEPTH = 64


def _depth(text: str) -> int:
    """Deepest nesting of ``[``/``{`` outside strings and comments (a table header ``[a]`` counts 1)."""
    depth = deepest = 0
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote in ('"', '"""'):
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                quote = ""
                continue
        elif c == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c in "\"'":
            quote = c * 3 if text.startswith(c * 3, i) else c
            i += len(quote)
            continue
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def loads(text: str) -> dict[str, Any]:
    """Parse a TOML document (a ``str``) into a dict.

    Raises:
        TOMLDecodeError: the text is not TOML, or nests deeper than :data:`MAX_DEPTH`.
    """
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise TOMLDecodeError(f"arrays or inline tables nest {depth} levels deep, more than the {MAX_DEPTH} allowed")
    try:
        return tomllib.loads(text)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise TOMLDecodeError(f"arrays or inline tables nest deeper than {MAX_DEPTH} levels") from None


__all__ = ["MAX_DEPTH", "TOMLDecodeError", "loads"]
