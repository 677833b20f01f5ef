"""The memory ceiling: what a command may allocate for the audio, images and streams it works on.

Every command estimates, from what a file's header declares (its length, rate and channels),
how much memory its work would take, and refuses in one sentence **before allocating** when
that is more than the ceiling: 2 GiB by default, ``--max-memory`` (or the environment
variable ``MOSAPP_MAX_MEMORY``) to change it, e.g. ``--max-memory 6G``. The ceiling counts the
data a command holds, not the program itself (Python, numpy and torch take about another
0.4 GB of memory and 1.2 GB of address space). Inflating compressed data is bounded by the
size its header announces (:func:`inflate_exact`), so a small file cannot expand past it.

>>> parse_size("1.5G")
1610612736
"""

from __future__ import annotations

import os
import re
import zlib

from mosapp.core.errors import BitstreamError, MemoryLimitError, MosappError

#: The ceiling when nothing sets one: 2 GiB.
DEFAULT_MAX_MEMORY = 2 * 1024**3
#: The environment variable that sets the ceiling (``--max-memory`` wins over it).
ENV_VAR = "MOSAPP_MAX_MEMORY"
#: The smallest ceiling accepted: below this nothing mosapp does fits.
MIN_MAX_MEMORY = 64 * 1024**2

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

_ceiling: int | None = None


def parse_size(text: str) -> int:
    """``"2G"``, ``"1500M"``, ``"3.5GB"``, ``"2GiB"`` or a number of bytes, as bytes.

    Raises:
        MosappError: not such a size, or below :data:`MIN_MAX_MEMORY`.
    """
    m = _SIZE.match(str(text))
    if not m:
        raise MosappError(f'The memory ceiling "{text}" is not a size; give e.g. 2G, 1500M or 3.5G.')
    size = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if size < MIN_MAX_MEMORY:
        raise MosappError(f'The memory ceiling "{text}" is below the {describe(MIN_MAX_MEMORY)} mosapp needs; '
                          f"give e.g. 2G.")
    return size


def set_max_memory(size: int | str | None) -> None:
    """Set the ceiling for this process (None: back to the environment's or the default)."""
    global _ceiling
    _ceiling = None if size is None else (parse_size(size) if isinstance(size, str) else int(size))


def max_memory() -> int:
    """The ceiling in bytes: :func:`set_max_memory`'s, else ``MOSAPP_MAX_MEMORY``'s, else 2 GiB."""
    if _ceiling is not None:
        return _ceiling
    env = os.environ.get(ENV_VAR)
    if env:
        return parse_size(env)
    return DEFAULT_MAX_MEMORY


def describe(n_bytes: float) -> str:
    """``n_bytes`` for a message: "2.0 GB", "640 MB"."""
    if n_bytes >= 1024**3:
        return f"{n_bytes / 1024**3:.1f} GB"
    return f"{n_bytes / 1024**2:.0f} MB"


def require(n_bytes: float, what: str) -> None:
    """Refuse ``what`` (e.g. "Decoding song.sgc (62.0 minutes)") when it would need more than the ceiling.

    Raises:
        MemoryLimitError: one sentence naming the estimate, the ceiling and how to change it.
    """
    limit = max_memory()
    if n_bytes > limit:
        want = -(-int(n_bytes * 1.25) // 1024**3)
        raise MemoryLimitError(
            f"{what} would need about {describe(n_bytes)} of memory, more than mosapp's ceiling of "
            f"{describe(limit)}; raise it with --max-memory {want}G (or {ENV_VAR}) where the machine has that "
            f"much, or give a shorter file."
        )


def inflate_exact(data: bytes, size: int, what: str) -> bytes:
    """zlib-inflate ``data``, which must expand to exactly ``size`` bytes, never allocating more than ``size + 1``.

    Raises:
        BitstreamError: ``data`` is damaged, or expands to more or less than ``size`` bytes (a
            "zlib bomb" is refused after ``size + 1`` bytes, not inflated to its end).
    """
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, size + 1)
    except zlib.error as exc:
        raise BitstreamError(f"{what} is damaged ({exc}).") from None
    if len(raw) > size or inflater.unconsumed_tail:
        raise BitstreamError(f"{what} expands to more than the {size} bytes its header announces.")
    if len(raw) < size or not inflater.eof or inflater.unused_data:
        raise BitstreamError(f"{what} has the wrong size (it expands to {len(raw)} bytes, {size} announced) or "
                             f"is cut short.")
    return raw


__all__ = ["DEFAULT_MAX_MEMORY", "ENV_VAR", "describe", "inflate_exact", "max_memory", "parse_size", "require",
           "set_max_memory"]
