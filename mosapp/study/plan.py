"""Trial plans: per listener, seeded, balanced orders of (clip, condition) trials.

How listener number ``i`` (enrolment order, from 0) gets its plan of ``T = k x C`` rated
trials over ``C`` conditions and ``N`` clips:

1. **Conditions by position** — a Williams design (a balanced Latin square: ``C`` rows
   for even ``C``, ``2C`` for odd ``C``) over the conditions in a seeded order. Block ``b``
   (``b = 0..k-1``) of listener ``i`` is row ``(i + b) mod R``. Every condition appears
   ``k`` times per listener, and over any ``R`` consecutive listeners each condition sits
   at every position equally often. **Carry-over balance holds within blocks**: over any
   ``R`` consecutive listeners, inside the blocks every condition follows every other one
   equally often (``k`` times for even ``C``, ``2k`` for odd ``C``) and never itself. It does
   *not* hold across the ``k − 1`` block edges of a plan: there the last condition of row
   ``r`` is followed by the first of row ``r + 1``, always the same few ordered pairs (those
   ``R`` pairs are each heard once more per edge per ``R`` listeners; a condition may even
   follow itself there), so over whole plans the counts of "``a`` right after ``b``" differ
   by up to ``k − 1`` between pairs. Analyses that model carry-over should use the
   within-block transitions (``trial`` in the ratings CSV gives every position).
2. **Clips per condition** — a seeded cycle of the clips, repeated ``repetitions`` times.
   Condition ``j`` of listener ``i`` takes the ``k`` clips of the cycle from
   ``i*k + j``: with all trials (``k = N x repetitions``) each condition meets each clip
   ``repetitions`` times; with fewer, consecutive listeners continue the cycle, so every
   (clip, condition) pair is rated equally often across listeners.
3. **Clips onto positions** — greedily in order, never the previous trial's clip where
   another one is left for that condition, then repaired by swapping clips between trials
   of the same condition: the same clip back to back only where unavoidable.
4. **Training** — ``training.trials`` trials first, cycling through the training
   conditions and the clips from an offset that depends on ``i``.

5. **Gold trials** (optional) — each ``[[gold]]`` trial once per listener, in a seeded
   order, spread evenly over the rated trials (gold ``j`` of ``G`` aims to go after rated
   trial ``⌊(j + 1) · T / (G + 1) + ½⌋``, never first and, while ``G ≤ T``, never two in a
   row), moved to the nearest slot where neither neighbour has its clip
   (:func:`insert_gold`): with three clips or more a gold trial never sits next to the same
   clip; with two, never next to the identical stimulus.

The hidden reference is simply the condition ``reference`` among the others. Everything is
a pure function of (study seed, listener number); nothing here touches the database. Each
seeded order draws from its own named stream (:class:`mosapp.core.streams.Stream`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosapp.core.streams import Stream, stream_rng


@dataclass(frozen=True)
class PlannedTrial:
    """One trial of a plan: which clip in which condition, and whether it is training."""

    clip: str
    condition: str
    is_training: bool = False
    gold_expected: tuple[int, ...] | None = None


def williams_rows(n: int) -> list[list[int]]:
    """The rows of a Williams design for ``n`` treatments (``n`` rows if even, ``2n`` if odd).

    Each row is an order of ``0..n-1``; every treatment appears once per column of each
    ``n`` rows, and (over all rows) every ordered pair of distinct treatments is adjacent
    equally often.
    """
    if n < 1:
        raise ValueError("need at least one treatment")
    first = [0]
    low, high, take_low = 1, n - 1, True
    while len(first) < n:
        if take_low:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
        take_low = not take_low
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2:
        rows += [list(reversed(row)) for row in rows]
    return rows


def listener_plan(
    *,
    clips: Sequence[str],
    conditions: Sequence[str],
    trials: int,
    repetitions: int,
    seed: int,
    listener_index: int,
    training_trials: int = 0,
    training_conditions: Sequence[str] = (),
) -> list[PlannedTrial]:
    """The plan of listener ``listener_index``: training trials first, then ``trials`` rated ones.

    Args:
        clips: clip names.
        conditions: condition names in the plan (the hidden reference among them).
        trials: rated trials, a multiple of ``len(conditions)`` and at most
            ``len(clips) * len(conditions) * repetitions``.
        repetitions: how often one (clip, condition) pair may recur in a plan.
        seed: the study's seed.
        listener_index: the listener's enrolment number, from 0.
        training_trials: training trials put first.
        training_conditions: conditions the training trials cycle through (default: all).

    Returns:
        ``training_trials + trials`` planned trials in presentation order.

    Raises:
        ValueError: the counts do not fit (the study definition checks them first).
    """
    n_clips, n_cond = len(clips), len(conditions)
    if n_clips < 1 or n_cond < 1:
        raise ValueError("need at least one clip and one condition")
    if trials % n_cond or trials > n_clips * n_cond * repetitions or trials < 1:
        raise ValueError(f"{trials} trials do not fit {n_clips} clips x {n_cond} conditions x {repetitions}")
    if listener_index < 0:
        raise ValueError("listener_index must be 0 or more")
    k = trials // n_cond

    order = list(stream_rng(seed, Stream.PLAN_CONDITIONS).permutation(n_cond))
    clip_order = list(stream_rng(seed, Stream.PLAN_CLIPS).permutation(n_clips))
    rows = williams_rows(n_cond)
    rng = stream_rng(seed, Stream.PLAN_LISTENER, listener_index)

    # 1. conditions by position
    cond_seq: list[int] = []
    for b in range(k):
        row = rows[(listener_index + b) % len(rows)]
        cond_seq += [order[x] for x in row]
    # 2. the k clips of each condition
    pool = _clip_pools(n_clips, n_cond, trials, repetitions, seed, listener_index)

    # 4. (built first: the rated trials must not start with training's last clip)
    training: list[PlannedTrial] = []
    if training_trials:
        names = list(training_conditions) or [conditions[c] for c in order]
        t_order = list(stream_rng(seed, Stream.PLAN_TRAINING).permutation(len(names)))
        for t in range(training_trials):
            cond = names[t_order[(listener_index + t) % len(names)]]
            clip = clip_order[(listener_index + t) % n_clips]
            training.append(PlannedTrial(clips[clip], cond, True))

    # 3. clips onto positions
    first_prev = clips.index(training[-1].clip) if training else -1
    clip_seq = _search_clip_order(cond_seq, pool, first_prev, rng)
    if clip_seq is None:  # a repeat cannot be avoided (or the search gave up): greedy, then repair
        clip_seq = _greedy_clip_order(cond_seq, pool, first_prev, rng)
        _repair_repeats(cond_seq, clip_seq, first_prev)

    rated = [PlannedTrial(clips[x], conditions[c], False) for c, x in zip(cond_seq, clip_seq)]
    return training + rated


def _clip_pools(n_clips: int, n_cond: int, trials: int, repetitions: int, seed: int,
                listener_index: int) -> dict[int, Counter[int]]:
    """Step 2: condition index → how often each clip index comes with it in listener ``listener_index``'s plan."""
    k = trials // n_cond
    order = list(stream_rng(seed, Stream.PLAN_CONDITIONS).permutation(n_cond))
    cycle = list(stream_rng(seed, Stream.PLAN_CLIPS).permutation(n_clips)) * repetitions
    pool: dict[int, Counter[int]] = {}
    for j, c in enumerate(order):
        start = listener_index * k + j
        pool[int(c)] = Counter(int(cycle[(start + o) % len(cycle)]) for o in range(k))
    return pool


def cell_counts(*, clips: Sequence[str], conditions: Sequence[str], trials: int, repetitions: int, seed: int,
                listener_index: int) -> Counter[tuple[str, str]]:
    """How often each (clip, condition) is rated in listener ``listener_index``'s plan (training left out).

    The same numbers as counting :func:`listener_plan`'s rated trials, without placing them
    (step 2 alone): cheap enough to sum over every earlier listener.
    """
    pools = _clip_pools(len(clips), len(conditions), trials, repetitions, seed, listener_index)
    return Counter({(clips[x], conditions[c]): n for c, pool in pools.items() for x, n in pool.items() if n})


#: Steps the exact search may take before the greedy order is used instead.
_SEARCH_BUDGET = 50_000


def _candidates(left: Counter[int], previous: int, rng: np.random.Generator) -> list[int]:
    """Clips still to place for a condition, most remaining first, ties in seeded order."""
    have = [x for x, n in left.items() if n > 0 and x != previous]
    keys = rng.random(len(have))
    return [x for _, _, x in sorted(zip((-left[x] for x in have), keys, have))]


def _search_clip_order(cond_seq: list[int], pool: dict[int, Counter[int]], first_prev: int,
                       rng: np.random.Generator) -> list[int] | None:
    """Clips for ``cond_seq`` with no clip twice in a row (depth-first), or None."""
    if len({x for left in pool.values() for x, n in left.items() if n}) < 2:
        return None
    left = {c: Counter(v) for c, v in pool.items()}
    out: list[int] = []
    stack: list[list[int]] = [_candidates(left[cond_seq[0]], first_prev, rng)]
    steps = 0
    while stack:
        steps += 1
        if steps > _SEARCH_BUDGET:
            return None
        options = stack[-1]
        if not options:
            stack.pop()
            if out:
                x = out.pop()
                left[cond_seq[len(out)]][x] += 1
            continue
        x = options.pop(0)
        pos = len(out)
        left[cond_seq[pos]][x] -= 1
        out.append(x)
        if len(out) == len(cond_seq):
            return out
        stack.append(_candidates(left[cond_seq[pos + 1]], x, rng))
    return None


def _greedy_clip_order(cond_seq: list[int], pool: dict[int, Counter[int]], first_prev: int,
                       rng: np.random.Generator) -> list[int]:
    left = {c: Counter(v) for c, v in pool.items()}
    previous = first_prev
    out: list[int] = []
    for c in cond_seq:
        options = _candidates(left[c], previous, rng) or _candidates(left[c], -1, rng)
        pick = options[0]
        left[c][pick] -= 1
        out.append(pick)
        previous = pick
    return out


def _repair_repeats(cond_seq: list[int], clip_seq: list[int], first_prev: int) -> None:
    """Swap clips between trials of one condition until no clip follows itself, where possible."""
    n = len(clip_seq)

    def clash(i: int) -> bool:
        before = clip_seq[i - 1] if i > 0 else first_prev
        after = clip_seq[i + 1] if i + 1 < n else -2
        return clip_seq[i] == before or clip_seq[i] == after

    for _ in range(4):
        changed = False
        for i in range(n):
            before = clip_seq[i - 1] if i > 0 else first_prev
            if clip_seq[i] != before:
                continue
            for j in range(n):
                if j == i or cond_seq[j] != cond_seq[i] or clip_seq[j] == clip_seq[i]:
                    continue
                clip_seq[i], clip_seq[j] = clip_seq[j], clip_seq[i]
                if clash(i) or clash(j):
                    clip_seq[i], clip_seq[j] = clip_seq[j], clip_seq[i]
                    continue
                changed = True
                break
        if not changed:
            return


def _clear(rated: Sequence[PlannedTrial], slot: int, clip: str, condition: str | None) -> bool:
    """Neither neighbour of ``slot`` (after rated trial ``slot``, 1-based) has ``clip`` (and ``condition``, if given)."""
    def same(t: PlannedTrial) -> bool:
        return t.clip == clip and (condition is None or t.condition == condition)
    return not same(rated[slot - 1]) and (slot == len(rated) or not same(rated[slot]))


def insert_gold(plan: Sequence[PlannedTrial], gold: Sequence[tuple[str, str, tuple[int, ...]]], *, seed: int,
                listener_index: int) -> list[PlannedTrial]:
    """``plan`` with one trial per gold item ``(clip, condition, expected scores)`` spread over its rated trials.

    The gold items come in an order seeded by (seed, listener); gold ``j`` of ``G`` aims to follow
    rated trial ``a_j = max(1, ⌊(j + 1) · T / (G + 1) + ½⌋)`` of the ``T`` rated ones. It goes to
    the nearest slot (after rated trial ``s``, ``1 ≤ s ≤ T``; the later one on a tie) that no
    other gold has taken and where **neither neighbour has the gold's clip** (rated trials
    ``s`` and ``s + 1``): a gold trial is never next to the same clip, so a listener never hears
    the same excerpt, or the identical stimulus, twice in a row through it. Where no slot
    meets that (with two clips the rated trials alternate, so every slot but the last touches
    both; with one clip every slot does), the nearest free slot whose neighbours are not the
    identical stimulus (same clip *and* condition), else the nearest free slot; with more
    golds than rated trials, golds share slots. Training stays first.
    """
    if not gold:
        return list(plan)
    training = [t for t in plan if t.is_training]
    rated = [t for t in plan if not t.is_training]
    order = list(stream_rng(seed, Stream.PLAN_GOLD, listener_index).permutation(len(gold)))
    n_rated, n_gold = len(rated), len(gold)
    slots: list[int] = []  # slot s: after rated trial s (1-based)
    for j in range(n_gold):
        clip = gold[order[j]][0]
        ideal = min(max(1, int(math.floor((j + 1) * n_rated / (n_gold + 1) + 0.5))), max(n_rated, 1))
        candidates = sorted(range(1, n_rated + 1), key=lambda s: (abs(s - ideal), -s))

        condition = gold[order[j]][1]
        free = [s for s in candidates if s not in slots] if n_gold <= n_rated else candidates
        pick = next((s for s in free if _clear(rated, s, clip, None)),
                    next((s for s in free if _clear(rated, s, clip, condition)), free[0] if free else max(n_rated, 1)))
        slots.append(pick)
    out = list(training)
    placed = sorted(range(n_gold), key=lambda j: (slots[j], j))
    g = 0
    for i, t in enumerate(rated, start=1):
        out.append(t)
        while g < n_gold and slots[placed[g]] <= i:
            clip, condition, expected = gold[order[placed[g]]]
            out.append(PlannedTrial(clip, condition, False, tuple(expected)))
            g += 1
    for j in range(g, n_gold):
        clip, condition, expected = gold[order[placed[j]]]
        out.append(PlannedTrial(clip, condition, False, tuple(expected)))
    return out


def back_to_back(plan: Sequence[PlannedTrial]) -> int:
    """How often a trial has the same clip as the one before it."""
    return sum(1 for a, b in zip(plan, plan[1:]) if a.clip == b.clip)


__all__ = ["PlannedTrial", "back_to_back", "cell_counts", "insert_gold", "listener_plan", "williams_rows"]
