"""Statistics of a listening test: MOS/DMOS per condition, screening, paired tests, metric correlation.

Every function is pure: it takes a :class:`pandas.DataFrame` of ratings and returns new
frames, never changing its input. A ratings frame has one row per judgement with the
columns

* ``listener``  – who rated (any hashable id),
* ``condition`` – the system/codec setting under test (any sortable id),
* ``clip``      – the programme item (expected; not used by these statistics),
* ``value``     – the score, an integer 1..5 (ACR: 5 excellent … 1 bad, giving MOS;
  DCR: 5 inaudible … 1 very annoying against a known reference, giving DMOS).

Other columns are ignored. Conditions and listeners appear in sorted order in every
result. The exact definition of every number is written next to its code.

Empty input (no rows) gives empty result frames that carry the documented columns.
A ``value`` that is not an integer from 1 to 5, or a missing ``listener``/``condition``,
raises :class:`RatingError` (a :class:`ValueError`) whose one sentence names the row.
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mosapp.errors import MosappError

#: Scores allowed on the five-grade ACR/DCR scales.
MIN_SCORE: int = 1
MAX_SCORE: int = 5

#: Columns of :func:`condition_summary`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "condition", "n", "n_listeners", "mean", "sd", "sem", "ci_low", "ci_high", "boot_low", "boot_high",
)
#: Columns of :func:`listener_means`.
LISTENER_MEANS_COLUMNS: tuple[str, ...] = ("listener", "condition", "n", "mean")
#: Columns of :attr:`ScreeningResult.table`.
SCREENING_COLUMNS: tuple[str, ...] = (
    "listener", "n_reference_trials", "n_below", "fraction_below", "dropped", "flagged", "reason",
)
#: Columns of :func:`paired_comparisons`.
PAIRED_COLUMNS: tuple[str, ...] = (
    "a", "b", "n_pairs", "mean_diff", "statistic", "p", "p_holm", "significant", "method", "note",
)
#: Columns of :func:`metric_correlations`.
CORRELATION_COLUMNS: tuple[str, ...] = (
    "metric", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p", "note",
)

#: Largest number of non-zero differences for which the Wilcoxon test uses the exact null
#: distribution (scipy's own ``method="auto"`` threshold).
WILCOXON_EXACT_MAX_N: int = 50
#: Per-listener mean differences are rounded to this many decimals before the Wilcoxon test,
#: so that differences equal as fractions (e.g. 10/3 - 1 and 11/3 - 4/3) tie exactly.
DIFF_DECIMALS: int = 10
#: Slack of the screening comparison ``fraction_below > max_fraction``, so that a fraction
#: exactly at the limit (3 of 20 = 15 %) is never dropped by rounding.
SCREENING_TOLERANCE: float = 1e-12


class RatingError(MosappError, ValueError):
    """A ratings table the statistics cannot use: a bad score, a missing id or column."""


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------


def _describe_row(ratings: pd.DataFrame, position: int) -> str:
    """``row 7 (listener 'L2', condition 'opus-12', clip 'castanets')`` for error messages."""
    label = ratings.index[position]
    parts = [f"{col} {ratings[col].iloc[position]!r}" for col in ("listener", "condition", "clip") if col in ratings]
    return f"row {label!r}" + (f" ({', '.join(parts)})" if parts else "")


def _is_valid_score(v: Any) -> bool:
    """True for an integer 1..5, given as an int or as an integral finite float (4.0)."""
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Integral):
        return MIN_SCORE <= int(v) <= MAX_SCORE
    if isinstance(v, numbers.Real):
        f = float(v)
        return math.isfinite(f) and f.is_integer() and MIN_SCORE <= f <= MAX_SCORE
    return False


def validate_ratings(ratings: pd.DataFrame, columns: Sequence[str] = ("listener", "condition", "value")) -> pd.DataFrame:
    """Check a ratings frame and return a copy with ``value`` as float64.

    Raises :class:`RatingError` (a ``ValueError``) when ``ratings`` is not a DataFrame, a
    needed column is missing, a ``listener``/``condition`` is missing (NaN/None), or a
    ``value`` is not an integer from 1 to 5 (floats such as ``4.0`` are accepted; ``4.5``,
    ``NaN``, ``True`` and ``"4"`` are not). The message names the first offending row.
    A frame with no rows is returned as it is (columns need not be present).
    """
    if not isinstance(ratings, pd.DataFrame):
        raise RatingError(f"Ratings must be a pandas DataFrame, not {type(ratings).__name__}.")
    if len(ratings) == 0:
        return ratings.copy()
    missing = [c for c in columns if c not in ratings.columns]
    if missing:
        raise RatingError(
            f"The ratings table lacks the column(s) {', '.join(map(repr, missing))}; "
            f"it needs {', '.join(map(repr, columns))}."
        )
    for col in ("listener", "condition"):
        if col in columns:
            null = ratings[col].isna().to_numpy()
            if null.any():
                pos = int(np.flatnonzero(null)[0])
                raise RatingError(f"The ratings table has no {col} at {_describe_row(ratings, pos)}.")
    if "value" in columns:
        for pos, v in enumerate(ratings["value"].tolist()):
            if not _is_valid_score(v):
                raise RatingError(
                    f"The rating at {_describe_row(ratings, pos)} is {v!r}, "
                    f"but ratings must be integers from {MIN_SCORE} to {MAX_SCORE}."
                )
    out = ratings.copy()
    if "value" in columns:
        out["value"] = out["value"].astype(np.float64)
    return out


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _check_confidence(confidence: float) -> None:
    if not (isinstance(confidence, numbers.Real) and 0.0 < float(confidence) < 1.0):
        raise RatingError(f"The confidence level must be strictly between 0 and 1, not {confidence!r}.")


# --------------------------------------------------------------------------------------
# per-condition summary
# --------------------------------------------------------------------------------------


def t_interval(mean: float, sd: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of a mean: ``mean ± t_{(1+c)/2, n-1} · sd / sqrt(n)``.

    ``t_{q, df}`` is the q-quantile of Student's t with ``df = n - 1`` degrees of freedom
    (``scipy.stats.t.ppf``). For ``n < 2`` the interval is undefined: ``(nan, nan)``.
    """
    if n < 2 or not math.isfinite(sd):
        return (math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)
    return (mean - half, mean + half)


def _condition_seed(seed: int, condition: Hashable) -> np.random.SeedSequence:
    """Seed of one condition's bootstrap: ``SeedSequence([seed, crc32(str(condition))])``.

    Depending only on ``seed`` and the condition's name, a condition's interval does not
    change when other conditions are added to or removed from the table.
    """
    return np.random.SeedSequence([int(seed), zlib.crc32(str(condition).encode("utf-8"))])


def cluster_bootstrap_interval(
    sums: np.ndarray, counts: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000,
    rng: np.random.Generator | int | np.random.SeedSequence | None = 0,
) -> tuple[float, float]:
    """Percentile interval of a mean under a listener-clustered bootstrap.

    Listener ``i`` gave ``counts[i]`` ratings summing to ``sums[i]``. One resample draws
    ``L = len(sums)`` listeners uniformly *with replacement* and keeps all their ratings;
    its statistic is the pooled mean ``Σ sums[drawn] / Σ counts[drawn]`` (so a listener
    counts in proportion to how many ratings they gave, as in the plain mean). Over
    ``resamples`` resamples, the interval is the ``(1-c)/2`` and ``(1+c)/2`` quantiles
    (``numpy.quantile``, linear interpolation). Because a whole listener is resampled,
    the interval widens when listeners disagree even if each listener is self-consistent.

    With fewer than 2 listeners, or ``resamples < 1``, the interval is ``(nan, nan)``:
    resampling one listener cannot show between-listener variation.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n_listeners = len(sums)
    if n_listeners < 2 or resamples < 1:
        return (math.nan, math.nan)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    idx = gen.integers(0, n_listeners, size=(int(resamples), n_listeners))
    means = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(low), float(high))


def condition_summary(
    ratings: pd.DataFrame, *, confidence: float = 0.95, bootstrap: int = 2000, seed: int = 0,
) -> pd.DataFrame:
    """Mean opinion score of each condition with its spread and two confidence intervals.

    One row per condition (sorted), columns :data:`SUMMARY_COLUMNS`:

    * ``n`` – number of ratings of the condition; ``n_listeners`` – distinct listeners;
    * ``mean`` – arithmetic mean of the ratings (MOS for ACR, DMOS for DCR);
    * ``sd`` – sample standard deviation, ``ddof = 1`` (NaN when ``n = 1``);
    * ``sem`` – ``sd / sqrt(n)``;
    * ``ci_low``, ``ci_high`` – ``mean ∓ t.ppf((1 + confidence)/2, n - 1) · sem``, the
      usual ITU-T P.800 / BT.500 interval that treats every rating as independent
      (NaN when ``n = 1``); see :func:`t_interval`;
    * ``boot_low``, ``boot_high`` – listener-clustered bootstrap percentile interval with
      ``bootstrap`` resamples (see :func:`cluster_bootstrap_interval`), seeded per
      condition from ``seed`` and the condition's name (:func:`_condition_seed`), hence
      deterministic; NaN with fewer than 2 listeners or ``bootstrap = 0``.

    Pass screened ratings (:meth:`ScreeningResult.apply`) to summarise only kept listeners.
    """
    _check_confidence(confidence)
    if not isinstance(bootstrap, numbers.Integral) or bootstrap < 0:
        raise RatingError(f"The number of bootstrap resamples must be a whole number ≥ 0, not {bootstrap!r}.")
    data = validate_ratings(ratings)
    if len(data) == 0:
        return _empty(SUMMARY_COLUMNS)
    rows = []
    for condition, group in data.groupby("condition", sort=True):
        values = group["value"].to_numpy()
        n = len(values)
        mean = float(values.mean())
        sd = float(values.std(ddof=1)) if n > 1 else math.nan
        sem = sd / math.sqrt(n) if n > 1 else math.nan
        ci_low, ci_high = t_interval(mean, sd, n, confidence)
        per_listener = group.groupby("listener", sort=True)["value"].agg(["sum", "count"])
        boot_low, boot_high = cluster_bootstrap_interval(
            per_listener["sum"].to_numpy(), per_listener["count"].to_numpy(),
            confidence=confidence, resamples=int(bootstrap),
            rng=np.random.default_rng(_condition_seed(seed, condition)),
        )
        rows.append({
            "condition": condition, "n": n, "n_listeners": len(per_listener), "mean": mean, "sd": sd,
            "sem": sem, "ci_low": ci_low, "ci_high": ci_high, "boot_low": boot_low, "boot_high": boot_high,
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def listener_means(ratings: pd.DataFrame) -> pd.DataFrame:
    """Each listener's mean score of each condition they rated.

    One row per (listener, condition) pair that has ratings, sorted by listener then
    condition; columns :data:`LISTENER_MEANS_COLUMNS`: ``n`` – that listener's number of
    ratings of the condition (over clips and repeats), ``mean`` – their arithmetic mean.
    """
    data = validate_ratings(ratings)
    if len(data) == 0:
        return _empty(LISTENER_MEANS_COLUMNS)
    out = (
        data.groupby(["listener", "condition"], sort=True)["value"]
        .agg(n="count", mean="mean")
        .reset_index()
    )
    out["n"] = out["n"].astype(np.int64)
    return out[list(LISTENER_MEANS_COLUMNS)]


# --------------------------------------------------------------------------------------
# post-screening
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreeningResult:
    """Outcome of :func:`screen_listeners`.

    ``kept`` and ``dropped`` list listener ids (sorted); ``table`` has one row per listener
    with the columns :data:`SCREENING_COLUMNS`.
    """

    kept: list
    dropped: list
    table: pd.DataFrame
    reference_condition: Hashable = None
    min_score: int = 4
    max_fraction: float = 0.15
    flagged: list = field(default_factory=list)

    def apply(self, ratings: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``ratings`` whose listener was not dropped (a copy)."""
        if len(ratings) == 0 or not self.dropped:
            return ratings.copy()
        return ratings[~ratings["listener"].isin(self.dropped)].copy()


def screen_listeners(
    ratings: pd.DataFrame, reference_condition: Hashable, *, min_score: int = 4, max_fraction: float = 0.15,
) -> ScreeningResult:
    """Post-screen listeners by how they rate the hidden reference.

    For each listener: ``n_reference_trials`` – their ratings of ``reference_condition``;
    ``n_below`` – how many of those are ``< min_score``; ``fraction_below`` –
    ``n_below / n_reference_trials``. A listener is **dropped** when
    ``fraction_below > max_fraction`` (strictly; a fraction exactly at the limit, such as
    3 of 20 at 15 %, is kept; comparison with :data:`SCREENING_TOLERANCE` slack).

    With the defaults (``min_score = 4``, ``max_fraction = 0.15``) this is the DCR rule of
    this project, in the spirit of ITU-R BS.1534-3 §4.1.2: a listener who grades the
    hidden reference below "perceptible but not annoying" in more than 15 % of its trials
    is not discriminating reliably. Use ``min_score = 5`` for a stricter rule.

    A listener with no reference trials is **kept** and **flagged** (``flagged`` True,
    ``fraction_below`` NaN, a reason saying so), since there is nothing to judge them by.
    ``reason`` is ``""`` for a plainly kept listener.
    """
    if not isinstance(min_score, numbers.Real) or isinstance(min_score, bool):
        raise RatingError(f"The screening threshold min_score must be a number, not {min_score!r}.")
    if not (isinstance(max_fraction, numbers.Real) and 0.0 <= float(max_fraction) <= 1.0):
        raise RatingError(f"The screening limit max_fraction must be between 0 and 1, not {max_fraction!r}.")
    data = validate_ratings(ratings)
    if len(data) == 0:
        return ScreeningResult([], [], _empty(SCREENING_COLUMNS), reference_condition, min_score, max_fraction, [])
    rows = []
    for listener, group in data.groupby("listener", sort=True):
        ref = group.loc[group["condition"] == reference_condition, "value"].to_numpy()
        n_ref = len(ref)
        n_below = int((ref < min_score).sum())
        if n_ref == 0:
            rows.append({
                "listener": listener, "n_reference_trials": 0, "n_below": 0, "fraction_below": math.nan,
                "dropped": False, "flagged": True,
                "reason": f"kept without screening: no trials of the reference condition {reference_condition!r}",
            })
            continue
        fraction = n_below / n_ref
        dropped = fraction > float(max_fraction) + SCREENING_TOLERANCE
        reason = (
            f"rated the reference below {min_score} in {n_below} of {n_ref} trials "
            f"({100 * fraction:.3g}% > {100 * float(max_fraction):.3g}%)"
            if dropped else ""
        )
        rows.append({
            "listener": listener, "n_reference_trials": n_ref, "n_below": n_below, "fraction_below": fraction,
            "dropped": bool(dropped), "flagged": False, "reason": reason,
        })
    table = pd.DataFrame(rows, columns=list(SCREENING_COLUMNS))
    kept = table.loc[~table["dropped"], "listener"].tolist()
    dropped = table.loc[table["dropped"], "listener"].tolist()
    flagged = table.loc[table["flagged"], "listener"].tolist()
    return ScreeningResult(kept, dropped, table, reference_condition, min_score, max_fraction, flagged)


# --------------------------------------------------------------------------------------
# paired comparisons
# --------------------------------------------------------------------------------------


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (Holm 1979), in the input order.

    Let the ``m`` finite p-values sorted ascending be ``p_(1) ≤ … ≤ p_(m)``. The adjusted
    value is ``p̃_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j))``; rejecting where
    ``p̃ ≤ α`` is Holm's step-down procedure at family-wise level α. NaN p-values are not
    counted in ``m`` and stay NaN. Ties are ordered stably (their adjusted values end up
    equal through the running maximum).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    factors = m - np.arange(m)  # m, m-1, ..., 1
    adjusted = np.maximum.accumulate(np.minimum(1.0, factors * p[order]))
    out[order] = adjusted
    return out


def wilcoxon_signed_rank(diffs: Sequence[float]) -> tuple[float, float, str, str]:
    """Two-sided Wilcoxon signed-rank test of paired differences: ``(statistic, p, method, note)``.

    Differences are rounded to :data:`DIFF_DECIMALS` decimals, zeros are dropped
    (Wilcoxon's convention, scipy ``zero_method="wilcox"``), and with ``k`` non-zero
    differences ``scipy.stats.wilcoxon(d, alternative="two-sided", method=…)`` is called
    with ``method="exact"`` when ``k ≤ 50`` and the ``|d|`` have no ties, else
    ``method="approx"`` (normal approximation with scipy's tie correction, no continuity
    correction). ``statistic`` is ``min(R+, R−)``, the smaller signed-rank sum.

    Returns NaN statistic and p with a ``note`` (``method`` ``""``) when there are fewer
    than 2 differences or all are zero.
    """
    d = np.round(np.asarray(diffs, dtype=np.float64), DIFF_DECIMALS)
    if len(d) < 2:
        return (math.nan, math.nan, "", f"not tested: {len(d)} listener(s) rated both conditions, need 2")
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return (math.nan, math.nan, "", "not tested: every listener's difference is zero")
    has_ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    method = "exact" if len(nonzero) <= WILCOXON_EXACT_MAX_N and not has_ties else "approx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sample size too small for normal approximation"
        res = stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method=method)
    notes = []
    if len(nonzero) < len(d):
        notes.append(f"{len(d) - len(nonzero)} zero difference(s) dropped")
    if method == "approx" and len(nonzero) < 10:
        notes.append("normal approximation with few differences")
    return (float(res.statistic), float(res.pvalue), method, "; ".join(notes))


def paired_comparisons(
    ratings: pd.DataFrame, *, alpha: float = 0.05, conditions: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Every pair of conditions compared on per-listener means, Holm-corrected.

    For each pair ``(a, b)`` of conditions (``a`` before ``b`` in sorted order, or in the
    order of ``conditions`` when given, which also restricts the family), over the
    listeners who rated both: ``n_pairs`` – how many; ``mean_diff`` – the mean over them
    of ``mean_a − mean_b`` (each listener's :func:`listener_means`; positive = ``a``
    scored higher); ``statistic``, ``p``, ``method`` – the two-sided Wilcoxon signed-rank
    test of those differences (:func:`wilcoxon_signed_rank`); ``p_holm`` – :func:`holm`
    over all pairs with a p-value; ``significant`` – ``p_holm ≤ alpha`` (False where p
    is NaN); ``note`` – why a pair was not tested, or what was approximated.

    Testing per-listener means (not single ratings) makes the listener the unit of
    replication, so the repeated ratings of one listener do not inflate significance.
    """
    if not (isinstance(alpha, numbers.Real) and 0.0 < float(alpha) < 1.0):
        raise RatingError(f"The significance level alpha must be strictly between 0 and 1, not {alpha!r}.")
    data = validate_ratings(ratings)
    if len(data) == 0:
        return _empty(PAIRED_COLUMNS)
    means = listener_means(data).pivot(index="listener", columns="condition", values="mean")
    if conditions is None:
        names = list(means.columns)
    else:
        names = list(conditions)
        unknown = [c for c in names if c not in means.columns]
        if unknown:
            raise RatingError(f"The condition(s) {', '.join(map(repr, unknown))} have no ratings.")
    rows = []
    for a, b in itertools.combinations(names, 2):
        both = means[[a, b]].dropna()
        diffs = (both[a] - both[b]).to_numpy()
        statistic, p, method, note = wilcoxon_signed_rank(diffs)
        rows.append({
            "a": a, "b": b, "n_pairs": len(diffs), "mean_diff": float(diffs.mean()) if len(diffs) else math.nan,
            "statistic": statistic, "p": p, "method": method, "note": note,
        })
    if not rows:
        return _empty(PAIRED_COLUMNS)
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"].to_numpy())
    out["significant"] = (out["p_holm"] <= float(alpha)).astype(bool)  # NaN compares False
    return out[list(PAIRED_COLUMNS)]


# --------------------------------------------------------------------------------------
# objective metrics vs listeners
# --------------------------------------------------------------------------------------


def metric_correlations(condition_scores: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Correlation of each objective metric with the per-condition listener score.

    ``condition_scores`` has columns ``condition`` and ``mean`` (e.g. the output of
    :func:`condition_summary`; other columns are ignored); ``metrics`` has ``condition``
    and one numeric column per metric (e.g. ``visqol``, ``mel_distance``), one row per
    condition. Conditions are matched by ``condition`` (inner join).

    Per metric (in column order): the conditions where both the metric and the mean are
    finite, ``n`` of them; ``pearson_r``/``pearson_p`` – ``scipy.stats.pearsonr``;
    ``spearman_rho``/``spearman_p`` – ``scipy.stats.spearmanr`` (ranks, average ties);
    p-values two-sided. With ``n < 3``, or a constant metric or mean, all four are NaN and
    ``note`` says why. The sign is the metric's own: a lower-is-better metric (mel
    distance) that tracks listeners correlates negatively.
    """
    for name, frame, needed in (("condition scores", condition_scores, ("condition", "mean")),
                                ("metrics", metrics, ("condition",))):
        if not isinstance(frame, pd.DataFrame):
            raise RatingError(f"The {name} must be a pandas DataFrame, not {type(frame).__name__}.")
        missing = [c for c in needed if c not in frame.columns]
        if missing and len(frame):
            raise RatingError(f"The {name} table lacks the column(s) {', '.join(map(repr, missing))}.")
    if "condition" not in metrics.columns:
        return _empty(CORRELATION_COLUMNS)
    metric_names = [c for c in metrics.columns if c != "condition"]
    if not metric_names:
        return _empty(CORRELATION_COLUMNS)
    for frame, name in ((condition_scores, "condition scores"), (metrics, "metrics")):
        if "condition" in frame.columns and frame["condition"].duplicated().any():
            dup = frame.loc[frame["condition"].duplicated(), "condition"].iloc[0]
            raise RatingError(f"The {name} table lists the condition {dup!r} more than once.")
    numeric = {}
    for col in metric_names:
        try:
            numeric[col] = pd.to_numeric(metrics[col], errors="raise").astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise RatingError(f"The metric column {col!r} holds non-numeric values ({exc}).") from None
    scores = (
        condition_scores[["condition", "mean"]].copy()
        if len(condition_scores) else pd.DataFrame({"condition": [], "mean": []})
    )
    scores["mean"] = pd.to_numeric(scores["mean"], errors="coerce").astype(np.float64)
    table = pd.DataFrame({"condition": metrics["condition"], **numeric})
    if len(scores) == 0 or len(table) == 0:
        merged = pd.DataFrame(columns=["condition", "mean", *metric_names])
    else:
        merged = scores.merge(table, on="condition", how="inner")
    rows = []
    for col in metric_names:
        x = merged[col].to_numpy(dtype=np.float64) if len(merged) else np.array([])
        y = merged["mean"].to_numpy(dtype=np.float64) if len(merged) else np.array([])
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        n = int(ok.sum())
        row = {"metric": col, "n": n, "pearson_r": math.nan, "pearson_p": math.nan,
               "spearman_rho": math.nan, "spearman_p": math.nan, "note": ""}
        if n < 3:
            row["note"] = f"not computed: {n} condition(s) with both a score and this metric, need 3"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            row["note"] = "not computed: " + ("the metric" if np.ptp(x) == 0 else "the listener score") + \
                " is the same for every condition"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pr = stats.pearsonr(x, y)
                sr = stats.spearmanr(x, y)
            row.update(pearson_r=float(pr[0]), pearson_p=float(pr[1]),
                       spearman_rho=float(sr[0]), spearman_p=float(sr[1]))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))


__all__ = [
    "CORRELATION_COLUMNS", "LISTENER_MEANS_COLUMNS", "PAIRED_COLUMNS", "SCREENING_COLUMNS", "SUMMARY_COLUMNS",
    "RatingError", "ScreeningResult", "cluster_bootstrap_interval", "condition_summary", "holm",
    "listener_means", "metric_correlations", "paired_comparisons", "screen_listeners", "t_interval",
    "validate_ratings", "wilcoxon_signed_rank",
]
