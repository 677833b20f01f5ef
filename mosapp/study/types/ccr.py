"""CCR (ITU-T P.800 Annex E, as in P.808): a pair, the second sample rated against the first, -3..+3: CMOS.

::

    engine = StudyEngine.open("studies/demo-ccr.toml")
    with engine.start_or_resume("L07") as session:          # a CcrSession
        while (trial := session.next_trial()) is not None:  # a CcrTrial: samples A (first) and B (second)
            trial.first, trial.second                       # one is the reference, one the processed sample
            session.rate(trial, +1, play_counts=(1, 2), listening_time_s=8.0, response_time_s=5.1)

**Pairs.** Each (clip, condition) of the plan is a pair of the reference and the processed
sample (``reference`` in ``conditions`` gives the null pair: the reference against itself).
Which one plays first alternates per cell (:func:`order_plan`): the hearings of a
(clip, condition) cell, in enrolment order (and, within a listener, in repetition order),
take the two orders in turn, starting from a seeded order per cell. What holds, full or
partial design:

* **per cell**: any two consecutive hearings of a cell are in opposite orders, so of its
  hearings so far the two orders differ by at most one; in the full design (every listener
  rates every cell once) that is "every two listeners hear each (clip, condition) in both
  orders"; in a partial design (fewer trials than clips x conditions) a cell's hearers are
  not consecutive listeners, and the alternation runs over the listeners who do hear it;
* **per listener and condition**: with one repetition in the full design, ``floor(N/2)`` or
  ``ceil(N/2)`` of a condition's ``N`` pairs play the processed sample first; with two
  repetitions a listener hears each cell once in each order; in a partial design the split
  per listener is not balanced (it follows the cells' alternation), which the CMOS below
  handles: a listener who heard a condition in one order only is counted in
  ``n_listeners_one_order``.

Training pairs are ordered at random.

**Scale.** The listener rates the quality of the second sample (B) compared with the first (A):
-3 Much worse, -2 Worse, -1 Slightly worse, 0 About the same, +1 Slightly better, +2 Better,
+3 Much better (``value``). Turned to processed-vs-reference, ``cmos_value = value`` when the
processed sample played second and ``-value`` when it played first.

**CMOS with the order effect removed** (:func:`cmos_summary`). Suppose a listener rates
``value = q + delta`` where ``q`` is the true quality of the second against the first and
``delta`` an order bias (a tendency to prefer the second). Then ``cmos_value = q_c + delta``
for processed-second pairs and ``q_c - delta`` for processed-first pairs, so with
``S`` / ``F`` the mean ``cmos_value`` over the processed-second / processed-first pairs:

* ``CMOS_c = (F + S) / 2`` (the mean of the two order means) is free of ``delta``, and
  ``order_effect_c = (S - F) / 2`` estimates it. This is the same as the least-squares fit of
  ``cmos_value ~ condition + condition:order`` with order coded +1/2 (second) and -1/2 (first).
* Per listener ``l``: ``CMOS_lc = (F_lc + S_lc) / 2`` when they heard ``c`` in both orders,
  else the mean of the one order they heard (counted in ``n_listeners_one_order``).
* ``cmos`` (the reported estimate) is the mean of the ``CMOS_lc`` over listeners, and
  ``ci_low``/``ci_high`` the t interval over those listener values (df = L - 1), clipped to
  -3..+3 (``clipped`` says when);
  ``cmos_pooled`` is ``(F + S) / 2`` over all ratings (equal to ``cmos`` when the design is
  balanced); ``uncorrected`` the plain mean of ``cmos_value``.
* Tests: each condition's ``CMOS_lc`` against 0 (two-sided Wilcoxon signed-rank, exact with
  mid-ranks: :func:`mosapp.study.stats.wilcoxon_signed_rank`, Holm over conditions), and every
  pair of conditions on the listeners' ``CMOS_lc`` differences (paired t, sign-flip and
  Wilcoxon tests, each Holm-corrected: :func:`mosapp.study.stats.paired_rows`).
"""

from __future__ import annotations

import itertools
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.study import stats
from mosapp.study.errors import StudyError
from mosapp.study.export import Screening, condition_table, output_folder, ratings_frame, write_csv
from mosapp.study.items import ITEM_COLUMNS, ItemScore, ItemSession
from mosapp.study.plan import PlannedTrial, cell_counts, listener_plan
from mosapp.study.report import (
    ICC_COLUMNS,
    comparison_lines,
    kbps_cell,
    metric_correlations,
    plot_score_vs_kbps,
    ruled,
    standard_summary,
    write_text,
)
from mosapp.study.schema import REFERENCE
from mosapp.study.sitting import check_count, check_seconds, check_whole
from mosapp.study.store import Store, TrialItemRow, TrialRow
from mosapp.study.types import register_test_type
from mosapp.study.types.base import Playback, Streams, TestType

if TYPE_CHECKING:
    from mosapp.study.definition import StudyDefinition

MIN_SCORE, MAX_SCORE = -3, 3

#: Columns of :func:`cmos_summary` (column → meaning).
CMOS_COLUMNS: dict[str, str] = {
    "condition": "condition, in the study file's order",
    "is_reference": "TRUE for the null pair (the reference against itself)",
    "scale": "CMOS",
    "nominal_kbps": "advertised bitrate, kbit/s",
    "bitrate_kbps": "mean measured payload bitrate over the clips, kbit/s",
    "n": "ratings",
    "n_first": "ratings with the processed sample first",
    "n_second": "ratings with the processed sample second",
    "n_listeners": "listeners with ratings",
    "n_listeners_one_order": "listeners who heard the condition in one order only",
    "mean_first": "F: mean cmos_value of the processed-first pairs",
    "mean_second": "S: mean cmos_value of the processed-second pairs",
    "uncorrected": "plain mean of cmos_value (order effect not removed)",
    "order_effect": "(S - F) / 2: the bias towards the second sample",
    "cmos_pooled": "(F + S) / 2 over all ratings: the mean of the two order means",
    "cmos": "mean over listeners of (F_l + S_l) / 2: the reported CMOS, order effect removed",
    "listener_sd": "standard deviation of the listener values (ddof 1)",
    "ci_low": "95 % t interval over the listener values, lower end",
    "ci_high": "95 % t interval over the listener values, upper end",
    "p_vs_0": "two-sided Wilcoxon signed-rank test of the listener values against 0 (exact, mid-ranks for ties)",
    "p_vs_0_holm": "the same, Holm-corrected over the conditions",
    "clipped": "ci when the interval reached past -3..+3 and was clipped to it, else empty",
    "screening": "rule off (CCR)",
}


@dataclass(frozen=True)
class CcrTrial:
    """One CCR pair as a listener gets it: A plays first, B second; neither says which is processed."""

    trial_id: str
    first_id: str
    second_id: str
    first: np.ndarray = field(repr=False, compare=False)
    second: np.ndarray = field(repr=False, compare=False)
    sample_rate: int = PIPELINE_SAMPLE_RATE
    index: int = 0
    total: int = 0
    is_training: bool = False


def order_plan(definition: StudyDefinition, plan: Sequence[PlannedTrial], listener_index: int) -> list[bool]:
    """``processed_first`` for each trial of ``plan`` (a list of PlannedTrial), balanced as the module says.

    Hearing ``h`` (counted from 0 over all listeners in enrolment order, then over the
    listener's own repetitions) of the cell (clip, condition) plays the processed sample first
    when ``bit(clip, condition) XOR (h mod 2)``; ``bit`` is True for ``⌊N/2⌋`` of the ``N``
    clips of each condition, chosen by ``default_rng([seed, 800, c])``. Earlier listeners'
    hearings are counted from their plans (:func:`mosapp.study.plan.cell_counts`).
    """
    d = definition
    clips = [c.name for c in d.plan_clips]
    conditions = list(d.conditions)
    bits: dict[tuple[str, str], bool] = {}
    for c_index, cond in enumerate(conditions):
        perm = np.random.default_rng([int(d.seed), 800, c_index]).permutation(len(clips))
        for rank, x in enumerate(perm):
            bits[(clips[int(x)], cond)] = rank < len(clips) // 2
    heard: Counter[tuple[str, str]] = Counter()
    for earlier in range(int(listener_index)):
        heard.update(cell_counts(clips=clips, conditions=conditions, trials=d.trials_per_listener,
                                 repetitions=d.repetitions, seed=d.seed, listener_index=earlier))
    out: list[bool] = []
    rng = np.random.default_rng([int(d.seed), 801, int(listener_index)])
    for t in plan:
        if t.is_training or (t.clip, t.condition) not in bits:
            out.append(bool(rng.random() < 0.5))
            continue
        h = heard[(t.clip, t.condition)]
        heard[(t.clip, t.condition)] += 1
        out.append(bits[(t.clip, t.condition)] != bool(h % 2))
    return out


def enrol(s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
          stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
    """Write a new listener's CCR pairs (the balanced plan of DCR/ACR, plus the presentation order)."""
    d = definition
    plan = listener_plan(
        clips=[c.name for c in d.plan_clips], conditions=list(d.conditions), trials=d.trials_per_listener,
        repetitions=d.repetitions, seed=d.seed, listener_index=int(listener_index),
        training_trials=d.training.trials, training_conditions=d.training.conditions,
    )
    orders = order_plan(d, plan, listener_index)
    for i, (planned, first) in enumerate(zip(plan, orders)):
        try:
            sid = stimuli[(planned.clip, planned.condition)]
            ref = stimuli[(planned.clip, REFERENCE)]
        except KeyError:
            raise StudyError(f'The study "{d.name}" lacks stimuli; run `mosapp study prepare` again.') from None
        trial = TrialRow(listener_id=listener_id, position=i, is_training=planned.is_training, stimulus_id=sid,
                         reference_stimulus_id=ref, trial_token=token(), sample_token=token(),
                         reference_token=token(), processed_first=bool(first))
        s.add(trial)
        s.flush()
        s.add(TrialItemRow(trial_id=trial.id, slot=0, stimulus_id=sid, token=trial.sample_token))
    s.flush()


class CcrSession(ItemSession):
    """A listener's sitting in a CCR study."""

    def _trial(self, info: dict[str, Any], items: list[tuple[str, str]], reference_file: str, total: int) -> CcrTrial:
        audio = self._engine.audio_for
        (processed_token, processed_file), = items
        processed, reference = audio(processed_file), audio(reference_file)
        pf = bool(info["processed_first"])
        pair = [(processed_token, processed), (info["reference_token"], reference)]
        if not pf:
            pair.reverse()
        return CcrTrial(trial_id=info["trial_token"], first_id=pair[0][0], second_id=pair[1][0], first=pair[0][1],
                        second=pair[1][1], sample_rate=PIPELINE_SAMPLE_RATE, index=info["position"], total=total,
                        is_training=info["is_training"])

    def rate(self, trial: CcrTrial, value: int, *, play_counts: Sequence[int] = (0, 0), listening_time_s: float = 0.0,
             response_time_s: float = 0.0) -> None:
        """Record the score of B against A (-3..+3), committed before this returns.

        Args:
            trial: the :class:`CcrTrial`.
            value: -3 (B much worse than A) … +3 (B much better).
            play_counts: (plays of A, plays of B).
            listening_time_s: seconds of audio played in the trial.
            response_time_s: seconds from the trial's start to the score.

        Raises:
            StudyError: a score outside -3..+3, a trial of another listener or one already rated,
                a closed session, a read-only or locked database.
        """
        if not isinstance(trial, CcrTrial):
            raise StudyError("CcrSession.rate takes the CcrTrial that next_trial returned.")
        score = check_whole(value, MIN_SCORE, MAX_SCORE, "CCR score")
        try:
            plays_first, plays_second = (check_count(v, "play count") for v in play_counts)
        except (TypeError, ValueError):
            raise StudyError(f"play_counts {play_counts!r} is not accepted; give (plays of A, plays of B).") from None
        with self._engine.store.read() as s:
            pf = s.scalar(select(TrialRow.processed_first).where(TrialRow.trial_token == trial.trial_id,
                                                                 TrialRow.listener_id == self._listener_id))
        if pf is None:
            raise StudyError(f'The trial "{trial.trial_id}" is not one of listener {self.listener_code}\'s trials.')
        processed_plays, reference_plays = (plays_first, plays_second) if pf else (plays_second, plays_first)
        token = trial.first_id if pf else trial.second_id
        self._commit(trial.trial_id, [ItemScore(token, score, processed_plays,
                                                check_seconds(listening_time_s, "listening_time_s"))],
                     plays_reference=reference_plays, response_time_s=check_seconds(response_time_s, "response_time_s"))


# ------------------------------------------------------------------------------------------ statistics


def listener_cmos(ratings: pd.DataFrame) -> pd.DataFrame:
    """Per (listener, condition): ``n_first``, ``n_second``, ``mean_first``, ``mean_second``, ``cmos``.

    ``ratings`` needs ``listener``, ``condition``, ``processed_first`` and ``cmos_value``.
    ``cmos`` = (mean_first + mean_second) / 2 when both orders were heard, else the one mean.
    """
    rows = []
    for (listener, condition), g in ratings.groupby(["listener", "condition"], sort=True):
        first = g.loc[g["processed_first"].astype(bool), "cmos_value"].astype(float)
        second = g.loc[~g["processed_first"].astype(bool), "cmos_value"].astype(float)
        mf = float(first.mean()) if len(first) else math.nan
        ms = float(second.mean()) if len(second) else math.nan
        value = (mf + ms) / 2 if len(first) and len(second) else (mf if len(first) else ms)
        rows.append({"listener": listener, "condition": condition, "n_first": len(first), "n_second": len(second),
                     "mean_first": mf, "mean_second": ms, "cmos": value})
    return pd.DataFrame(rows, columns=["listener", "condition", "n_first", "n_second", "mean_first", "mean_second",
                                       "cmos"])


def cmos_summary(ratings: pd.DataFrame, conditions: pd.DataFrame | None = None, *,
                 confidence: float = 0.95) -> pd.DataFrame:
    """CMOS per condition with the order effect removed (formulas: the module docstring).

    ``ratings``: :func:`mosapp.study.export.ratings_frame` rows of a CCR study (training excluded).
    ``conditions``: :func:`mosapp.study.export.condition_table` (study order, bitrates); None:
    the conditions of ``ratings``, sorted.
    """
    per = listener_cmos(ratings) if len(ratings) else listener_cmos(
        pd.DataFrame(columns=["listener", "condition", "processed_first", "cmos_value"]))
    if conditions is None:
        conditions = pd.DataFrame({"condition": sorted(set(ratings["condition"])) if len(ratings) else []})
        conditions["is_reference"] = conditions["condition"] == REFERENCE
        conditions["nominal_kbps"] = np.nan
        conditions["bitrate_kbps"] = np.nan
    rows = []
    for c in conditions.itertuples():
        g = ratings[ratings["condition"] == c.condition] if len(ratings) else ratings
        empty = pd.Series([], dtype=float)
        first = g.loc[g["processed_first"].astype(bool), "cmos_value"].astype(float) if len(g) else empty
        second = g.loc[~g["processed_first"].astype(bool), "cmos_value"].astype(float) if len(g) else empty
        mf = float(first.mean()) if len(first) else math.nan
        ms = float(second.mean()) if len(second) else math.nan
        lv = per.loc[per["condition"] == c.condition]
        m = lv["cmos"].to_numpy(float)
        L = len(m)
        sd = float(m.std(ddof=1)) if L > 1 else math.nan
        mean = float(m.mean()) if L else math.nan
        low, high = stats.t_interval(mean, sd, L, confidence) if L else (math.nan, math.nan)
        _, p, _, _ = stats.wilcoxon_signed_rank(m) if L else (math.nan, math.nan, "", "")
        rows.append({
            "condition": c.condition, "is_reference": bool(c.is_reference), "scale": "CMOS",
            "nominal_kbps": c.nominal_kbps, "bitrate_kbps": c.bitrate_kbps, "n": len(g), "n_first": len(first),
            "n_second": len(second), "n_listeners": L,
            "n_listeners_one_order": int(((lv["n_first"] == 0) | (lv["n_second"] == 0)).sum()),
            "mean_first": mf, "mean_second": ms,
            "uncorrected": float(g["cmos_value"].astype(float).mean()) if len(g) else math.nan,
            "order_effect": (ms - mf) / 2, "cmos_pooled": (mf + ms) / 2, "cmos": mean, "listener_sd": sd,
            "ci_low": low, "ci_high": high, "p_vs_0": p,
        })
    out = pd.DataFrame(rows, columns=[c for c in CMOS_COLUMNS if c not in ("p_vs_0_holm", "clipped", "screening")])
    out["p_vs_0_holm"] = stats.holm(out["p_vs_0"].to_numpy(float)) if len(out) else []
    outside = (out["ci_low"] < MIN_SCORE) | (out["ci_high"] > MAX_SCORE)
    out["ci_low"] = out["ci_low"].clip(MIN_SCORE, MAX_SCORE)
    out["ci_high"] = out["ci_high"].clip(MIN_SCORE, MAX_SCORE)
    out["clipped"] = np.where(outside, "ci", "")
    out["screening"] = "rule off: every listener kept"
    return out[list(CMOS_COLUMNS)]


def cmos_comparisons(ratings: pd.DataFrame, order: list[str], *, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of conditions on the listeners' CMOS differences: paired t, sign-flip and Wilcoxon tests,
    each Holm-corrected (:func:`mosapp.study.stats.paired_rows`, columns :data:`mosapp.study.stats.PAIRED_COLUMNS`)."""
    per = listener_cmos(ratings).pivot(index="listener", columns="condition", values="cmos") if len(ratings) else None
    pairs = []
    for a, b in itertools.combinations(order, 2):
        if per is None or a not in per or b not in per:
            continue
        both = per[[a, b]].dropna()
        pairs.append((a, b, (both[a] - both[b]).to_numpy(dtype=np.float64)))
    return stats.paired_rows(pairs, alpha=alpha)


# ------------------------------------------------------------------------------------------ report


@dataclass
class CcrReport:
    """A CCR study's report (see :func:`build_ccr_report`).

    ``cmos`` is the CMOS table (:data:`CMOS_COLUMNS`); ``summary`` the same numbers in the columns
    the DCR/ACR report uses, so the app's Results view shows a CCR study like any other;
    ``screening`` is the (off) rule; ``clips``, ``mixed`` and ``agreement`` are not computed.
    """

    definition: StudyDefinition
    ratings: pd.DataFrame
    cmos: pd.DataFrame
    comparisons: pd.DataFrame
    listeners: pd.DataFrame
    screening: Screening
    correlations: pd.DataFrame
    clips: pd.DataFrame | None = None
    mixed: pd.DataFrame | None = None
    agreement: stats.AgreementResult | None = None

    @property
    def summary(self) -> pd.DataFrame:
        return standard_summary(self.cmos)

    def agreement_frame(self) -> pd.DataFrame:
        return pd.DataFrame(columns=["listener", "n_points", "r_rest", "note"])

    def icc_frame(self) -> pd.DataFrame:
        return pd.DataFrame(columns=list(ICC_COLUMNS))

    def text(self) -> str:
        d = self.definition
        lines = [f"{d.title}  ({d.name}: CCR, CMOS)", "", d.blind_note(), ""]
        n_list = self.ratings["listener"].nunique() if len(self.ratings) else 0
        lines.append(f"ratings: {len(self.ratings)} from {n_list} listener(s); screening: rule off")
        lines += ["", "CMOS per condition (processed against reference, -3..+3), order effect removed: the mean over "
                      "listeners of (F + S) / 2, F / S the mean with the processed sample first / second; 95 % t "
                      "interval over listeners; Wilcoxon against 0, Holm:"]
        header = (f"{'condition':<18} {'kbps':>7} {'n':>4} {'L':>3} {'CMOS':>6} {'95% CI':>16} {'uncorr.':>7} "
                  f"{'order':>6} {'p (Holm)':>9}")
        lines += ruled(header)
        for r in self.cmos.itertuples():
            ci = "" if pd.isna(r.ci_low) else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"
            cm = "-" if pd.isna(r.cmos) else f"{r.cmos:+.2f}"
            un = "" if pd.isna(r.uncorrected) else f"{r.uncorrected:+.2f}"
            oe = "" if pd.isna(r.order_effect) else f"{r.order_effect:+.2f}"
            p = "" if pd.isna(r.p_vs_0_holm) else f"{r.p_vs_0_holm:.3g}"
            lines.append(f"{r.condition:<18} {kbps_cell(r.bitrate_kbps):>7} {r.n:>4} {r.n_listeners:>3} {cm:>6} "
                         f"{ci:>16} {un:>7} {oe:>6} {p:>9}")
        lines += comparison_lines(self.comparisons, "the listeners' CMOS")
        return "\n".join(lines)

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        folder = output_folder(out_dir)
        name = self.definition.name
        files = {
            "summary": write_csv(self.cmos, folder / f"{name}-report-summary.csv"),
            "comparisons": write_csv(self.comparisons.assign(screening=self.screening.describe()),
                                     folder / f"{name}-report-comparisons.csv"),
            "listeners": write_csv(self.listeners, folder / f"{name}-report-listeners.csv"),
            "listener_cmos": write_csv(listener_cmos(self.ratings) if len(self.ratings) else pd.DataFrame(),
                                       folder / f"{name}-report-listener-cmos.csv"),
            "plot": plot_score_vs_kbps(self.summary, self.definition, folder / f"{name}-report-cmos-vs-kbps.png"),
        }
        files["text"] = write_text(folder / f"{name}-report.txt", self.text())
        return files


def build_ccr_report(store: Store, definition: StudyDefinition) -> CcrReport:
    """Compute the report of a CCR study: CMOS per condition with the order effect removed (see the module)."""
    ratings = ratings_frame(store, definition)
    conditions = condition_table(store, definition)
    summary = cmos_summary(ratings, conditions)
    order = [c for c in conditions["condition"] if len(ratings) and c in set(ratings["condition"])]
    listeners = (ratings.groupby("listener", sort=False).agg(ratings=("value", "size"), mean=("cmos_value", "mean"))
                 .reset_index() if len(ratings) else pd.DataFrame({"listener": [], "ratings": [], "mean": []}))
    listeners["dropped"] = False
    listeners["screening"] = "rule off: every listener kept"
    codes = sorted(set(ratings["listener"])) if len(ratings) else []
    screening = Screening(definition.screening, False, codes, [], pd.DataFrame(columns=list(stats.SCREENING_COLUMNS)))
    correlations = metric_correlations(summary.dropna(subset=["cmos"]).rename(columns={"cmos": "mean"}),
                                       conditions, definition)
    return CcrReport(definition, ratings, summary, cmos_comparisons(ratings, order), listeners, screening=screening,
                     correlations=correlations)


# ------------------------------------------------------------------------------------------ the type


class CcrType(TestType):
    """CCR as a test type (see the module)."""

    name = "ccr"
    scale = "CMOS"
    score_range = (MIN_SCORE, MAX_SCORE)
    # P.800 Annex E (CCR), the scores -3..+3: the quality of the second compared with the first.
    labels = ("Much worse", "Worse", "Slightly worse", "About the same", "Slightly better", "Better", "Much better")
    labels_what = "for the scores -3 to +3"
    instructions = "You will hear two samples, A then B. Rate the quality of the second (B) compared with the first (A)."
    noun = "pair"
    trial_class = CcrTrial
    session_class = CcrSession
    item_ratings = True
    value_description = "the score as given, -3..+3: the second sample (B) against the first (A)"
    rating_columns = ITEM_COLUMNS
    summary_columns = CMOS_COLUMNS
    plot_name = "cmos"

    def enrol(self, s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
              stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
        enrol(s, definition, listener_id, listener_index, stimuli, token)

    def streams(self, trial: CcrTrial) -> Streams:
        return Streams((trial.first, trial.second), ("A", "B"), None, (0, 1))

    def rate(self, session: Any, trial: CcrTrial, score: Any, playback: Playback, response_time_s: float) -> int:
        if not isinstance(score, int):
            raise StudyError(f"The rating {score!r} is not accepted; give one whole number.")
        if not isinstance(session, CcrSession):
            raise StudyError("CcrSession.rate takes the CcrTrial that next_trial returned.")
        counts, total = playback.play_counts, float(sum(playback.listened_s))
        session.rate(trial, score, play_counts=(counts[0], counts[1]),
                     listening_time_s=total if math.isfinite(total) else 0.0, response_time_s=response_time_s)
        return score

    def finish_ratings(self, frame: pd.DataFrame) -> pd.DataFrame:
        first = frame["processed_first"].astype(bool)
        frame["processed_first"] = first
        frame["cmos_value"] = np.where(first, -frame["value"], frame["value"]).astype(np.int64)
        return frame

    def export_summary(self, store: Store, definition: StudyDefinition,
                       ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        plain = ratings[~ratings["is_training"]]
        table = pd.DataFrame(columns=list(stats.SCREENING_COLUMNS))
        table.insert(1, "screening", [])  # CCR has no screening rule: no rows
        return cmos_summary(plain, condition_table(store, definition)), table

    def build_report(self, store: Store, definition: StudyDefinition, **options: Any) -> CcrReport:
        return build_ccr_report(store, definition)

    def decorate_plot(self, ax: Any, definition: StudyDefinition) -> None:
        ax.axhline(0.0, color="0.5", linewidth=0.8)


CCR = register_test_type(CcrType())

__all__ = ["CCR", "CMOS_COLUMNS", "CcrReport", "CcrSession", "CcrTrial", "CcrType", "build_ccr_report",
           "cmos_comparisons", "cmos_summary", "enrol", "listener_cmos", "order_plan"]
