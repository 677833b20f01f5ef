"""Named random streams: the one list of the numbers that keep mosapp's seeded generators apart.

Every seeded draw is ``numpy.random.default_rng([seed, STREAM, *more])`` (:func:`stream_rng`):
the same seed with another stream number gives an independent generator, so a study's
condition order and its clip order never share draws, and a new stream never shifts an old
one. A number here must never change: plans, screen orders and training runs are reproduced
from them (a study's plan from its stored seed, a resumed training run from its step).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """The stream numbers (the second entry of a seeded generator's entropy)."""

    #: A study's condition order (the Williams design's labels): ``[seed, 1]``.
    PLAN_CONDITIONS = 1
    #: A study's clip order (the clips' cycle): ``[seed, 2]``.
    PLAN_CLIPS = 2
    #: One listener's clip placement search: ``[seed, 3, listener]``.
    PLAN_LISTENER = 3
    #: The training trials' condition order: ``[seed, 4]``.
    PLAN_TRAINING = 4
    #: One listener's gold trials' order: ``[seed, 5, listener]``.
    PLAN_GOLD = 5
    #: A training run's latent steps (``train.step_range``), from a step on: ``[seed, 7, step]``.
    TRAIN_STEPS = 7
    #: CCR: the clips of each condition, ``[seed, 800, condition]``; a listener's pairs, ``[seed, 801, listener]``.
    CCR_CLIPS = 800
    CCR_LISTENER = 801
    #: MUSHRA (ITU-R BS.1534): a listener's screens, ``[seed, 1534, listener(, screen)]``.
    MUSHRA = 1534


def stream_rng(seed: int, stream: Stream, *more: int) -> np.random.Generator:
    """``numpy.random.default_rng([seed, stream, *more])``."""
    return np.random.default_rng([int(seed), int(stream), *(int(m) for m in more)])


__all__ = ["Stream", "stream_rng"]
