"""Argument types the commands share: bounded numbers that fail as one-line usage errors."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def bounded_int(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``lo`` to ``hi``, else a one-line usage error."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a whole number from {lo} to {hi}")
        return value

    parse.__name__ = "whole number"
    return parse


def bounded_float(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``lo`` to ``hi``, else a one-line usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give one from {lo:g} to {hi:g}") from None
        if not math.isfinite(value) or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is out of range; give a number from {lo:g} to {hi:g}")
        return value

    parse.__name__ = "number"
    return parse


def memory_size(text: str) -> int:
    """An argparse ``type``: a memory size (``2G``, ``1500M``, bytes), else a one-line usage error."""
    from mosapp.core.errors import MosappError  # noqa: PLC0415 - kept off the parser's import path
    from mosapp.core.memory import parse_size  # noqa: PLC0415

    try:
        return parse_size(text)
    except MosappError as exc:
        raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None


def add_max_memory(p: argparse.ArgumentParser) -> None:
    """``--max-memory SIZE``: the memory ceiling (:mod:`mosapp.core.memory`)."""
    p.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                   help="refuse work that would need more memory than SIZE, e.g. 4G (default 2G, or "
                        "$MOSAPP_MAX_MEMORY); checked from the file's header before anything is allocated")


__all__ = ["add_max_memory", "bounded_float", "bounded_int", "memory_size"]
