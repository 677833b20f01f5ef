"""The named random streams: numbers that never change, and the generator they name."""

from __future__ import annotations

import numpy as np

from mosapp.core.streams import Stream, stream_rng


def test_the_stream_numbers_never_change():
    # Stored study seeds and resumed training runs are reproduced from these numbers.
    assert {s.name: int(s) for s in Stream} == {
        "PLAN_CONDITIONS": 1, "PLAN_CLIPS": 2, "PLAN_LISTENER": 3, "PLAN_TRAINING": 4, "PLAN_GOLD": 5,
        "TRAIN_STEPS": 7, "CCR_CLIPS": 800, "CCR_LISTENER": 801, "MUSHRA": 1534}
    assert len({int(s) for s in Stream}) == len(Stream)


def test_a_stream_is_numpys_generator_of_seed_stream_and_more():
    got = stream_rng(11, Stream.PLAN_LISTENER, 4).permutation(20)
    np.testing.assert_array_equal(got, np.random.default_rng([11, 3, 4]).permutation(20))
    assert not np.array_equal(stream_rng(11, Stream.PLAN_CLIPS).permutation(20),
                              stream_rng(11, Stream.PLAN_CONDITIONS).permutation(20))
