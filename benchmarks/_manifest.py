"""The excerpts of a manifest for the diagnosis scripts (benchmarks/mel_scales.py, high_band_regions.py).

Not part of the package: nothing under mosapp/ imports it.
"""

from __future__ import annotations

import sys

from mosapp.evaluation.clips import Excerpt, plan_excerpts


def manifest_excerpts(manifest: str, first: int = 0) -> list[Excerpt]:
    """The manifest's excerpts (the first ``first`` where given), or exit naming what cannot be read."""
    excerpts, problems = plan_excerpts([manifest])
    if problems:
        sys.exit("; ".join(p.reason for p in problems))
    return excerpts[:first] if first else excerpts
