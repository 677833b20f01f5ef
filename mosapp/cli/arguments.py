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


__all__ = ["bounded_float", "bounded_int"]
