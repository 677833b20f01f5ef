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

import functools
import itertools
import math
import numbers
import warnings
import zlib
from collections.abc import Hashable, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mosapp.core.errors import MosappError

#: Scores allowed on the five-grade ACR/DCR scales.
MIN_SCORE: int = 1
MAX_SCORE: int = 5

#: The score range that :func:`validate_ratings` accepts, (low, high) whole numbers; the
#: five-grade scales by default, changed for a block with :func:`score_range` (MUSHRA 0..100,
#: CCR -3..+3).
_SCORE_RANGE: ContextVar[tuple[int, int]] = ContextVar("score_range", default=(MIN_SCORE, MAX_SCORE))


@contextmanager
def score_range(low: int, high: int):
    """Within the block, every function here accepts whole-number scores from ``low`` to ``high``.

    ``with score_range(0, 100): condition_summary(mushra_ratings)`` — the statistics are the
    same on any scale; only the validation of ``value`` changes (per thread/task: a ContextVar).
    """
    token = _SCORE_RANGE.set((int(low), int(high)))
    try:
        yield
    finally:
        _SCORE_RANGE.reset(token)


#: Columns of :func:`condition_summary`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "condition", "n", "n_listeners", "mean", "sd", "sem", "listener_mean", "listener_sd", "ci_low", "ci_high",
    "boot_low", "boot_high", "bca_low", "bca_high", "boot_t_low", "boot_t_high", "rating_ci_low", "rating_ci_high",
)
#: Columns of :func:`mixed_model`.
MIXED_COLUMNS: tuple[str, ...] = (
    "condition", "estimate", "se", "df", "t_low", "t_high", "listener_var", "clip_var", "residual_var", "residual",
    "n", "n_listeners", "n_clips", "converged", "note",
)
#: Columns of :func:`clip_condition_summary`.
CLIP_COLUMNS: tuple[str, ...] = ("clip", "condition", "n", "n_listeners", "mean", "listener_sd", "ci_low", "ci_high")
#: Columns of :attr:`AgreementResult.listeners`.
AGREEMENT_COLUMNS: tuple[str, ...] = ("listener", "n_points", "r_rest", "note")

#: Columns of :func:`listener_means`.
LISTENER_MEANS_COLUMNS: tuple[str, ...] = ("listener", "condition", "n", "mean")
#: Columns of :attr:`ScreeningResult.table`.
SCREENING_COLUMNS: tuple[str, ...] = (
    "listener", "counted_per", "n_reference_trials", "n_below", "fraction_below", "n_anchor_trials", "n_anchor_high",
    "fraction_anchor_high", "n_gold", "n_gold_failed", "straight_lining", "dropped", "flagged", "reason",
)
#: Columns of :func:`paired_comparisons`.
PAIRED_COLUMNS: tuple[str, ...] = (
    "a", "b", "n_pairs", "mean_diff", "diff_ci_low", "diff_ci_high", "dz", "t", "df", "p_t", "p_t_holm",
    "p_perm", "p_perm_holm", "perm_method", "wilcoxon_v", "p_wilcoxon", "p_wilcoxon_holm", "wilcoxon_method",
    "significant_t", "listeners_needed", "note",
)
#: Columns of :func:`metric_correlations`.
CORRELATION_COLUMNS: tuple[str, ...] = (
    "metric", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p", "spearman_method", "note",
)

#: Largest number of non-zero differences for which the Wilcoxon test uses the exact null
#: distribution (with or without ties: :func:`wilcoxon_signed_rank`).
WILCOXON_EXACT_MAX_N: int = 200
#: :func:`listeners_needed` answers at most this many listeners (NaN beyond).
LISTENERS_NEEDED_MAX: int = 10_000
#: Largest number of differences for which the sign-flip test enumerates all ``2^n`` patterns.
SIGN_FLIP_EXACT_MAX_N: int = 16
#: Per-listener mean differences are rounded to this many decimals before the Wilcoxon test,
#: so that differences equal as fractions (e.g. 10/3 - 1 and 11/3 - 4/3) tie exactly.
DIFF_DECIMALS: int = 10
#: Slack of the screening comparison ``fraction_below > max_fraction``, so that a fraction
#: exactly at the limit (3 of 20 = 15 %) is never dropped by rounding.
SCREENING_TOLERANCE: float = 1e-12
#: :func:`screen_listeners`' default thresholds on the five-grade scale (the one home of these
#: numbers in the statistics; a study's ``[screening]`` defaults are its test type's).
SCREENING_MIN_SCORE: int = 4
SCREENING_MAX_FRACTION: float = 0.15
SCREENING_ANCHOR_MAX_SCORE: int = 4


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
    """True for an integer 1..5 (or the :func:`score_range`), as an int or an integral finite float (4.0)."""
    low, high = _SCORE_RANGE.get()
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Integral):
        return low <= int(v) <= high
    if isinstance(v, numbers.Real):
        f = float(v)
        return math.isfinite(f) and f.is_integer() and low <= f <= high
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
                    f"but ratings must be integers from {_SCORE_RANGE.get()[0]} to {_SCORE_RANGE.get()[1]}."
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


def cluster_bca_interval(
    sums: np.ndarray, counts: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000,
    rng: np.random.Generator | int | np.random.SeedSequence | None = 0,
) -> tuple[float, float]:
    """BCa interval (Efron 1987) of the pooled mean ``Σ sums / Σ counts`` under the listener-clustered bootstrap.

    The same resampling as :func:`cluster_bootstrap_interval` (whole listeners, with
    replacement), with the bias correction ``z0 = Φ⁻¹(#{θ* < θ̂} / B)`` and the acceleration
    ``a = Σ (θ̄₍.₎ − θ₍ᵢ₎)³ / (6 · (Σ (θ̄₍.₎ − θ₍ᵢ₎)²)^{3/2})`` from the leave-one-listener-out
    jackknife; computed by ``scipy.stats.bootstrap(method="BCa", paired=True)`` on the
    listeners' ``(sum, count)`` (R: ``boot.ci(boot(listeners, function(d, i) sum(d$sum[i]) /
    sum(d$count[i]), R), type = "bca")``; R interpolates the order statistics on the normal
    scale, scipy takes ``numpy.percentile``: the ends agree to the resampling error).
    ``(nan, nan)`` with fewer than 3 listeners or ``resamples < 1``; ``(θ̂, θ̂)`` when every
    listener's mean is the same.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if len(sums) < 3 or resamples < 1:
        return (math.nan, math.nan)
    theta = float(sums.sum() / counts.sum())
    if np.ptp(sums / counts) == 0:
        return (theta, theta)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def pooled(s: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(s, axis=axis) / np.sum(c, axis=axis)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a degenerate resample distribution: NaN ends, reported as such
        res = stats.bootstrap((sums, counts), pooled, paired=True, vectorized=True, confidence_level=confidence,
                              n_resamples=int(resamples), method="BCa", random_state=gen)
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def _ratio_se(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Standard error of the pooled mean ``Σ s / Σ c`` over listeners (last axis), by linearisation.

    ``se² = L/(L−1) · Σ (s_i − θ c_i)² / (Σ c_i)²`` with ``θ = Σ s / Σ c``: with equal counts, the
    SD of the listener means over ``√L``.
    """
    n = sums.shape[-1]
    theta = sums.sum(axis=-1, keepdims=True) / counts.sum(axis=-1, keepdims=True)
    resid = sums - theta * counts
    return np.sqrt(n / (n - 1) * (resid ** 2).sum(axis=-1)) / counts.sum(axis=-1)


def cluster_bootstrap_t_interval(
    sums: np.ndarray, counts: np.ndarray, *, confidence: float = 0.95, resamples: int = 2000,
    rng: np.random.Generator | int | np.random.SeedSequence | None = 0,
) -> tuple[float, float]:
    """Bootstrap-t (studentised) interval of the pooled mean under the listener-clustered bootstrap.

    With ``θ̂ = Σ sums / Σ counts`` and its standard error ``se`` (:func:`_ratio_se`), each
    resample of ``L`` listeners (drawn with replacement, as :func:`cluster_bootstrap_interval`)
    gives ``t* = (θ* − θ̂) / se*``; the interval is ``[θ̂ − t*_{(1+c)/2} · se, θ̂ − t*_{(1−c)/2} · se]``
    (Efron & Tibshirani 1993, ch. 12; R: ``boot.ci(b, type = "stud")`` with the variance as the
    statistic's second element). A resample whose listeners all have one mean has ``se* = 0``:
    ``t* = ±∞`` (or 0 when ``θ* = θ̂``). Unlike the percentile interval, it is not too narrow
    with few listeners (coverage in ``studies/README.md``). ``(nan, nan)`` with fewer than 3
    listeners or ``resamples < 1``; ``(θ̂, θ̂)`` when every listener's mean is the same.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    n = len(sums)
    if n < 3 or resamples < 1:
        return (math.nan, math.nan)
    theta = float(sums.sum() / counts.sum())
    se = float(_ratio_se(sums, counts))
    if se == 0:
        return (theta, theta)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    idx = gen.integers(0, n, size=(int(resamples), n))
    s, c = sums[idx], counts[idx]
    boot = s.sum(axis=1) / c.sum(axis=1)
    se_b = _ratio_se(s, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se_b > 0, (boot - theta) / se_b, np.sign(boot - theta) * np.inf)
    alpha = 1.0 - confidence
    t_low, t_high = np.quantile(np.nan_to_num(t, nan=0.0), [alpha / 2.0, 1.0 - alpha / 2.0])
    return (theta - float(t_high) * se, theta - float(t_low) * se)


def condition_summary(
    ratings: pd.DataFrame, *, confidence: float = 0.95, bootstrap: int = 2000, seed: int = 0,
) -> pd.DataFrame:
    """Mean opinion score of each condition with its spread and three confidence intervals.

    One row per condition (sorted), columns :data:`SUMMARY_COLUMNS`. Let condition ``c``
    have ``n`` ratings ``x_1..x_n`` from ``L`` listeners, listener ``i`` giving ``n_i`` of
    them with mean ``m_i``:

    * ``n``, ``n_listeners`` (``L``);
    * ``mean`` – ``Σ x / n``, the arithmetic mean of the ratings (MOS for ACR, DMOS for DCR);
    * ``sd`` – sample standard deviation of the ratings, ``ddof = 1``; ``sem`` – ``sd / √n``;
    * ``listener_mean`` – ``Σ m_i / L``; ``listener_sd`` – SD of the ``m_i`` (``ddof = 1``);
    * ``ci_low``, ``ci_high`` – **the default interval, at the listener level**:
      ``listener_mean ∓ t.ppf((1 + confidence)/2, L − 1) · listener_sd / √L``, the t
      interval over listener means (the listener is the unit of replication; NaN when
      ``L < 2``). In a balanced design (every listener rates the condition equally often)
      ``listener_mean == mean``;
    * ``boot_low``, ``boot_high`` – listener-clustered bootstrap percentile interval of
      ``mean`` with ``bootstrap`` resamples (:func:`cluster_bootstrap_interval`), seeded per
      condition (:func:`_condition_seed`), hence deterministic; NaN with ``L < 2`` or
      ``bootstrap = 0``. Its coverage is below nominal with few listeners (the percentile
      interval of a mean is too narrow by about ``√((L−1)/L)``): see ``studies/README.md``;
    * ``bca_low``, ``bca_high`` – the BCa interval of the same listener-clustered bootstrap
      (:func:`cluster_bca_interval`, ``bootstrap`` resamples, seeded per condition); NaN with
      ``L < 3``;
    * ``boot_t_low``, ``boot_t_high`` – the bootstrap-t interval of the same resampling
      (:func:`cluster_bootstrap_t_interval`, seeded per condition); NaN with ``L < 3``;
    * ``rating_ci_low``, ``rating_ci_high`` – the per-rating t interval
      ``mean ∓ t.ppf((1 + confidence)/2, n − 1) · sem``, which treats every rating as
      independent (the classic P.800 / BT.500 interval; too narrow when one listener gives
      several ratings). Kept for comparison under this name.

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
        rating_low, rating_high = t_interval(mean, sd, n, confidence)
        per_listener = group.groupby("listener", sort=True)["value"].agg(["sum", "count", "mean"])
        m = per_listener["mean"].to_numpy(dtype=np.float64)
        n_listeners = len(m)
        l_mean = float(m.mean())
        l_sd = float(m.std(ddof=1)) if n_listeners > 1 else math.nan
        ci_low, ci_high = t_interval(l_mean, l_sd, n_listeners, confidence)
        boot_low, boot_high = cluster_bootstrap_interval(
            per_listener["sum"].to_numpy(), per_listener["count"].to_numpy(),
            confidence=confidence, resamples=int(bootstrap),
            rng=np.random.default_rng(_condition_seed(seed, condition)),
        )
        bca_low, bca_high = cluster_bca_interval(
            per_listener["sum"].to_numpy(), per_listener["count"].to_numpy(),
            confidence=confidence, resamples=int(bootstrap),
            rng=np.random.default_rng(_condition_seed(seed + 1, condition)),
        )
        boot_t_low, boot_t_high = cluster_bootstrap_t_interval(
            per_listener["sum"].to_numpy(), per_listener["count"].to_numpy(),
            confidence=confidence, resamples=int(bootstrap),
            rng=np.random.default_rng(_condition_seed(seed + 2, condition)),
        )
        rows.append({
            "condition": condition, "n": n, "n_listeners": n_listeners, "mean": mean, "sd": sd, "sem": sem,
            "listener_mean": l_mean, "listener_sd": l_sd, "ci_low": ci_low, "ci_high": ci_high,
            "boot_low": boot_low, "boot_high": boot_high, "bca_low": bca_low, "bca_high": bca_high,
            "boot_t_low": boot_t_low, "boot_t_high": boot_t_high,
            "rating_ci_low": rating_low, "rating_ci_high": rating_high,
        })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def clip_condition_summary(ratings: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Each (clip, condition) cell: ratings, listeners, and the t interval over listener means.

    One row per cell with ratings (sorted by clip, then condition), columns
    :data:`CLIP_COLUMNS`: ``mean`` is the mean of the cell's ratings; ``listener_sd`` (the SD of
    the listeners' means, as ``listener_sd`` of :func:`condition_summary`; the column was ``sd``
    before, a name :func:`condition_summary` uses for the SD of single ratings) and the interval
    are those of the cell's per-listener means ``m_i`` (``listener_mean`` of
    :func:`condition_summary`, restricted to the cell): ``mean(m) ∓ t_{(1+c)/2, L−1} · sd(m)/√L``
    (NaN when the cell has fewer than 2 listeners). With one rating per listener per cell, as
    in a plan without repetitions, ``m_i`` are simply the ratings.
    """
    _check_confidence(confidence)
    data = validate_ratings(ratings, ("listener", "condition", "clip", "value"))
    if len(data) == 0:
        return _empty(CLIP_COLUMNS)
    rows = []
    for (clip, condition), group in data.groupby(["clip", "condition"], sort=True):
        m = group.groupby("listener", sort=True)["value"].mean().to_numpy(dtype=np.float64)
        sd = float(m.std(ddof=1)) if len(m) > 1 else math.nan
        low, high = t_interval(float(m.mean()), sd, len(m), confidence)
        rows.append({"clip": clip, "condition": condition, "n": len(group), "n_listeners": len(m),
                     "mean": float(group["value"].mean()), "listener_sd": sd, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=list(CLIP_COLUMNS))


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

    ``kept`` and ``dropped`` list listener ids (sorted); ``flagged`` those kept with a
    remark (too few trials to judge, straight-lining); ``table`` has one row per listener
    with the columns :data:`SCREENING_COLUMNS`.
    """

    kept: list
    dropped: list
    table: pd.DataFrame
    reference_condition: Hashable = None
    min_score: int = SCREENING_MIN_SCORE
    max_fraction: float = SCREENING_MAX_FRACTION
    flagged: list = field(default_factory=list)
    min_reference_trials: int = 1
    per_item: bool = False
    anchor_condition: Hashable = None
    anchor_max_score: float = SCREENING_ANCHOR_MAX_SCORE
    gold_max_failures: int = 0

    def apply(self, ratings: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``ratings`` whose listener was not dropped (a copy)."""
        if len(ratings) == 0 or not self.dropped:
            return ratings.copy()
        return ratings[~ratings["listener"].isin(self.dropped)].copy()


def _fraction_rule(values: np.ndarray, bad: np.ndarray, max_fraction: float, minimum: int) -> tuple[int, int, float, str]:
    """(n, n bad, fraction or NaN, verdict) with verdict ``drop``, ``keep`` or ``few``."""
    n, k = len(values), int(bad.sum())
    if n == 0:
        return 0, 0, math.nan, "none"
    fraction = k / n
    if n < minimum:
        return n, k, fraction, "few"
    return n, k, fraction, "drop" if fraction > float(max_fraction) + SCREENING_TOLERANCE else "keep"


def _screened_values(group: pd.DataFrame, condition: Hashable, per_item: bool) -> np.ndarray:
    """A listener's scores of ``condition``: one per rating, or (``per_item``) their mean per clip."""
    if not len(group):
        return np.array([])
    rows = group[group["condition"] == condition]
    if per_item:
        return rows.groupby("clip", sort=True)["value"].mean().to_numpy(dtype=np.float64)
    return rows["value"].to_numpy()


def _check_screening(min_score: Any, max_fraction: Any, min_reference_trials: Any) -> None:
    if not isinstance(min_score, numbers.Real) or isinstance(min_score, bool):
        raise RatingError(f"The screening threshold min_score must be a number, not {min_score!r}.")
    if not (isinstance(max_fraction, numbers.Real) and 0.0 <= float(max_fraction) <= 1.0):
        raise RatingError(f"The screening limit max_fraction must be between 0 and 1, not {max_fraction!r}.")
    if not isinstance(min_reference_trials, numbers.Integral) or min_reference_trials < 1:
        raise RatingError(f"min_reference_trials must be a whole number of at least 1, not {min_reference_trials!r}.")


@dataclass(frozen=True)
class _ScreeningRule:
    """:func:`screen_listeners`' settings, applied to one listener at a time."""

    reference_condition: Hashable
    min_score: float
    max_fraction: float
    min_reference_trials: int
    anchor_condition: Hashable
    anchor_max_score: float
    gold_max_failures: int
    per_item: bool

    @property
    def unit(self) -> str:
        return "item" if self.per_item else "trial"

    def screen(self, listener: Hashable, group: pd.DataFrame, gold: tuple[int, int]) -> dict[str, Any]:
        """The screening table's row of one listener (``group``: their ratings; ``gold``: (trials, failed))."""
        drop: list[str] = []
        flag: list[str] = []
        n_ref, n_below, fraction = self._reference(group, drop, flag)
        n_anchor, n_high, fraction_high = self._anchor(group, drop, flag)
        n_gold, n_failed = gold
        if n_failed > self.gold_max_failures:
            drop.append(f"missed {n_failed} of {n_gold} gold trials (more than {self.gold_max_failures} allowed)")
        means = group.groupby("condition")["value"].mean() if len(group) else pd.Series(dtype=float)
        straight = bool(len(means) >= 2 and float(np.ptp(means.to_numpy())) == 0.0)
        if straight:
            flag.append(f"straight-lining: the same mean score {means.iloc[0]:g} for all {len(means)} conditions")
        return {
            "listener": listener, "counted_per": self.unit, "n_reference_trials": n_ref, "n_below": n_below,
            "fraction_below": fraction, "n_anchor_trials": n_anchor, "n_anchor_high": n_high,
            "fraction_anchor_high": fraction_high, "n_gold": n_gold, "n_gold_failed": n_failed,
            "straight_lining": straight, "dropped": bool(drop), "flagged": bool(flag) and not drop,
            "reason": "; ".join(drop + flag),
        }

    def _reference(self, group: pd.DataFrame, drop: list[str], flag: list[str]) -> tuple[int, int, float]:
        """The hidden-reference rule: (trials, below ``min_score``, fraction)."""
        unit, min_score = self.unit, self.min_score
        ref = _screened_values(group, self.reference_condition, self.per_item)
        n_ref, n_below, fraction, verdict = _fraction_rule(ref, ref < min_score, self.max_fraction,
                                                           self.min_reference_trials)
        if verdict == "none":
            flag.append(f"kept without reference screening: no trials of the reference condition "
                        f"{self.reference_condition!r}")
        elif verdict == "few":
            flag.append(f"kept without reference screening: {n_ref} reference {unit}(s), fewer than the "
                        f"{self.min_reference_trials} needed to judge")
        elif verdict == "drop":
            drop.append(f"rated the reference below {min_score:g} in {n_below} of {n_ref} {unit}s "
                        f"({100 * fraction:.3g}% > {100 * float(self.max_fraction):.3g}%)")
        return n_ref, n_below, fraction

    def _anchor(self, group: pd.DataFrame, drop: list[str], flag: list[str]) -> tuple[int, int, float]:
        """The anchor rule (where there is an anchor): (trials, above ``anchor_max_score``, fraction)."""
        if self.anchor_condition is None:
            return 0, 0, math.nan
        unit = self.unit
        anc = _screened_values(group, self.anchor_condition, self.per_item)
        n_anchor, n_high, fraction_high, verdict = _fraction_rule(anc, anc > self.anchor_max_score, self.max_fraction,
                                                                  self.min_reference_trials)
        if verdict in ("none", "few"):
            flag.append(f"kept without anchor screening: {n_anchor} anchor {unit}(s), fewer than the "
                        f"{self.min_reference_trials} needed to judge")
        elif verdict == "drop":
            drop.append(f"rated the anchor {self.anchor_condition!r} above {self.anchor_max_score:g} in {n_high} of "
                        f"{n_anchor} {unit}s ({100 * fraction_high:.3g}% > {100 * float(self.max_fraction):.3g}%)")
        return n_anchor, n_high, fraction_high


def screen_listeners(
    ratings: pd.DataFrame, reference_condition: Hashable, *, min_score: float = SCREENING_MIN_SCORE,
    max_fraction: float = SCREENING_MAX_FRACTION, min_reference_trials: int = 1, anchor_condition: Hashable = None,
    anchor_max_score: float = SCREENING_ANCHOR_MAX_SCORE,
    gold: pd.DataFrame | None = None, gold_max_failures: int = 0, per_item: bool = False,
) -> ScreeningResult:
    """Post-screen listeners by the hidden reference, optionally an anchor (BS.1534-3: the mid-range one), and gold trials.

    For each listener, over their ratings of ``reference_condition``: ``n_reference_trials``,
    ``n_below`` – how many are ``< min_score``, ``fraction_below`` – their ratio. **Reference
    rule**: dropped when ``fraction_below > max_fraction`` (strictly, with
    :data:`SCREENING_TOLERANCE` slack: 3 of 20 at 15 % is kept) — *but only* when the listener
    has at least ``min_reference_trials`` reference trials. **Below that minimum the rule is
    not applied**: the listener is kept and flagged ("too few … to judge"), since with few
    trials a single slip would exceed any fraction (with 3 trials, one is 33 %).
    ``min_reference_trials = ceil(1 / max_fraction)`` (7 for 15 %) is the smallest number of
    trials at which one slip alone does not drop anyone.

    **Anchor rule** (when ``anchor_condition`` is given; ITU-R BS.1534-3 §4.1.2, whose
    listeners are dropped for rating the hidden reference below 90 *or the mid anchor above
    90* in more than 15 % of the items): ``n_anchor_high`` – ratings of the anchor
    ``> anchor_max_score``; dropped when their fraction exceeds ``max_fraction``, with the
    same minimum number of trials.

    **Gold trials** (when ``gold`` is given: a frame with ``listener``, ``value`` and
    ``expected``, an iterable of the accepted scores): ``n_gold``, ``n_gold_failed`` – gold
    ratings not among their accepted scores; dropped when ``n_gold_failed >
    gold_max_failures``.

    **Straight-lining**: a listener whose per-condition means are all equal over 2 or more
    conditions (no variance across conditions) is flagged (``straight_lining``), not dropped.

    **Per item** (``per_item=True``, what MUSHRA's ``bs1534`` rule uses): BS.1534-3 counts *test
    items* (programme items, here clips), not screens. The reference and anchor rules then
    count, per listener, the clips they rated, each by the listener's mean score of it over its
    repetitions: ``n_reference_trials`` / ``n_anchor_trials`` are numbers of items,
    ``n_below`` / ``n_anchor_high`` items whose mean is below / above the threshold, and
    ``min_reference_trials`` a minimum number of items. ``counted_per`` says ``item`` or
    ``trial``. Without repetitions both ways count the same.

    A listener without reference trials is kept and flagged. ``reason`` says every rule that
    dropped or flagged the listener (``""`` for a plainly kept one).
    """
    _check_screening(min_score, max_fraction, min_reference_trials)
    data = validate_ratings(ratings)
    params: dict[str, Any] = dict(reference_condition=reference_condition, min_score=min_score, max_fraction=max_fraction,
                  min_reference_trials=int(min_reference_trials), per_item=bool(per_item), anchor_condition=anchor_condition,
                  anchor_max_score=anchor_max_score, gold_max_failures=int(gold_max_failures))
    gold_by: dict = {}
    if gold is not None and len(gold):
        for listener, group in gold.groupby("listener", sort=True):
            failed = sum(1 for v, e in zip(group["value"], group["expected"]) if int(v) not in set(e))
            gold_by[listener] = (len(group), failed)
    listeners = sorted(set(data["listener"]) | set(gold_by)) if len(data) or gold_by else []
    if not listeners:
        return ScreeningResult([], [], _empty(SCREENING_COLUMNS), flagged=[], **params)
    per_item = bool(per_item) and "clip" in data.columns
    rule = _ScreeningRule(reference_condition, min_score, max_fraction, min_reference_trials, anchor_condition,
                          anchor_max_score, gold_max_failures, per_item)
    rows = [rule.screen(listener, data[data["listener"] == listener] if len(data) else data,
                        gold_by.get(listener, (0, 0))) for listener in listeners]
    table = pd.DataFrame(rows, columns=list(SCREENING_COLUMNS))
    kept = table.loc[~table["dropped"], "listener"].tolist()
    dropped = table.loc[table["dropped"], "listener"].tolist()
    flagged = table.loc[table["flagged"], "listener"].tolist()
    return ScreeningResult(kept, dropped, table, flagged=flagged, **params)


# --------------------------------------------------------------------------------------
# listener level: mixed model, agreement
# --------------------------------------------------------------------------------------


def mixed_model(ratings: pd.DataFrame, *, confidence: float = 0.95, residual: str = "common") -> pd.DataFrame:
    """Per-condition estimates of a linear mixed model with crossed random listener and clip intercepts.

    The model, fitted by REML::

        value_lcr = μ_c + u_l + v_k + ε_lcr,   u_l ~ N(0, σ²_listener), v_k ~ N(0, σ²_clip), ε ~ N(0, σ²)

    for listener ``l``, clip ``k``, condition ``c`` (R: ``lmer(value ~ 0 + condition +
    (1 | listener) + (1 | clip), REML = TRUE)``). With ``residual = "common"`` it is fitted by
    statsmodels ``MixedLM``: statsmodels nests random effects in groups, so the crossed
    listener and clip effects are two *variance components* of one group holding every
    rating (``groups`` all equal, ``re_formula="0"``, ``vc_formula={"listener": "0 +
    C(listener)", "clip": "0 + C(clip)"}``); the fixed part is ``0 + C(condition)``, so
    ``μ_c`` is condition ``c``'s estimate directly; the optimiser is L-BFGS (then Powell,
    Nelder–Mead: :data:`MIXED_METHODS`). With ``residual = "per-condition"`` every condition
    has its own residual variance ``σ²_c`` (R: ``nlme::lme(value ~ 0 + condition, random =
    list(one = pdBlocked(list(pdIdent(~ 0 + listener), pdIdent(~ 0 + clip)))), weights =
    varIdent(form = ~ 1 | condition))``), fitted here by maximising the REML likelihood
    directly (:func:`_fit_reml`), since MixedLM has no such option. A factor with a single
    level (one clip, or one listener) is left out of the model (``note`` says so).

    One row per condition (sorted), columns :data:`MIXED_COLUMNS`: ``estimate`` (``μ_c``),
    ``se`` (its standard error), ``df`` – the **Satterthwaite** degrees of freedom of the
    estimate (:func:`satterthwaite`; lmerTest's ``ls_means(model, ddf = "Satterthwaite")``),
    ``t_low``/``t_high`` – the interval ``estimate ∓ t_{(1+c)/2, df} · se`` (above
    :data:`SATTERTHWAITE_MAX_N` ratings ``df`` is the condition's listeners − 1, said in ``note``,
    and the per-condition fit is refused); the fitted
    ``listener_var``, ``clip_var``, ``residual_var`` (``σ²``, or ``σ²_c`` of the row's condition),
    ``residual`` (``common`` or ``per condition``); the counts; ``converged`` and ``note``.
    In a balanced design the estimate is the condition mean and
    ``se² = σ²_listener/L + σ²_clip/K + σ²/(L·K·R)`` (``R`` ratings per listener and clip).
    The interval is not clipped here (the report clips it to the scale and says so).

    Returns NaN estimates with a ``note`` when there are too few ratings to fit.
    """
    _check_confidence(confidence)
    if residual not in ("common", "per-condition"):
        raise RatingError(f'The residual variance must be "common" or "per-condition", not {residual!r}.')
    data = validate_ratings(ratings, ("listener", "condition", "clip", "value"))
    if len(data) == 0:
        return _empty(MIXED_COLUMNS)
    conditions = sorted(data["condition"].unique().tolist())
    vc: dict[str, str] = {}
    notes: list[str] = []
    if data["listener"].nunique() > 1:
        vc["listener"] = "0 + C(listener)"
    else:
        notes.append("one listener: no listener variance in the model")
    if data["clip"].nunique() > 1:
        vc["clip"] = "0 + C(clip)"
    else:
        notes.append("one clip: no clip variance in the model")
    per_condition = residual == "per-condition"
    table = _MixedTable(data, conditions, confidence, "per condition" if per_condition else "common")
    n_params = len(vc) + (len(conditions) if per_condition else 1)
    if len(data) <= len(conditions) + n_params:
        return table.unfitted("not fitted: too few ratings for the model")
    large = len(data) > SATTERTHWAITE_MAX_N  # the df need dense n x n matrices
    if per_condition and large:
        return table.unfitted(f"not fitted: the per-condition residual fit handles up to {SATTERTHWAITE_MAX_N} ratings")
    design = _crossed_design(data, conditions, list(vc), per_condition)
    if per_condition:
        return _mixed_per_condition(table, design, vc, notes)
    try:
        result, vcomp, converged = _fit_mixed_lm(data, conditions, vc, notes)
    except (np.linalg.LinAlgError, ValueError) as exc:
        return table.unfitted(f"not fitted: {exc}")
    params = result.fe_params if vc else result.params
    names = [f"cond[c{i}]" for i in range(len(conditions))]
    est = [float(params[n]) for n in names]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a singular fit's sqrt of a negative variance: NaN, said below
        se = [float(result.bse_fe[n]) if vc else float(result.bse[n]) for n in names]
    if not all(math.isfinite(v) for v in se):
        notes.append("some standard errors are not computable (a singular fit)")
    scale = float(result.scale)
    if vc and large:  # the listener-means df: conservative, and what a t over listener means would use
        df = [float(data.loc[data["condition"] == c, "listener"].nunique() - 1) for c in conditions]
        notes.append(f"more than {SATTERTHWAITE_MAX_N} ratings: df = listeners - 1 instead of Satterthwaite's")
    elif vc:
        df = _satterthwaite_df(design, vc, vcomp, scale, notes)
    else:
        df = [float(result.df_resid)] * len(conditions)
    return table.rows(est, se, df, vcomp.get("listener", math.nan), vcomp.get("clip", math.nan),
                      [scale] * len(conditions), converged, "; ".join(notes))


@dataclass(frozen=True)
class _MixedTable:
    """:func:`mixed_model`'s table: one row per condition, with its interval and counts."""

    data: pd.DataFrame
    conditions: list
    confidence: float
    label: str

    def rows(self, est, se, df, lv, cv, rv, converged, note) -> pd.DataFrame:
        data, confidence = self.data, self.confidence
        half = [float(stats.t.ppf(0.5 + confidence / 2.0, d)) * e if math.isfinite(d) and d > 0 else math.nan
                for d, e in zip(df, se)]
        return pd.DataFrame([{
            "condition": c, "estimate": est[i], "se": se[i], "df": df[i], "t_low": est[i] - half[i],
            "t_high": est[i] + half[i], "listener_var": lv, "clip_var": cv, "residual_var": rv[i], "residual": self.label,
            "n": int((data["condition"] == c).sum()), "n_listeners": int(data.loc[data["condition"] == c, "listener"].nunique()),
            "n_clips": int(data.loc[data["condition"] == c, "clip"].nunique()), "converged": converged, "note": note,
        } for i, c in enumerate(self.conditions)], columns=list(MIXED_COLUMNS))

    def unfitted(self, note: str) -> pd.DataFrame:
        nan = [math.nan] * len(self.conditions)
        return self.rows(nan, nan, nan, math.nan, math.nan, nan, False, note)


def _mixed_per_condition(table: _MixedTable, design: _Crossed, vc: dict[str, str], notes: list[str]) -> pd.DataFrame:
    """:func:`mixed_model` with a residual variance per condition: REML maximised directly (:func:`_fit_reml`)."""
    try:
        theta, converged = _fit_reml(design)
        est_a, se_a, df_a = satterthwaite(design, theta)
    except (np.linalg.LinAlgError, ValueError) as exc:
        return table.unfitted(f"not fitted: {exc}")
    if not converged:
        notes.append("the REML optimiser did not report convergence")
    named = dict(zip(vc, theta[:len(vc)]))
    return table.rows(list(est_a), list(se_a), list(df_a), named.get("listener", math.nan), named.get("clip", math.nan),
                      list(theta[len(vc):]), converged, "; ".join(notes))


def _fit_mixed_lm(data: pd.DataFrame, conditions: list, vc: dict[str, str], notes: list[str]
                  ) -> tuple[Any, dict[str, float], bool]:
    """The common-residual fit by statsmodels (MixedLM with the crossed factors as variance components,
    or OLS where there is none): (result, variance components, converged); the fit's own warnings
    are added to ``notes``.

    Raises:
        numpy.linalg.LinAlgError, ValueError: it cannot be fitted.
    """
    # Over a second to import, and only the mixed model needs it: not when the command line starts.
    import statsmodels.formula.api as smf  # noqa: PLC0415 — heavy, needed by this model only

    frame = pd.DataFrame({
        "value": data["value"].to_numpy(dtype=np.float64),
        "cond": pd.Categorical([f"c{conditions.index(c)}" for c in data["condition"]],
                               categories=[f"c{i}" for i in range(len(conditions))]),
        "listener": pd.factorize(data["listener"])[0],
        "clip": pd.factorize(data["clip"])[0],
        "group": 0,
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if vc:
            model = smf.mixedlm("value ~ 0 + cond", frame, groups="group", re_formula="0", vc_formula=vc)
            result = None
            for method in MIXED_METHODS:  # L-BFGS first; derivative-free ones where it meets a singular step
                try:
                    result = model.fit(reml=True, method=method)
                    break
                except np.linalg.LinAlgError:
                    continue
            if result is None:
                raise np.linalg.LinAlgError("singular matrix with every optimiser")
            vcomp = dict(zip(list(model.exog_vc.names), np.asarray(result.vcomp, dtype=np.float64)))
            converged = bool(result.converged)
        else:
            result = smf.ols("value ~ 0 + cond", frame).fit()
            vcomp, converged = {}, True
    for w in caught:  # the fit's own warnings (convergence, boundary); numpy's arithmetic ones are not news
        text = str(w.message).split("\n")[0]
        if (text and text not in notes and "Random effects covariance is singular" not in text
                and not issubclass(w.category, RuntimeWarning)):
            notes.append(text)
    return result, vcomp, converged


def _satterthwaite_df(design: _Crossed, vc: dict[str, str], vcomp: dict[str, float], scale: float,
                      notes: list[str]) -> list[float]:
    """Satterthwaite's df per condition at the fitted variances (each floored just above 0)."""
    floor = 1e-10 * max(float(np.var(design.y)), 1e-12)
    theta = np.array([max(vcomp.get(f, 0.0), floor) for f in vc] + [scale])
    try:
        _, _, df_arr = satterthwaite(design, theta)
        return [float(d) for d in df_arr]
    except np.linalg.LinAlgError:
        notes.append("Satterthwaite df not computed (singular information)")
        return [math.nan] * design.X.shape[1]


@dataclass(frozen=True)
class _Crossed:
    """The crossed design: ``y``, the condition indicators ``X`` (n × C), the random-effect
    indicators (one n × q block per factor) and the residual group of each rating."""

    y: np.ndarray
    X: np.ndarray
    blocks: tuple[np.ndarray, ...]
    groups: np.ndarray  # residual group index per rating (all 0: one residual variance)
    n_groups: int

    @property
    def n_params(self) -> int:
        return len(self.blocks) + self.n_groups

    def parts(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(Z, diagonal of G, diagonal of R) for variance parameters ``theta`` (blocks first, then residuals)."""
        Z = np.hstack(self.blocks) if self.blocks else np.zeros((len(self.y), 0))
        g = np.concatenate([np.full(b.shape[1], theta[i]) for i, b in enumerate(self.blocks)]) if self.blocks \
            else np.zeros(0)
        r = np.asarray(theta[len(self.blocks):], dtype=np.float64)[self.groups]
        return Z, g, r

    def v_inverse(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """``V⁻¹`` (dense, by Woodbury) and ``log|V|``."""
        Z, g, r = self.parts(theta)
        rinv = 1.0 / r
        zr = Z * rinv[:, None]
        M = np.diag(1.0 / g) + Z.T @ zr if len(g) else np.zeros((0, 0))
        vinv = np.diag(rinv)
        logdet = float(np.log(r).sum())
        if len(g):
            cho = np.linalg.cholesky(M)
            w = np.linalg.solve(cho, zr.T)
            vinv = vinv - w.T @ w
            logdet += float(np.log(g).sum()) + 2.0 * float(np.log(np.diag(cho)).sum())
        return vinv, logdet

    def reml_deviance(self, theta: np.ndarray) -> float:
        """``−2 ℓ_REML`` up to a constant: ``log|V| + log|X'V⁻¹X| + r'V⁻¹r``.

        By Woodbury, without forming ``V⁻¹``: with ``M = G⁻¹ + Z'R⁻¹Z``,
        ``A'V⁻¹B = A'R⁻¹B − (A'R⁻¹Z) M⁻¹ (Z'R⁻¹B)`` and ``log|V| = log|R| + log|G| + log|M|``.
        """
        Z, g, r = self.parts(theta)
        rinv = 1.0 / r
        W = np.column_stack([self.X, self.y])  # [X | y]
        wr = W * rinv[:, None]
        inner = W.T @ wr  # [X|y]' R⁻¹ [X|y]
        logdet = float(np.log(r).sum())
        try:
            if len(g):
                zr = Z.T @ wr  # Z'R⁻¹[X|y]
                M = np.diag(1.0 / g) + (Z * rinv[:, None]).T @ Z
                cho = np.linalg.cholesky(M)
                half = np.linalg.solve(cho, zr)
                inner = inner - half.T @ half
                logdet += float(np.log(g).sum()) + 2.0 * float(np.log(np.diag(cho)).sum())
            p = self.X.shape[1]
            xvx, xvy, yvy = inner[:p, :p], inner[:p, p], float(inner[p, p])
            beta = np.linalg.solve(xvx, xvy)
            sign, logdet_x = np.linalg.slogdet(xvx)
        except np.linalg.LinAlgError:
            return math.inf
        if sign <= 0:
            return math.inf
        quad = yvy - 2.0 * float(beta @ xvy) + float(beta @ xvx @ beta)
        return logdet + float(logdet_x) + quad


def _crossed_design(data: pd.DataFrame, conditions: list, factors: Sequence[str], per_condition: bool) -> _Crossed:
    cond_index = data["condition"].map({c: i for i, c in enumerate(conditions)}).to_numpy()
    X = np.zeros((len(data), len(conditions)))
    X[np.arange(len(data)), cond_index] = 1.0
    blocks = []
    for f in factors:
        codes = pd.factorize(data[f])[0]
        B = np.zeros((len(data), codes.max() + 1))
        B[np.arange(len(data)), codes] = 1.0
        blocks.append(B)
    groups = cond_index if per_condition else np.zeros(len(data), dtype=np.int64)
    return _Crossed(data["value"].to_numpy(dtype=np.float64), X, tuple(blocks), groups,
                    len(conditions) if per_condition else 1)


def _fit_reml(design: _Crossed) -> tuple[np.ndarray, bool]:
    """REML variance parameters of ``design`` (L-BFGS-B on log-variances, floored at 1e-8 of the data variance)."""
    from scipy.optimize import minimize  # noqa: PLC0415 — only this fit needs it

    scale = float(np.var(design.y)) or 1.0
    floor = math.log(1e-8 * scale)
    start = np.full(design.n_params, math.log(scale / 2.0))

    def objective(log_theta: np.ndarray) -> float:
        return design.reml_deviance(np.exp(log_theta))

    res = minimize(objective, start, method="L-BFGS-B", bounds=[(floor, math.log(100 * scale))] * design.n_params)
    return np.exp(res.x), bool(res.success)


def satterthwaite(design: _Crossed, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per condition: (estimate, standard error, Satterthwaite df) of the fixed effects at ``theta``.

    With ``C(θ) = (X'V⁻¹X)⁻¹``, the estimate ``β̂ = C X'V⁻¹ y`` and ``se_c² = C_cc``. The
    degrees of freedom of ``β̂_c`` (Satterthwaite 1946; Giesbrecht & Burns 1985) are
    ``df_c = 2 C_cc² / (g' A g)``, with ``g_i = ∂C_cc/∂θ_i = w' V_i w`` (``w = V⁻¹X C e_c``,
    ``V_i = ∂V/∂θ_i``) and ``A`` the inverse of the expected REML information
    ``I_ij = ½ tr(P V_i P V_j)``, ``P = V⁻¹ − V⁻¹X C X'V⁻¹``: SAS PROC MIXED's
    ``ddfm=satterthwaite``. lmerTest (R) uses the observed Hessian of the REML deviance
    instead; in a balanced design with interior variance estimates both give the classical
    ANOVA Satterthwaite df, elsewhere they differ in the decimals.
    """
    vinv, _ = design.v_inverse(theta)
    xv = design.X.T @ vinv
    C = np.linalg.inv(xv @ design.X)
    beta = C @ (xv @ design.y)
    P = vinv - xv.T @ C @ xv
    # Each V_i = A_i A_i' (a factor's indicators, or one residual group's rows).
    mats: list[np.ndarray] = list(design.blocks)
    selections: list[np.ndarray] = [np.flatnonzero(design.groups == k) for k in range(design.n_groups)]
    PA = [P @ A for A in mats]
    k = design.n_params
    info = np.zeros((k, k))
    nb = len(mats)
    for i in range(k):
        for j in range(i, k):
            if i < nb and j < nb:
                val = float(np.sum((mats[i].T @ PA[j]) ** 2))
            elif i < nb:  # factor i, residual group j - nb
                val = float(np.sum(PA[i][selections[j - nb]] ** 2))
            else:
                si, sj = selections[i - nb], selections[j - nb]
                val = float(np.sum(P[np.ix_(si, sj)] ** 2))
            info[i, j] = info[j, i] = 0.5 * val
    try:
        A = np.linalg.pinv(info)
    except np.linalg.LinAlgError:
        A = np.full((k, k), np.nan)
    W = vinv @ design.X @ C  # column c: w for condition c
    se = np.sqrt(np.diag(C))
    df = np.empty(len(beta))
    for c in range(len(beta)):
        w = W[:, c]
        g = np.array([float(np.sum((M.T @ w) ** 2)) for M in mats]
                     + [float(np.sum(w[s] ** 2)) for s in selections])
        denom = float(g @ A @ g)
        df[c] = 2.0 * C[c, c] ** 2 / denom if denom > 0 else math.nan
    return beta, se, df


#: Largest number of ratings for which :func:`mixed_model` computes Satterthwaite df (and fits per-condition
#: residual variances): both hold ``n × n`` matrices (4000 ratings: 128 MB each).
SATTERTHWAITE_MAX_N: int = 4000

#: Optimisers :func:`mixed_model` tries in turn (statsmodels ``MixedLM.fit(method=…)``).
MIXED_METHODS: tuple[str, ...] = ("lbfgs", "powell", "nm")


@dataclass(frozen=True)
class AgreementResult:
    """Outcome of :func:`listener_agreement`.

    Attributes:
        listeners: per listener, :data:`AGREEMENT_COLUMNS`.
        icc_single: ICC(2,1) (see :func:`listener_agreement`), NaN when it cannot be computed.
        icc_average: ICC(2,k), the reliability of the mean of the ``k`` listeners.
        n_targets: cells (conditions, or clip × condition) in the ICC.
        n_raters: listeners in the ICC (those who rated every one of those cells).
        form: the ICC form in words.
        note: why the ICC is missing, or what was left out.
    """

    listeners: pd.DataFrame
    icc_single: float
    icc_average: float
    n_targets: int
    n_raters: int
    form: str
    note: str = ""


#: The ICC form :func:`listener_agreement` computes.
ICC_FORM = ("ICC(2,1) and ICC(2,k): two-way random effects, absolute agreement (Shrout & Fleiss 1979; "
            "McGraw & Wong's ICC(A,1), ICC(A,k)); targets = conditions, raters = listeners")


def icc_two_way(matrix: np.ndarray) -> tuple[float, float]:
    """ICC(2,1) and ICC(2,k) of an ``n targets × k raters`` matrix with no missing cell.

    Two-way ANOVA without replication: with the grand mean ``x̄``, target means ``x̄_i.``,
    rater means ``x̄_.j``,

    * ``MSR = k · Σ_i (x̄_i. − x̄)² / (n − 1)`` (targets), ``MSC = n · Σ_j (x̄_.j − x̄)² / (k − 1)``
      (raters), ``MSE = Σ_ij (x_ij − x̄_i. − x̄_.j + x̄)² / ((n − 1)(k − 1))``;
    * ``ICC(2,1) = (MSR − MSE) / (MSR + (k − 1)·MSE + k·(MSC − MSE)/n)``;
    * ``ICC(2,k) = (MSR − MSE) / (MSR + (MSC − MSE)/n)``.

    NaN (both) with fewer than 2 targets or raters, or a zero denominator.
    """
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2 or not np.isfinite(x).all():
        return (math.nan, math.nan)
    n, k = x.shape
    grand = x.mean()
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    msr = k * float(((rows - grand) ** 2).sum()) / (n - 1)
    msc = n * float(((cols - grand) ** 2).sum()) / (k - 1)
    resid = x - rows[:, None] - cols[None, :] + grand
    mse = float((resid ** 2).sum()) / ((n - 1) * (k - 1))
    d1 = msr + (k - 1) * mse + k * (msc - mse) / n
    d2 = msr + (msc - mse) / n
    return ((msr - mse) / d1 if d1 != 0 else math.nan, (msr - mse) / d2 if d2 != 0 else math.nan)


def listener_agreement(ratings: pd.DataFrame, *, by: Sequence[str] = ("condition",)) -> AgreementResult:
    """How well listeners agree: each one against the rest of the panel, and the ICC.

    Cells are the values of ``by`` (default: conditions; ``("clip", "condition")`` for
    finer cells); ``m_lc`` is listener ``l``'s mean rating of cell ``c``.

    * ``r_rest`` of listener ``l``: the Pearson correlation, over the cells ``l`` rated that
      at least one other listener rated too, of ``m_lc`` with the **panel mean without them**
      ``p_c^(−l) = mean over listeners j ≠ l who rated c of m_jc``. ``n_points`` is the number
      of such cells; NaN with a ``note`` when fewer than 3, or when either side is constant.
    * The ICC (:data:`ICC_FORM`, :func:`icc_two_way`) over the cells × listeners matrix of
      ``m_lc`` of the listeners who rated every cell (the ICC needs a complete matrix); when
      fewer than 2 listeners did, over the cells that every listener rated instead. ``note``
      says what was left out.
    """
    data = validate_ratings(ratings, ("listener", *by, "value"))
    cols = list(by)
    if len(data) == 0:
        return AgreementResult(_empty(AGREEMENT_COLUMNS), math.nan, math.nan, 0, 0, ICC_FORM, "no ratings")
    cell = data[cols].astype(str).agg(" | ".join, axis=1) if len(cols) > 1 else data[cols[0]]
    means = (data.assign(_cell=cell).groupby(["listener", "_cell"], sort=True)["value"].mean()
             .unstack("_cell"))
    rows = []
    for listener in means.index:
        own = means.loc[listener]
        rest = means.drop(index=listener).mean(axis=0, skipna=True)
        ok = own.notna() & rest.notna()
        x, y = own[ok].to_numpy(dtype=np.float64), rest[ok].to_numpy(dtype=np.float64)
        r, note = math.nan, ""
        if len(x) < 3:
            note = f"not computed: {len(x)} cell(s) shared with the rest of the panel, need 3"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            note = "not computed: " + ("this listener's" if np.ptp(x) == 0 else "the panel's") + \
                " means are the same in every cell"
        else:
            r = float(stats.pearsonr(x, y)[0])
        rows.append({"listener": listener, "n_points": int(len(x)), "r_rest": r, "note": note})
    table = pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
    complete = means.dropna(axis=0, how="any")  # listeners who rated every cell
    note = ""
    if complete.shape[0] < 2:  # too few: the cells every listener rated instead
        complete = means.dropna(axis=1, how="any")
        if complete.shape[1] < means.shape[1]:
            note = f"{means.shape[1] - complete.shape[1]} cell(s) not rated by every listener left out of the ICC"
    elif complete.shape[0] < means.shape[0]:
        note = f"{means.shape[0] - complete.shape[0]} listener(s) without every cell left out of the ICC"
    single, average = icc_two_way(complete.to_numpy().T)
    if math.isnan(single):
        note = "ICC not computed: it needs 2 or more listeners who rated the same 2 or more cells"
    return AgreementResult(table, single, average, int(complete.shape[1]), int(complete.shape[0]), ICC_FORM, note)


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


def _signed_rank_null(ranks2: np.ndarray) -> np.ndarray:
    """Null distribution of ``2·V`` (V = the sum of the positive ranks) under random signs.

    ``ranks2`` are twice the (mid-)ranks, whole numbers. Each rank is positive with
    probability ½ independently, so the distribution is the convolution of the two-point
    distributions ``{0, r}``: ``prob[s]`` = P(2V = s), computed exactly (in float64) by
    dynamic programming over the ranks.
    """
    total = int(ranks2.sum())
    prob = np.zeros(total + 1)
    prob[0] = 1.0
    top = 0
    for r in ranks2.astype(np.int64):
        shifted = np.zeros_like(prob)
        shifted[r: top + r + 1] = prob[: top + 1]
        prob = 0.5 * (prob + shifted)
        top += int(r)
    return prob


def wilcoxon_signed_rank(diffs: Sequence[float] | np.ndarray) -> tuple[float, float, str, str]:
    """Two-sided Wilcoxon signed-rank test of paired differences: ``(V, p, method, note)``.

    Differences are rounded to :data:`DIFF_DECIMALS` decimals and **zeros are dropped**
    (Wilcoxon's convention, as R's ``wilcox.test`` and ``coin``'s ``zero.method = "Wilcoxon"``).
    The ``k`` non-zero ``|d|`` are ranked, **ties getting their mid-rank**; ``V`` is the sum of
    the ranks of the positive differences (R's ``V``).

    * ``method = "exact"`` (``k ≤`` :data:`WILCOXON_EXACT_MAX_N`, no ties): the exact null
      distribution of ``V``; two-sided ``p = min(1, 2·min(P(V ≤ v), P(V ≥ v)))``, which is
      R's ``wilcox.test(x, y, paired = TRUE, exact = TRUE)``.
    * ``method = "exact conditional"`` (``k ≤`` :data:`WILCOXON_EXACT_MAX_N`, ties among
      ``|d|``): the exact permutation distribution of ``V`` over the ``2^k`` sign patterns of
      the mid-ranks, the same two-sided rule; this is
      ``coin::wilcoxsign_test(x ~ y, distribution = "exact", zero.method = "Wilcoxon")``
      (R's ``wilcox.test`` cannot be exact with ties and falls back to the normal
      approximation).
    * ``method = "normal approx."`` (``k >`` :data:`WILCOXON_EXACT_MAX_N`): the normal
      approximation with the tie-corrected variance and no continuity correction
      (``wilcox.test(..., exact = FALSE, correct = FALSE)``).

    The smallest two-sided p an exact test can give with ``k`` differences is ``2 / 2^k``.
    Returns NaN ``V`` and p with a ``note`` (``method`` ``""``) when there are fewer than 2
    differences or all are zero.
    """
    d = np.round(np.asarray(diffs, dtype=np.float64), DIFF_DECIMALS)
    if len(d) < 2:
        return (math.nan, math.nan, "", f"not tested: {len(d)} listener(s) rated both conditions, need 2")
    nonzero = d[d != 0]
    if len(nonzero) == 0:
        return (math.nan, math.nan, "", "not tested: every listener's difference is zero")
    k = len(nonzero)
    ranks = stats.rankdata(np.abs(nonzero))  # mid-ranks for ties
    v = float(ranks[nonzero > 0].sum())
    has_ties = len(np.unique(np.abs(nonzero))) < k
    notes = []
    if k < len(d):
        notes.append(f"{len(d) - k} zero difference(s) dropped")
    if k <= WILCOXON_EXACT_MAX_N:
        ranks2 = np.rint(2 * ranks).astype(np.int64)
        prob = _signed_rank_null(ranks2)
        v2 = int(round(2 * v))
        lower = float(prob[: v2 + 1].sum())
        upper = float(prob[v2:].sum())
        p = min(1.0, 2.0 * min(lower, upper))
        method = "exact conditional" if has_ties else "exact"
    else:
        n_ties = np.unique(np.abs(nonzero), return_counts=True)[1]
        mean = k * (k + 1) / 4.0
        var = k * (k + 1) * (2 * k + 1) / 24.0 - float((n_ties ** 3 - n_ties).sum()) / 48.0
        z = (v - mean) / math.sqrt(var) if var > 0 else 0.0
        p = float(min(1.0, 2.0 * stats.norm.sf(abs(z))))
        method = "normal approx."
    return (v, p, method, "; ".join(notes))


def sign_flip_test(diffs: Sequence[float] | np.ndarray, *, resamples: int = 20_000, seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip permutation test of the mean of paired differences: ``(p, method)``.

    Under the null hypothesis each listener's difference is as likely to have either sign, so
    the ``2^n`` patterns of signs are equally likely. With ``T(s) = |Σ s_i d_i|``,
    ``p = #{s : T(s) ≥ T(1) − 1e-9} / 2^n``, counted over all ``2^n`` patterns when
    ``n ≤`` :data:`SIGN_FLIP_EXACT_MAX_N` (``method = "exact"``), else estimated from
    ``resamples`` random patterns drawn by ``numpy.random.default_rng(seed)`` as
    ``(1 + b) / (1 + resamples)`` (``method = "Monte Carlo"``). Zeros stay in (their sign
    changes nothing). The smallest exact p is ``2 / 2^n``. NaN with fewer than 2 differences.
    """
    d = np.round(np.asarray(diffs, dtype=np.float64), DIFF_DECIMALS)
    n = len(d)
    if n < 2 or not np.any(d):
        return (math.nan, "")
    observed = abs(float(d.sum())) - 1e-9
    if n <= SIGN_FLIP_EXACT_MAX_N:
        patterns = ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1) * 2 - 1
        sums = np.abs(patterns @ d)
        return (float(np.mean(sums >= observed)), "exact")
    gen = np.random.default_rng(int(seed))
    signs = gen.integers(0, 2, size=(int(resamples), n)) * 2 - 1
    b = int(np.sum(np.abs(signs @ d) >= observed))
    return ((1 + b) / (1 + int(resamples)), "Monte Carlo")


def listeners_needed(effect: float, alpha: float, power: float = 0.8) -> float:
    """Listeners a paired t-test needs to find a standardised difference ``effect`` (Cohen's d_z).

    The smallest ``n ≥ 2`` with power ``≥ power`` of the two-sided one-sample t-test at level
    ``alpha``: power ``= P(|T| > t_{1−α/2, n−1})`` with ``T`` noncentral t, ``df = n − 1``,
    noncentrality ``d_z·√n`` (R: ``power.t.test(delta = d_z, sd = 1, sig.level = alpha,
    power = power, type = "one.sample")``, rounded up; ``pwr::pwr.t.test(..., type = "paired")``).
    NaN for a zero or non-finite effect; capped at 10 000.
    """
    if not math.isfinite(effect) or effect == 0:
        return math.nan
    e = abs(effect)

    def power_at(n: int) -> float:
        crit = float(stats.t.ppf(1 - alpha / 2, n - 1))
        nc = e * math.sqrt(n)
        return float(stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc))

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # boost's nct at extreme noncentralities
        if power_at(LISTENERS_NEEDED_MAX) < power:
            return math.nan
        low, high = 1, LISTENERS_NEEDED_MAX  # power rises with n: bisect for the smallest n that reaches it
        while high - low > 1:
            mid = (low + high) // 2
            if power_at(mid) >= power:
                high = mid
            else:
                low = mid
    return float(high)


def paired_comparisons(
    ratings: pd.DataFrame, *, alpha: float = 0.05, conditions: Sequence[Hashable] | None = None,
    resamples: int = 20_000, seed: int = 0,
) -> pd.DataFrame:
    """Every pair of conditions compared on per-listener means, three tests, each Holm-corrected.

    For each pair ``(a, b)`` of conditions (``a`` before ``b`` in sorted order, or in the
    order of ``conditions`` when given, which also restricts the family), over the
    listeners who rated both, ``d_i = mean_a − mean_b`` (each listener's
    :func:`listener_means`; positive = ``a`` scored higher): see :func:`paired_rows`.
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
    pairs = []
    for a, b in itertools.combinations(names, 2):
        both = means[[a, b]].dropna()
        pairs.append((a, b, (both[a] - both[b]).to_numpy(dtype=np.float64)))
    return paired_rows(pairs, alpha=alpha, resamples=resamples, seed=seed)


def paired_rows(pairs: Sequence[tuple[Hashable, Hashable, np.ndarray]], *, alpha: float = 0.05,
                resamples: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """The table of :func:`paired_comparisons` from ``(a, b, listener differences)`` triples.

    Columns :data:`PAIRED_COLUMNS`, per pair with ``n`` differences ``d_i``:

    * ``n_pairs`` (``n``); ``mean_diff`` ``d̄``; ``diff_ci_low``/``diff_ci_high`` – the 95 %
      (``1 − alpha``) t interval of the mean difference, ``d̄ ∓ t_{1−α/2, n−1}·s_d/√n``
      (the effect size in scale units); ``dz`` – the standardised effect ``d̄ / s_d``;
    * ``t``, ``df`` (``n − 1``), ``p_t`` – the paired t-test (R ``t.test(x, y, paired = TRUE)``);
      ``p_t_holm`` – :func:`holm` over the family (R ``p.adjust(p, "holm")``);
    * ``p_perm``, ``perm_method`` – :func:`sign_flip_test` (seeded ``seed``); ``p_perm_holm``;
    * ``wilcoxon_v``, ``p_wilcoxon``, ``wilcoxon_method`` – :func:`wilcoxon_signed_rank`;
      ``p_wilcoxon_holm``;
    * ``significant_t`` – ``p_t_holm ≤ alpha``: **the decision rests on the paired t-test**
      (the column was ``significant``, decided by the Wilcoxon test, before),
      the permutation and rank tests are there to check it (a pair significant by t only
      is worth a look at its listeners);
    * ``listeners_needed`` – for a pair not found significant, :func:`listeners_needed` for
      its observed ``dz`` at level ``alpha / m`` (Bonferroni over the ``m`` pairs: Holm's
      first step), power 0.8; NaN for a significant pair;
    * ``note`` – why a pair was not tested, what was dropped, and when the exact tests
      cannot reach ``alpha`` after Holm with this many listeners (``m · 2 / 2^n > alpha``).
    """
    rows = []
    m = len(pairs)
    for a, b, diffs in pairs:
        d = np.asarray(diffs, dtype=np.float64)
        n = len(d)
        row: dict[str, Any] = {"a": a, "b": b, "n_pairs": n, "mean_diff": float(d.mean()) if n else math.nan,
                               "diff_ci_low": math.nan, "diff_ci_high": math.nan, "dz": math.nan,
                               "t": math.nan, "df": math.nan, "p_t": math.nan}
        v, pw, wmethod, note = wilcoxon_signed_rank(d)
        pp, pmethod = sign_flip_test(d, resamples=resamples, seed=seed)
        notes = [note] if note else []
        if n >= 2:
            sd = float(d.std(ddof=1))
            row["df"] = float(n - 1)
            row["diff_ci_low"], row["diff_ci_high"] = t_interval(row["mean_diff"], sd, n, 1.0 - alpha)
            if sd > 0:
                row["dz"] = row["mean_diff"] / sd
                row["t"] = row["mean_diff"] / (sd / math.sqrt(n))
                row["p_t"] = float(2.0 * stats.t.sf(abs(row["t"]), n - 1))
            elif row["mean_diff"] != 0:
                notes.append("every listener's difference is the same: no t-test")
            if m * 2.0 / 2.0 ** n > alpha:
                notes.append(f"with {n} listeners the exact tests' smallest p after Holm over {m} pairs is "
                             f"{min(1.0, m * 2.0 / 2.0 ** n):.3g}: they cannot reach {alpha:g}")
        row.update(wilcoxon_v=v, p_wilcoxon=pw, wilcoxon_method=wmethod, p_perm=pp, perm_method=pmethod,
                   note="; ".join(notes))
        rows.append(row)
    if not rows:
        return _empty(PAIRED_COLUMNS)
    out = pd.DataFrame(rows)
    for col in ("p_t", "p_perm", "p_wilcoxon"):
        out[f"{col}_holm"] = holm(out[col].to_numpy(dtype=np.float64))
    out["significant_t"] = (out["p_t_holm"] <= float(alpha)).astype(bool)  # NaN compares False
    out["listeners_needed"] = [
        math.nan if sig else listeners_needed(float(dz), float(alpha) / max(m, 1))
        for sig, dz in zip(out["significant_t"], out["dz"])]
    return out[list(PAIRED_COLUMNS)]


def exact_tests_floor_listeners(m: int, alpha: float = 0.05) -> int:
    """Listeners the exact sign-flip and Wilcoxon tests need before Holm over ``m`` pairs can reach ``alpha``.

    The smallest ``n`` with ``m · 2 / 2^n ≤ alpha`` (the smallest exact two-sided p is ``2 / 2^n``).
    """
    n = 1
    while m * 2.0 / 2.0 ** n > alpha:
        n += 1
    return n


# --------------------------------------------------------------------------------------
# objective metrics vs listeners
# --------------------------------------------------------------------------------------

#: Largest number of conditions for which :func:`spearman_exact` enumerates all ``n!`` orders.
SPEARMAN_EXACT_MAX_N: int = 10


@functools.lru_cache(maxsize=2)
def _permutations(n: int) -> np.ndarray:
    """Every permutation of ``0..n-1`` as rows of an int8 array (``n!`` rows; 36 MB for ``n = 10``)."""
    p = np.zeros((1, 0), dtype=np.int8)
    for k in range(1, n + 1):
        m = p.shape[0]
        out = np.empty((m * k, k), dtype=np.int8)
        for pos in range(k):  # value k - 1 inserted at every position of every permutation of k - 1
            block = out[pos * m:(pos + 1) * m]
            block[:, :pos] = p[:, :pos]
            block[:, pos] = k - 1
            block[:, pos + 1:] = p[:, pos:]
        p = out
    p.setflags(write=False)
    return p


def spearman_exact(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, str]:
    """Spearman's rho with its two-sided p-value: ``(rho, p, method)``.

    ``rho`` is the Pearson correlation of the mid-ranks (``scipy.stats.spearmanr``). For
    ``n ≤`` :data:`SPEARMAN_EXACT_MAX_N` the p-value is **exact**: under independence every
    one of the ``n!`` orders of the ``y`` ranks against the ``x`` ranks is equally likely, and
    ``p = #{π : |S(π) − E| ≥ |S − E|} / n!`` with ``S = Σ r_x · r_y`` (``E`` its mean), counted
    by enumerating all of them (``method = "exact"``). Without ties this is R's
    ``cor.test(x, y, method = "spearman", exact = TRUE)`` (its null distribution is
    symmetric, so R's doubled one-sided p is the same number); with ties it is the exact
    permutation test on the mid-ranks (``method = "exact, mid-ranks"``; R cannot be exact with
    ties). For larger ``n``: scipy's t approximation, ``t = rho·√((n−2)/(1−rho²))`` with
    ``n − 2`` df (``method = "t approx."``, as ``cor.test(..., exact = FALSE)``).
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(xa)
    rx, ry = stats.rankdata(xa), stats.rankdata(ya)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        rho = float(np.corrcoef(rx, ry)[0, 1])
        if n > SPEARMAN_EXACT_MAX_N:
            return rho, float(stats.spearmanr(xa, ya)[1]), "t approx."
    ties = len(np.unique(xa)) < n or len(np.unique(ya)) < n
    rx2, ry2 = np.rint(2 * rx).astype(np.int64), np.rint(2 * ry).astype(np.int64)  # mid-ranks are halves
    observed = int(rx2 @ ry2)
    expected2 = int(rx2.sum()) * int(ry2.sum())  # n · E, kept whole
    target = abs(n * observed - expected2)
    perms = _permutations(n)
    hits = 0
    for start in range(0, len(perms), 1 << 20):
        sums = ry2[perms[start:start + (1 << 20)]] @ rx2
        hits += int(np.count_nonzero(np.abs(n * sums - expected2) >= target))
    return rho, hits / len(perms), ("exact, mid-ranks" if ties else "exact")


def metric_correlations(condition_scores: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Correlation of each objective metric with the per-condition listener score.

    ``condition_scores`` has columns ``condition`` and ``mean`` (e.g. the output of
    :func:`condition_summary`; other columns are ignored); ``metrics`` has ``condition``
    and one numeric column per metric (e.g. ``visqol``, ``mel_distance``), one row per
    condition. Conditions are matched by ``condition`` (inner join).

    Per metric (in column order): the conditions where both the metric and the mean are
    finite, ``n`` of them; ``pearson_r``/``pearson_p`` – ``scipy.stats.pearsonr`` (R
    ``cor.test(x, y)``); ``spearman_rho``/``spearman_p``/``spearman_method`` –
    :func:`spearman_exact` (ranks, average ties; **exact for n ≤ 10**); p-values two-sided. With ``n < 3``, or a constant metric or mean, all four are NaN and
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
               "spearman_rho": math.nan, "spearman_p": math.nan, "spearman_method": "", "note": ""}
        if n < 3:
            row["note"] = f"not computed: {n} condition(s) with both a score and this metric, need 3"
        elif np.ptp(x) == 0 or np.ptp(y) == 0:
            row["note"] = "not computed: " + ("the metric" if np.ptp(x) == 0 else "the listener score") + \
                " is the same for every condition"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pr = stats.pearsonr(x, y)
            rho, sp, method = spearman_exact(x, y)
            row.update(pearson_r=float(pr[0]), pearson_p=float(pr[1]), spearman_rho=rho, spearman_p=sp,
                       spearman_method=method)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))


__all__ = [
    "AGREEMENT_COLUMNS", "CLIP_COLUMNS", "CORRELATION_COLUMNS", "ICC_FORM", "LISTENER_MEANS_COLUMNS", "MIXED_COLUMNS",
    "PAIRED_COLUMNS", "SCREENING_COLUMNS", "SUMMARY_COLUMNS", "AgreementResult", "RatingError", "ScreeningResult",
    "clip_condition_summary", "cluster_bca_interval", "cluster_bootstrap_interval", "cluster_bootstrap_t_interval", "condition_summary", "holm", "icc_two_way",
    "exact_tests_floor_listeners", "listener_agreement", "listener_means", "listeners_needed", "metric_correlations",
    "mixed_model", "paired_comparisons", "paired_rows", "satterthwaite", "score_range", "screen_listeners",
    "sign_flip_test", "spearman_exact", "t_interval", "validate_ratings", "wilcoxon_signed_rank",
]
