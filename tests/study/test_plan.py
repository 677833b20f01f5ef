"""Trial plans: seeded, balanced over conditions, positions and clips; no clip twice in a row."""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import pytest

from mosapp.study.plan import back_to_back, listener_plan, williams_rows


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7])
def test_williams_rows_are_balanced(n):
    rows = williams_rows(n)
    assert len(rows) == (n if n % 2 == 0 else 2 * n)
    for row in rows:
        assert sorted(row) == list(range(n))
    for col in range(n):
        counts = Counter(row[col] for row in rows)
        assert set(counts.values()) == {len(rows) // n}
    if n > 1:
        pairs = Counter((a, b) for row in rows for a, b in zip(row, row[1:]))
        assert set(pairs) == set(permutations(range(n), 2))
        assert len(set(pairs.values())) == 1


def _plans(n_clips, n_cond, trials, listeners, repetitions=1, training=0, seed=5):
    clips = [f"clip{i}" for i in range(n_clips)]
    conds = ["reference"] + [f"codec{j}" for j in range(n_cond - 1)]
    return clips, conds, [
        listener_plan(clips=clips, conditions=conds, trials=trials, repetitions=repetitions, seed=seed,
                      listener_index=i, training_trials=training)
        for i in range(listeners)
    ]


@pytest.mark.parametrize("n_clips, n_cond, repetitions", [(3, 4, 1), (3, 5, 1), (4, 3, 2), (5, 6, 1)])
def test_full_design_balances_conditions_positions_and_pairs(n_clips, n_cond, repetitions):
    trials = n_clips * n_cond * repetitions
    rows = n_cond if n_cond % 2 == 0 else 2 * n_cond
    clips, conds, plans = _plans(n_clips, n_cond, trials, 2 * rows, repetitions, training=2)
    by_position = Counter()
    for plan in plans:
        assert [t.is_training for t in plan] == [True] * 2 + [False] * trials
        rated = [t for t in plan if not t.is_training]
        # every condition equally often, every (clip, condition) pair `repetitions` times
        assert Counter(t.condition for t in rated) == {c: trials // n_cond for c in conds}
        assert Counter((t.clip, t.condition) for t in rated) == {(a, b): repetitions for a in clips for b in conds}
        assert "reference" in {t.condition for t in rated}  # the hidden reference is in every plan
        # the same clip never follows itself (avoidable with 3+ clips)
        assert back_to_back(plan) == 0
        by_position.update((i, t.condition) for i, t in enumerate(rated))
    # over whole cycles of the design, every condition at every position equally often
    assert set(by_position.values()) == {2 * rows // n_cond}
    assert len(by_position) == trials * n_cond


def test_partial_plans_cover_every_pair_evenly_across_listeners():
    n_clips, n_cond = 6, 4
    clips, conds, plans = _plans(n_clips, n_cond, trials=8, listeners=12)
    pairs = Counter((t.clip, t.condition) for plan in plans for t in plan)
    assert len(pairs) == n_clips * n_cond
    assert set(pairs.values()) == {12 * 8 // (n_clips * n_cond)}
    for plan in plans:
        assert Counter(t.condition for t in plan) == {c: 2 for c in conds}
        assert back_to_back(plan) == 0


def test_plans_are_seeded_and_differ_between_listeners():
    _, _, a = _plans(4, 4, 16, 3, seed=1)
    _, _, b = _plans(4, 4, 16, 3, seed=1)
    _, _, c = _plans(4, 4, 16, 3, seed=2)
    assert a == b
    assert a != c
    assert a[0] != a[1] != a[2]


def test_one_clip_repeats_only_because_it_must():
    clips, conds, plans = _plans(1, 3, 3, 2)
    assert all(len(p) == 3 for p in plans)


@pytest.mark.parametrize("trials", [0, 5, 13])
def test_impossible_counts_are_refused(trials):
    with pytest.raises(ValueError):
        listener_plan(clips=["a", "b"], conditions=["x", "y", "z"], trials=trials, repetitions=2, seed=0,
                      listener_index=0)
