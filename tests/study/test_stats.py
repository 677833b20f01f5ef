"""Listening-test statistics: every number checked against scipy or a hand computation."""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mosapp.core.errors import MosappError
from mosapp.study import stats
from mosapp.study.stats import (
    CORRELATION_COLUMNS,
    LISTENER_MEANS_COLUMNS,
    PAIRED_COLUMNS,
    SCREENING_COLUMNS,
    SUMMARY_COLUMNS,
    RatingError,
    condition_summary,
    holm,
    listener_means,
    metric_correlations,
    paired_comparisons,
    screen_listeners,
)


def frame(rows):
    """Ratings from ``(listener, condition, clip, value)`` tuples."""
    return pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])


@pytest.fixture
def small():
    """3 listeners x 2 clips x conditions A, B; listener L3 also rated C once."""
    rows = []
    scores = {
        "L1": {"A": (5, 4), "B": (3, 2)},
        "L2": {"A": (4, 4), "B": (2, 2)},
        "L3": {"A": (5, 5), "B": (4, 1)},
    }
    for listener, by_cond in scores.items():
        for cond, vals in by_cond.items():
            for clip, v in zip(("c1", "c2"), vals):
                rows.append((listener, cond, clip, v))
    rows.append(("L3", "C", "c1", 3))
    return frame(rows)


# ------------------------------------------------------------------ condition_summary


def test_summary_numbers_match_hand_t_interval(small):
    out = condition_summary(small, bootstrap=200)
    assert list(out.columns) == list(SUMMARY_COLUMNS)
    assert out["condition"].tolist() == ["A", "B", "C"]
    a = out.set_index("condition").loc["A"]
    vals = np.array([5, 4, 4, 4, 5, 5], dtype=float)
    n = 6
    mean = vals.mean()
    sd = math.sqrt(((vals - mean) ** 2).sum() / (n - 1))
    sem = sd / math.sqrt(n)
    half = sps.t.ppf(0.975, n - 1) * sem
    assert a["n"] == 6 and a["n_listeners"] == 3
    assert a["mean"] == pytest.approx(4.5, abs=1e-12)
    assert a["sd"] == pytest.approx(sd, rel=1e-12)
    assert a["sem"] == pytest.approx(sem, rel=1e-12)
    assert a["rating_ci_low"] == pytest.approx(mean - half, rel=1e-12)
    assert a["rating_ci_high"] == pytest.approx(mean + half, rel=1e-12)
    # The default interval is over the 3 listener means (4.5, 4, 5), t with 2 df.
    m = np.array([4.5, 4.0, 5.0])
    lhalf = sps.t.ppf(0.975, 2) * m.std(ddof=1) / math.sqrt(3)
    assert a["listener_mean"] == pytest.approx(4.5) and a["listener_sd"] == pytest.approx(0.5)
    assert a["ci_low"] == pytest.approx(4.5 - lhalf, rel=1e-12)
    assert a["ci_high"] == pytest.approx(4.5 + lhalf, rel=1e-12)
    # t quantile by hand for df=5 (tables: 2.570582)
    assert sps.t.ppf(0.975, 5) == pytest.approx(2.570582, abs=1e-6)


def test_summary_other_confidence(small):
    out = condition_summary(small, confidence=0.9, bootstrap=0).set_index("condition")
    b = out.loc["B"]
    vals = np.array([3, 2, 2, 2, 4, 1], dtype=float)
    half = sps.t.ppf(0.95, 5) * vals.std(ddof=1) / math.sqrt(6)
    assert b["rating_ci_low"] == pytest.approx(vals.mean() - half, rel=1e-12)
    assert b["rating_ci_high"] == pytest.approx(vals.mean() + half, rel=1e-12)
    assert np.isnan(b["boot_low"]) and np.isnan(b["boot_high"])  # bootstrap=0 disables it


def test_single_rating_gives_nan_interval_not_a_crash(small):
    c = condition_summary(small).set_index("condition").loc["C"]
    assert c["n"] == 1 and c["n_listeners"] == 1 and c["mean"] == 3.0
    for col in ("sd", "sem", "ci_low", "ci_high", "boot_low", "boot_high", "rating_ci_low", "rating_ci_high"):
        assert np.isnan(c[col]), col


def test_bootstrap_matches_hand_resampling(small):
    """The documented definition, re-done with an explicit loop and the documented seed."""
    b = condition_summary(small, bootstrap=500, seed=7).set_index("condition").loc["B"]
    per = {"L1": [3, 2], "L2": [2, 2], "L3": [4, 1]}
    listeners = sorted(per)
    rng = np.random.default_rng(np.random.SeedSequence([7, zlib.crc32(b"B")]))
    idx = rng.integers(0, 3, size=(500, 3))
    means = []
    for draw in idx:
        pooled = [v for i in draw for v in per[listeners[i]]]
        means.append(sum(pooled) / len(pooled))
    low, high = np.quantile(means, [0.025, 0.975])
    assert b["boot_low"] == pytest.approx(low, abs=1e-12)
    assert b["boot_high"] == pytest.approx(high, abs=1e-12)


def test_bootstrap_is_deterministic_and_seeded(small):
    one = condition_summary(small, seed=3)
    two = condition_summary(small, seed=3)
    pd.testing.assert_frame_equal(one, two)
    # a condition's interval does not depend on which other conditions are present
    only_a = condition_summary(small[small["condition"] == "A"], seed=3)
    assert only_a["boot_low"].iloc[0] == one["boot_low"].iloc[0]
    assert only_a["boot_high"].iloc[0] == one["boot_high"].iloc[0]
    # another seed draws other resamples (12 listeners with varied means: quantiles move)
    varied = frame([(f"L{i}", "A", f"c{k}", 1 + (i * 7 + k * 3) % 5) for i in range(12) for k in range(3)])
    s3 = condition_summary(varied, seed=3, bootstrap=300).iloc[0]
    s4 = condition_summary(varied, seed=4, bootstrap=300).iloc[0]
    assert (s3["boot_low"], s3["boot_high"]) != (s4["boot_low"], s4["boot_high"])


def _agree_vs_disagree():
    """Same multiset of ratings in X and Y: in X every listener gives 2 and 4; in Y half give 2s, half 4s."""
    rows = []
    for i in range(8):
        listener = f"L{i}"
        for k, clip in enumerate(("c1", "c2", "c3", "c4")):
            rows.append((listener, "X", clip, 2 if k % 2 else 4))
            rows.append((listener, "Y", clip, 2 if i % 2 else 4))
    return frame(rows)


def test_bootstrap_brackets_mean_and_widens_when_listeners_disagree():
    out = condition_summary(_agree_vs_disagree(), bootstrap=2000).set_index("condition")
    x, y = out.loc["X"], out.loc["Y"]
    # identical ratings multiset → identical mean, sd and per-rating t interval
    assert x["mean"] == y["mean"] == 3.0
    assert x["rating_ci_low"] == pytest.approx(y["rating_ci_low"])
    assert x["rating_ci_high"] == pytest.approx(y["rating_ci_high"])
    # ... but the listener-level interval sees that listeners disagree in Y only
    assert x["ci_low"] == x["ci_high"] == 3.0
    assert y["ci_high"] - y["ci_low"] > y["rating_ci_high"] - y["rating_ci_low"]
    for row in (x, y):
        assert row["boot_low"] <= row["mean"] <= row["boot_high"]
    # listeners agree in X: every resample has mean 3 exactly
    assert x["boot_low"] == x["boot_high"] == 3.0
    assert (y["boot_high"] - y["boot_low"]) > 0.5


def test_bootstrap_brackets_mean_on_uneven_data(small):
    out = condition_summary(small, bootstrap=2000)
    for _, row in out.dropna(subset=["boot_low"]).iterrows():
        assert row["boot_low"] <= row["mean"] <= row["boot_high"]


# ------------------------------------------------------------------ listener_means


def test_listener_means(small):
    out = listener_means(small)
    assert list(out.columns) == list(LISTENER_MEANS_COLUMNS)
    got = {(r.listener, r.condition): (r.n, r.mean) for r in out.itertuples()}
    assert got == {
        ("L1", "A"): (2, 4.5), ("L1", "B"): (2, 2.5),
        ("L2", "A"): (2, 4.0), ("L2", "B"): (2, 2.0),
        ("L3", "A"): (2, 5.0), ("L3", "B"): (2, 2.5), ("L3", "C"): (1, 3.0),
    }
    assert [tuple(x) for x in out[["listener", "condition"]].values.tolist()] == sorted(got)


# ------------------------------------------------------------------ screening


def _reference_trials(listener, n, n_below, below_value=3, ok_value=4):
    return [(listener, "ref", f"r{k}", below_value if k < n_below else ok_value) for k in range(n)]


def test_screening_threshold_exactly_at_15_percent():
    rows = (
        _reference_trials("at_limit", 20, 3)      # 3/20 = 15 % → kept
        + _reference_trials("over", 20, 4)        # 4/20 = 20 % → dropped
        + _reference_trials("just_under", 7, 1)   # 14.3 % → kept
        + _reference_trials("just_over", 13, 2)   # 15.4 % → dropped
        + _reference_trials("fours", 10, 0)       # 4 is not "below 4" → kept
        + [("no_ref", "A", "c1", 2)]              # no reference trials → kept and flagged
        + [("over", "A", "c1", 5), ("at_limit", "A", "c1", 4)]
    )
    res = screen_listeners(frame(rows), "ref")
    assert list(res.table.columns) == list(SCREENING_COLUMNS)
    assert res.kept == ["at_limit", "fours", "just_under", "no_ref"]
    assert res.dropped == ["just_over", "over"]
    assert res.flagged == ["no_ref"]
    t = res.table.set_index("listener")
    assert t.loc["at_limit", "n_reference_trials"] == 20
    assert t.loc["at_limit", "n_below"] == 3
    assert t.loc["at_limit", "fraction_below"] == pytest.approx(0.15)
    assert not t.loc["at_limit", "dropped"] and t.loc["at_limit", "reason"] == ""
    assert t.loc["over", "fraction_below"] == pytest.approx(0.20) and t.loc["over", "dropped"]
    assert "4 of 20" in t.loc["over", "reason"]
    assert t.loc["just_over", "reason"] == "rated the reference below 4 in 2 of 13 trials (15.4% > 15%)"
    assert t.loc["fours", "n_below"] == 0
    assert t.loc["no_ref", "n_reference_trials"] == 0 and np.isnan(t.loc["no_ref", "fraction_below"])
    assert bool(t.loc["no_ref", "flagged"]) and not bool(t.loc["no_ref", "dropped"])
    assert "no trials" in t.loc["no_ref", "reason"]
    screened = res.apply(frame(rows))
    assert set(screened["listener"]) == {"at_limit", "fours", "just_under", "no_ref"}


def test_screening_is_configurable():
    rows = _reference_trials("L", 10, 0, ok_value=4) + _reference_trials("M", 10, 0, ok_value=5)
    strict = screen_listeners(frame(rows), "ref", min_score=5, max_fraction=0.0)
    assert strict.dropped == ["L"] and strict.kept == ["M"]
    lenient = screen_listeners(frame(_reference_trials("L", 10, 5)), "ref", max_fraction=0.5)
    assert lenient.kept == ["L"]  # 50 % is not more than 50 %


# ------------------------------------------------------------------ Holm


def test_holm_against_hand_computation():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 → running max 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # NaN neither counted in m nor changed
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04], rtol=1e-12)
    # capped at 1, monotone
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    # ties
    np.testing.assert_allclose(holm([0.02, 0.02, 0.5]), [0.06, 0.06, 0.5])
    assert holm([]).shape == (0,)


# ------------------------------------------------------------------ paired comparisons


def _paired_data():
    """8 listeners; A beats B by 0.5, 1.0, ..., 4.0 (distinct, no ties), C ~ B with mixed signs, D only by L0."""
    a_scores = [(1, 2), (2, 2), (2, 3), (3, 3), (3, 4), (4, 4), (4, 5), (5, 5)]  # means 1.5 .. 5
    rows = []
    for i in range(8):
        listener = f"L{i}"
        c = [3, 2] if i % 3 else [1, 1]
        for k, clip in enumerate(("c1", "c2")):
            rows += [(listener, "A", clip, a_scores[i][k]), (listener, "B", clip, 1), (listener, "C", clip, c[k])]
    rows.append(("L0", "D", "c1", 4))
    return frame(rows)


def _brute_force_signed_rank_p(d):
    """Two-sided p of V over all 2^k sign patterns of the mid-ranks (coin's exact conditional test)."""
    nz = d[d != 0]
    r = sps.rankdata(np.abs(nz))
    v = r[nz > 0].sum()
    signs = np.array(list(itertools.product([0, 1], repeat=len(r))))
    null = signs @ r
    return min(1.0, 2 * min(np.mean(null <= v + 1e-9), np.mean(null >= v - 1e-9))), v


def test_paired_comparisons_against_scipy_and_hand_holm():
    data = _paired_data()
    out = paired_comparisons(data)
    assert list(out.columns) == list(PAIRED_COLUMNS)
    assert list(zip(out["a"], out["b"])) == [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]
    means = data.groupby(["listener", "condition"])["value"].mean().unstack()
    for row in out.itertuples():
        both = means[[row.a, row.b]].dropna()
        d = (both[row.a] - both[row.b]).to_numpy()
        assert row.n_pairs == len(d)
        assert row.mean_diff == pytest.approx(d.mean(), abs=1e-12)
        if len(d) < 2:
            assert np.isnan(row.p_wilcoxon) and np.isnan(row.wilcoxon_v) and "need 2" in row.note
            assert np.isnan(row.p_t) and not row.significant_t
            continue
        nz = d[d != 0]
        ties = len(np.unique(np.abs(nz))) < len(nz)
        assert row.wilcoxon_method == ("exact conditional" if ties else "exact")
        p, v = _brute_force_signed_rank_p(d)
        assert row.wilcoxon_v == pytest.approx(v)
        assert row.p_wilcoxon == pytest.approx(p, rel=1e-12)
        if not ties:
            assert row.p_wilcoxon == pytest.approx(sps.wilcoxon(nz, method="exact").pvalue, rel=1e-12)
        ref = sps.ttest_rel(both[row.a], both[row.b])
        assert row.t == pytest.approx(ref.statistic, rel=1e-12)
        assert row.p_t == pytest.approx(ref.pvalue, rel=1e-12)
        assert row.df == len(d) - 1
    # A vs B: 8 positive differences → exact two-sided p = 2 / 2**8, V = 36
    ab = out.iloc[0]
    assert ab["wilcoxon_v"] == 36 and ab["p_wilcoxon"] == pytest.approx(2 / 256)
    assert ab["p_perm"] == pytest.approx(2 / 256) and ab["perm_method"] == "exact"
    # Holm by hand over the three tested pairs (A-D, B-D, C-D have 1 pair each → untested)
    tested = out.dropna(subset=["p_t"])
    assert len(tested) == 3
    for col in ("p_t", "p_wilcoxon", "p_perm"):
        p = tested[col].to_numpy()
        order = np.argsort(p)
        adj = np.empty(3)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (3 - rank) * p[i]))
            adj[i] = running
        np.testing.assert_allclose(tested[f"{col}_holm"], adj, rtol=1e-12)
    assert (tested["significant_t"] == (tested["p_t_holm"] <= 0.05)).all()
    assert out.iloc[0]["significant_t"]
    assert out["p_t_holm"].isna().sum() == 3


def test_all_zero_differences_give_nan_with_note():
    rows = []
    for i in range(5):
        rows += [(f"L{i}", "A", "c1", 3), (f"L{i}", "B", "c1", 3), (f"L{i}", "C", "c1", 1 + i)]
    out = paired_comparisons(frame(rows)).set_index(["a", "b"])
    ab = out.loc[("A", "B")]
    assert ab["n_pairs"] == 5 and ab["mean_diff"] == 0
    assert np.isnan(ab["p_wilcoxon"]) and np.isnan(ab["p_wilcoxon_holm"]) and not ab["significant_t"]
    assert np.isnan(ab["p_t"]) and np.isnan(ab["p_perm"])
    assert "zero" in ab["note"]
    # A-C has one zero difference (L2): dropped, exact conditional on the other four (ties in |d|)
    ac = out.loc[("A", "C")]
    assert "1 zero difference" in ac["note"] and ac["wilcoxon_method"] == "exact conditional"
    assert ac["p_wilcoxon"] == pytest.approx(_brute_force_signed_rank_p(np.array([2.0, 1.0, 0.0, -1.0, -2.0]))[0])
    assert ac["p_wilcoxon"] == pytest.approx(1.0)


def test_paired_conditions_subset():
    out = paired_comparisons(_paired_data(), conditions=["B", "A"])
    assert len(out) == 1 and out.iloc[0]["a"] == "B" and out.iloc[0]["b"] == "A"
    assert out.iloc[0]["mean_diff"] < 0
    with pytest.raises(ValueError, match="'Z'"):
        paired_comparisons(_paired_data(), conditions=["A", "Z"])


# ------------------------------------------------------------------ metric correlations


def test_metric_correlations_against_scipy():
    scores = pd.DataFrame({"condition": list("ABCDE"), "mean": [4.6, 3.9, 3.1, 2.2, 1.4]})
    metrics = pd.DataFrame({
        "condition": list("EDCBA"),  # order differs: matched by name
        "visqol": [1.9, 2.6, 3.3, 3.8, 4.7],
        "mel_distance": [2.1, 1.4, np.nan, 0.9, 0.4],  # C missing → n = 4
        "sparse": [np.nan, np.nan, np.nan, 1.0, 2.0],   # n = 2 → NaN
        "flat": [1.0, 1.0, 1.0, 1.0, 1.0],               # constant → NaN
    })
    out = metric_correlations(scores, metrics)
    assert list(out.columns) == list(CORRELATION_COLUMNS)
    assert out["metric"].tolist() == ["visqol", "mel_distance", "sparse", "flat"]
    r = out.set_index("metric")
    y = np.array([4.6, 3.9, 3.1, 2.2, 1.4])
    x = np.array([4.7, 3.8, 3.3, 2.6, 1.9])
    assert r.loc["visqol", "n"] == 5
    assert r.loc["visqol", "pearson_r"] == pytest.approx(sps.pearsonr(x, y)[0], rel=1e-12)
    assert r.loc["visqol", "pearson_p"] == pytest.approx(sps.pearsonr(x, y)[1], rel=1e-10)
    assert r.loc["visqol", "spearman_rho"] == pytest.approx(1.0)
    assert r.loc["visqol", "spearman_p"] == pytest.approx(2 / 120, abs=1e-12)  # exact: 2 of the 5! orders
    assert r.loc["visqol", "spearman_method"] == "exact"
    xm, ym = np.array([0.4, 0.9, 1.4, 2.1]), np.array([4.6, 3.9, 2.2, 1.4])
    assert r.loc["mel_distance", "n"] == 4
    assert r.loc["mel_distance", "pearson_r"] == pytest.approx(sps.pearsonr(xm, ym)[0], rel=1e-12)
    assert r.loc["mel_distance", "spearman_rho"] == pytest.approx(-1.0)
    assert r.loc["sparse", "n"] == 2 and np.isnan(r.loc["sparse", "pearson_r"]) and "need 3" in r.loc["sparse", "note"]
    assert np.isnan(r.loc["flat", "spearman_rho"]) and "same for every condition" in r.loc["flat", "note"]


def test_metric_correlations_takes_condition_summary(small):
    summary = condition_summary(small, bootstrap=0)
    metrics = pd.DataFrame({"condition": ["A", "B", "C", "unrated"], "visqol": [4.5, 2.0, 3.5, 1.0]})
    out = metric_correlations(summary, metrics).iloc[0]
    assert out["n"] == 3
    assert out["pearson_r"] == pytest.approx(sps.pearsonr([4.5, 2.0, 3.5], summary["mean"])[0])


# ------------------------------------------------------------------ validation and empty input


@pytest.mark.parametrize("bad", [6, 0, 3.5, np.nan, "4", True, None])
def test_bad_value_names_the_row(small, bad):
    data = small.copy().astype({"value": object})
    data.index = [f"r{i}" for i in range(len(data))]
    data.at["r4", "value"] = bad
    for fn in (condition_summary, listener_means, paired_comparisons, lambda r: screen_listeners(r, "A")):
        with pytest.raises(ValueError, match=r"row 'r4' \(listener 'L2', condition 'A', clip 'c1'\)") as info:
            fn(data)
        assert isinstance(info.value, MosappError)
        assert "integers from 1 to 5" in str(info.value)
        assert str(info.value).count(".") <= 2 and str(info.value).endswith(".")


def test_integral_floats_accepted_and_input_not_changed(small):
    data = small.astype({"value": float})
    before = data.copy()
    pd.testing.assert_frame_equal(condition_summary(data), condition_summary(small))
    pd.testing.assert_frame_equal(data, before)


def test_missing_column_and_missing_ids():
    with pytest.raises(RatingError, match="'listener'"):
        condition_summary(pd.DataFrame({"condition": ["A"], "clip": ["c"], "value": [3]}))
    with pytest.raises(RatingError, match="no condition at row 1"):
        listener_means(frame([("L1", "A", "c", 3), ("L1", None, "c", 3)]))


def test_empty_input_gives_empty_frames_with_columns():
    empty = frame([])
    for fn, cols in ((condition_summary, SUMMARY_COLUMNS), (listener_means, LISTENER_MEANS_COLUMNS),
                     (paired_comparisons, PAIRED_COLUMNS)):
        out = fn(empty)
        assert len(out) == 0 and list(out.columns) == list(cols)
    res = screen_listeners(empty, "ref")
    assert res.kept == [] and res.dropped == [] and list(res.table.columns) == list(SCREENING_COLUMNS)
    assert len(res.apply(empty)) == 0
    out = metric_correlations(pd.DataFrame({"condition": [], "mean": []}), pd.DataFrame({"condition": []}))
    assert len(out) == 0 and list(out.columns) == list(CORRELATION_COLUMNS)
    out = metric_correlations(pd.DataFrame({"condition": [], "mean": []}),
                              pd.DataFrame({"condition": [], "visqol": []}))
    assert out["n"].tolist() == [0] and np.isnan(out["pearson_r"].iloc[0])
    assert len(paired_comparisons(frame([("L1", "A", "c", 3)]))) == 0  # one condition: no pairs


def test_public_names_exist():
    for name in stats.__all__:
        assert hasattr(stats, name)
