"""Trial plans: seeded, balanced over conditions, positions and clips; no clip twice in a row.

The design claims the docs make are asserted on plans of 2 to 24 listeners (studies/README.md, "Design"):

* Williams carry-over balance holds **within blocks** over any R consecutive listeners (and the
  docs say it does not hold across block edges: checked to be really so);
* every condition at every position equally often over R consecutive listeners;
* CCR: the hearings of each (clip, condition) alternate between the two orders, in full and in
  partial designs; in the full design each listener hears each condition's pairs half each way;
* gold trials never sit next to a trial of the same clip (with three clips or more).
"""

from __future__ import annotations

from collections import Counter
from itertools import permutations

import pytest

from mosapp.study.definition import parse_study
from mosapp.study.errors import StudyError
from mosapp.study.plan import back_to_back, insert_gold, listener_plan, williams_rows
from mosapp.study.types.ccr import order_plan
from tests.study.conftest import study_toml


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


# ------------------------------------------------------------------ the design claims

LISTENERS = range(2, 25)


def _condition_plans(n_clips: int, n_cond: int, trials: int, listeners: int):
    clips = [f"k{i}" for i in range(n_clips)]
    conds = [f"c{j}" for j in range(n_cond)]
    return [listener_plan(clips=clips, conditions=conds, trials=trials, repetitions=1, seed=7, listener_index=i)
            for i in range(listeners)]


@pytest.mark.parametrize(("n_clips", "n_cond", "blocks"), [(4, 4, 2), (3, 5, 3), (6, 3, 2), (2, 6, 2)])
def test_carry_over_is_balanced_within_blocks_over_every_window_of_r_listeners(n_clips, n_cond, blocks):
    r = len(williams_rows(n_cond))
    plans = _condition_plans(n_clips, n_cond, n_cond * blocks, 24)
    for listeners in LISTENERS:
        for start in range(0, listeners - r + 1):
            within, position = Counter(), Counter()
            for plan in plans[start:start + r]:
                conds = [t.condition for t in plan]
                for b in range(blocks):
                    block = conds[b * n_cond:(b + 1) * n_cond]
                    within.update(zip(block, block[1:]))
                    position.update(enumerate(block))
            pairs = {(a, b) for a in {f"c{j}" for j in range(n_cond)} for b in {f"c{j}" for j in range(n_cond)} if a != b}
            assert set(within) == pairs  # never a condition after itself within a block
            assert set(within.values()) == {blocks * (1 if n_cond % 2 == 0 else 2)}
            assert len(set(position.values())) == 1


def test_across_block_edges_the_counts_are_not_balanced_as_the_docs_say():
    plans = _condition_plans(4, 4, 12, 4)  # 3 blocks, R = 4 listeners
    whole = Counter()
    for plan in plans:
        conds = [t.condition for t in plan]
        whole.update(zip(conds, conds[1:]))
    assert len(set(whole.values())) > 1


def _ccr(tmp_path, n_starts: int, trials: int | None, reps: int = 1):
    extra = f"repetitions = {reps}" if reps > 1 else ""
    return parse_study(study_toml(test_type="ccr", conditions=["reference", "pghi-only", "lowpass-3.5k", "opus-12"],
                                  starts=tuple(1.5 * i for i in range(n_starts)), training=1, trials=trials,
                                  extra=extra), source=tmp_path / "c.toml")


def _ccr_orders(d, listeners: int):
    out = []
    for i in range(listeners):
        plan = listener_plan(clips=[c.name for c in d.plan_clips], conditions=list(d.conditions),
                             trials=d.trials_per_listener, repetitions=d.repetitions, seed=d.seed, listener_index=i,
                             training_trials=d.training.trials, training_conditions=d.training.conditions)
        out.append([(t.clip, t.condition, f) for t, f in zip(plan, order_plan(d, plan, i)) if not t.is_training])
    return out


@pytest.mark.parametrize(("n_starts", "trials", "reps"), [(4, None, 1), (6, 8, 1), (5, 4, 1), (3, None, 2), (4, 12, 2)],
                         ids=["full", "partial-8-of-24", "partial-4-of-20", "full-2-reps", "partial-2-reps"])
def test_ccr_hearings_of_every_cell_alternate_between_the_orders(tmp_path, n_starts, trials, reps):
    d = _ccr(tmp_path, n_starts, trials, reps)
    orders = _ccr_orders(d, 24)
    for listeners in LISTENERS:
        sequences: dict[tuple[str, str], list[bool]] = {}
        for plan in orders[:listeners]:
            for clip, cond, first in plan:
                sequences.setdefault((clip, cond), []).append(first)
        for cell, seq in sequences.items():
            assert all(a != b for a, b in zip(seq, seq[1:])), (listeners, cell, seq)
            assert abs(seq.count(True) - seq.count(False)) <= 1
        if len(sequences) and all(len(s) >= 2 for s in sequences.values()):
            both = sum(1 for s in sequences.values() if True in s and False in s)
            assert both == len(sequences)  # every cell heard twice is heard in both orders
    full = trials is None
    if full:  # each listener: half of each condition's pairs each way (reps 2: each cell once each way)
        for plan in orders:
            per = Counter(cond for _, cond, f in plan if f)
            n = Counter(cond for _, cond, _ in plan)
            assert all(abs(2 * per[c] - n[c]) <= 1 for c in n), (per, n)


def test_the_audits_partial_case_now_has_cells_in_both_orders_within_listener_pairs(tmp_path):
    """The audit: fewer trials than cells, 0 of 96 cells heard in both orders by a listener pair. Now every
    cell heard by two listeners is heard in both orders."""
    d = _ccr(tmp_path, 6, 8)
    orders = _ccr_orders(d, 24)
    seen: dict[tuple[str, str], set[bool]] = {}
    for plan in orders:
        for clip, cond, first in plan:
            seen.setdefault((clip, cond), set()).add(first)
    assert all(v == {True, False} for v in seen.values()) and len(seen) == 24


@pytest.mark.parametrize(("n_clips", "n_cond", "trials", "reps"), [(3, 3, 6, 1), (3, 4, 12, 1), (3, 4, 16, 2),
                                                                    (5, 3, 6, 1), (2, 3, 6, 1), (2, 4, 8, 2)])
def test_gold_trials_never_sit_next_to_the_same_clip(n_clips, n_cond, trials, reps):
    """With 3 or more clips: never next to the same clip. With 2 the rated trials alternate, so every slot but the
    last touches both clips: never next to the identical stimulus (same clip and condition) then."""
    clips = [f"k{i}" for i in range(n_clips)]
    gold = [(clips[g % n_clips], "c0", (5,)) for g in range(3)]
    for listener in range(24):
        plan = listener_plan(clips=clips, conditions=[f"c{j}" for j in range(n_cond)], trials=trials,
                             repetitions=reps, seed=3, listener_index=listener, training_trials=1)
        out = insert_gold(plan, gold, seed=3, listener_index=listener)
        assert len(out) == len(plan) + len(gold) and not out[0].gold_expected
        for i, t in enumerate(out):
            if t.gold_expected is None or t.is_training:
                continue
            neighbours = [out[j] for j in (i - 1, i + 1) if 0 <= j < len(out)]
            if n_clips >= 3:
                assert all(n.clip != t.clip for n in neighbours), (listener, [(x.clip, x.gold_expected) for x in out])
            assert all((n.clip, n.condition) != (t.clip, t.condition) for n in neighbours)
            assert all(n.gold_expected is None for n in neighbours)  # never two golds in a row


# ------------------------------------------------------------------ the plan's seed


def test_without_a_seed_in_the_file_the_plan_seed_is_a_secret_of_the_database(tmp_path):
    text = study_toml(conditions=["reference", "pghi-only", "lowpass-3.5k"], starts=(0.0, 1.5, 3.0))
    assert "seed = 11\n" in text
    blind = parse_study(text.replace("seed = 11\n", ""), source=tmp_path / "b.toml")
    demo = parse_study(text, source=tmp_path / "d.toml")
    assert demo.seed_in_file and demo.plan_seed(None) == 11 and "not blind" in demo.blind_note()
    assert not blind.seed_in_file and blind.design()["seed"] == "secret" and "(blind)" in blind.blind_note()
    salt_a, salt_b = "ab" * 16, "cd" * 16
    assert blind.plan_seed(salt_a) == blind.plan_seed(salt_a) != blind.plan_seed(salt_b)
    assert 0 <= blind.plan_seed(salt_a) < 2 ** 63
    with pytest.raises(StudyError, match="prepare"):
        blind.plan_seed(None)


def test_enrolment_draws_the_plan_from_the_prepared_secret(tmp_path):
    """Two databases prepared from the same seedless study file give listener 0 different orders, each the plan of
    the seed derived from that database's salt; nothing in the study file rebuilds them."""
    from sqlalchemy import select

    from mosapp.study import StudyEngine
    from mosapp.study.store import ClipRow, ConditionRow, StimulusRow, StudyRow, TrialRow
    from tests.study.conftest import prepare

    orders = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        text = study_toml(conditions=["reference", "pghi-only", "lowpass-3.5k"], starts=(0.0, 1.5, 3.0, 4.5),
                          database=str(folder / "s.sqlite"), stimuli_dir=str(tmp_path / "stimuli"))
        path = folder / "s.toml"
        path.write_text(text.replace("seed = 11\n", ""), encoding="utf-8")
        prepare(path)
        with StudyEngine.open(path) as engine:
            with engine.start_or_resume("L1"):
                pass
            with engine.store.read() as s:
                salt = s.scalar(select(StudyRow.stimulus_salt))
                rows = s.execute(select(ClipRow.name, ConditionRow.name)
                                 .select_from(TrialRow).join(StimulusRow, TrialRow.stimulus_id == StimulusRow.id)
                                 .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
                                 .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
                                 .order_by(TrialRow.position)).all()
            d = engine.definition
        want = listener_plan(clips=[c.name for c in d.plan_clips], conditions=list(d.conditions),
                             trials=d.trials_per_listener, repetitions=d.repetitions, seed=d.plan_seed(salt),
                             listener_index=0, training_trials=d.training.trials)
        assert [(r[0], r[1]) for r in rows] == [(t.clip, t.condition) for t in want]
        orders.append([(r[0], r[1]) for r in rows])
    assert orders[0] != orders[1]
