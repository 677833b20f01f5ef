"""Listener-level statistics: the t interval over listener means, the mixed model, the clip x
condition breakdown, listener agreement (leave-one-out r, ICC) and the full screening rule,
each checked against scipy / statsmodels / a hand computation, on balanced and unbalanced data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.anova import anova_lm

from mosapp.study import stats


def _panel(seed: int = 3, listeners: int = 7, clips: int = 3, conditions=("A", "B", "C", "D"), reps: int = 1):
    """Integer ratings with real listener and clip effects (a fixed, seeded table)."""
    rng = np.random.default_rng(seed)
    rows = []
    clip_fx = rng.normal(0, 0.4, clips)
    for who in range(listeners):
        u = rng.normal(0, 0.6)
        for k in range(clips):
            for j, c in enumerate(conditions):
                for _ in range(reps):
                    v = int(np.clip(round(1.5 + j + u + clip_fx[k] + rng.normal(0, 0.7)), 1, 5))
                    rows.append({"listener": f"L{who}", "clip": f"k{k}", "condition": c, "value": v})
    return pd.DataFrame(rows)


def _unbalanced(seed: int = 3) -> pd.DataFrame:
    """The panel with ratings removed unevenly: some listeners miss clips, one misses a condition."""
    df = _panel(seed)
    rng = np.random.default_rng(seed + 100)
    drop = rng.random(len(df)) < 0.2
    drop |= (df["listener"] == "L0") & (df["condition"] == "D")
    out = df[~drop].reset_index(drop=True)
    assert out.groupby(["listener", "condition"]).size().nunique() > 1  # really unbalanced
    return out


# ------------------------------------------------------------------ intervals


@pytest.mark.parametrize("make", [_panel, _unbalanced])
def test_the_default_interval_is_a_t_interval_over_listener_means(make):
    df = make()
    out = stats.condition_summary(df, bootstrap=0).set_index("condition")
    for c, group in df.groupby("condition"):
        m = group.groupby("listener")["value"].mean().to_numpy()
        L = len(m)
        low, high = sps.t.interval(0.95, L - 1, loc=m.mean(), scale=sps.sem(m))
        row = out.loc[c]
        assert row["n_listeners"] == L and row["listener_mean"] == pytest.approx(m.mean(), rel=1e-12)
        assert row["ci_low"] == pytest.approx(low, rel=1e-12) and row["ci_high"] == pytest.approx(high, rel=1e-12)
        x = group["value"].to_numpy(dtype=float)
        rlow, rhigh = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert row["rating_ci_low"] == pytest.approx(rlow, rel=1e-12)
        assert row["rating_ci_high"] == pytest.approx(rhigh, rel=1e-12)
        assert row["mean"] == pytest.approx(x.mean(), rel=1e-12)


def test_clip_condition_breakdown_by_hand():
    df = _unbalanced()
    out = stats.clip_condition_summary(df).set_index(["clip", "condition"])
    assert list(out.reset_index().columns) == list(stats.CLIP_COLUMNS)
    assert len(out) == df.groupby(["clip", "condition"]).ngroups
    for (clip, c), group in df.groupby(["clip", "condition"]):
        m = group.groupby("listener")["value"].mean().to_numpy()
        row = out.loc[(clip, c)]
        assert row["n"] == len(group) and row["n_listeners"] == len(m)
        assert row["mean"] == pytest.approx(group["value"].mean())
        if len(m) > 1:
            t = sps.t.ppf(0.975, len(m) - 1)
            half = t * m.std(ddof=1) / math.sqrt(len(m))
            assert row["ci_low"] == pytest.approx(m.mean() - half) and row["ci_high"] == pytest.approx(m.mean() + half)


# ------------------------------------------------------------------ mixed model


def _statsmodels_reference(df: pd.DataFrame) -> tuple[pd.DataFrame, dict, float]:
    """The same model written independently: statsmodels' crossed-effects recipe on the raw labels."""
    d = df.copy()
    d["one"] = 1
    model = smf.mixedlm("value ~ 0 + C(condition)", d, groups="one", re_formula="0",
                        vc_formula={"L": "0 + C(listener)", "K": "0 + C(clip)"})
    res = model.fit(reml=True, method="lbfgs")
    ci = res.conf_int()
    names = [f"C(condition)[{c}]" for c in sorted(d["condition"].unique())]
    table = pd.DataFrame({"estimate": res.fe_params[names].to_numpy(), "se": res.bse_fe[names].to_numpy(),
                          "ci_low": ci.loc[names, 0].to_numpy(), "ci_high": ci.loc[names, 1].to_numpy()},
                         index=sorted(d["condition"].unique()))
    return table, dict(zip(model.exog_vc.names, res.vcomp)), float(res.scale)


@pytest.mark.parametrize("make", [_panel, _unbalanced])
def test_mixed_model_matches_statsmodels(make):
    df = make()
    out = stats.mixed_model(df).set_index("condition")
    assert list(out.reset_index().columns) == list(stats.MIXED_COLUMNS)
    ref, vc, scale = _statsmodels_reference(df)
    for c in ref.index:
        for col in ("estimate", "se"):
            assert out.loc[c, col] == pytest.approx(ref.loc[c, col], rel=1e-5, abs=1e-7), (c, col)
        t = sps.t.ppf(0.975, out.loc[c, "df"])
        assert out.loc[c, "t_low"] == pytest.approx(out.loc[c, "estimate"] - t * out.loc[c, "se"], rel=1e-12)
        assert out.loc[c, "t_high"] == pytest.approx(out.loc[c, "estimate"] + t * out.loc[c, "se"], rel=1e-12)
    assert out["listener_var"].iloc[0] == pytest.approx(vc["L"], rel=1e-4, abs=1e-7)
    assert out["clip_var"].iloc[0] == pytest.approx(vc["K"], rel=1e-4, abs=1e-7)
    assert out["residual_var"].iloc[0] == pytest.approx(scale, rel=1e-5)
    assert out["converged"].all()


def test_mixed_model_in_a_balanced_design_by_hand():
    """Balanced crossed design: μ_c is the condition mean, se² = σ²_L/L + σ²_K/K + σ²/(L·K·R)."""
    L, K, R = 7, 3, 2
    df = _panel(listeners=L, clips=K, reps=R)
    out = stats.mixed_model(df).set_index("condition")
    means = df.groupby("condition")["value"].mean()
    for c in means.index:
        row = out.loc[c]
        assert row["estimate"] == pytest.approx(means[c], abs=1e-6)
        var = row["listener_var"] / L + row["clip_var"] / K + row["residual_var"] / (L * K * R)
        assert row["se"] == pytest.approx(math.sqrt(var), rel=1e-4)
        t = sps.t.ppf(0.975, row["df"])
        assert row["t_low"] == pytest.approx(row["estimate"] - t * row["se"], rel=1e-9)


def test_mixed_model_with_one_clip_leaves_the_clip_out():
    df = _panel(clips=1)
    out = stats.mixed_model(df)
    assert out["clip_var"].isna().all() and "one clip" in out["note"].iloc[0]
    d = df.assign(one=1)
    res = smf.mixedlm("value ~ 0 + C(condition)", d, groups="listener").fit(reml=True, method="lbfgs")
    names = [f"C(condition)[{c}]" for c in sorted(df["condition"].unique())]
    # With one clip the model is a random listener intercept: the usual groups= model.
    assert out["estimate"].to_numpy() == pytest.approx(res.fe_params[names].to_numpy(), rel=1e-5)
    assert out["se"].to_numpy() == pytest.approx(res.bse_fe[names].to_numpy(), rel=1e-4)


def _anova_satterthwaite(df: pd.DataFrame) -> tuple[float, float]:
    """Balanced crossed design, one rating per (listener, clip, condition): the classical Satterthwaite df and
    se of a condition mean from the ANOVA mean squares, ``Var = (MS_L + MS_K + (C − 2)·MS_E) / (C·L·K)``."""
    L, K, C = df["listener"].nunique(), df["clip"].nunique(), df["condition"].nunique()
    g = df["value"].mean()
    ml, mk, mc = (df.groupby(f)["value"].mean() for f in ("listener", "clip", "condition"))
    msl = C * K * float(((ml - g) ** 2).sum()) / (L - 1)
    msk = C * L * float(((mk - g) ** 2).sum()) / (K - 1)
    res = df["value"] - df["listener"].map(ml) - df["clip"].map(mk) - df["condition"].map(mc) + 2 * g
    df_e = C * L * K - C - L - K + 2
    mse = float((res ** 2).sum()) / df_e
    num = msl + msk + (C - 2) * mse
    return num ** 2 / (msl ** 2 / (L - 1) + msk ** 2 / (K - 1) + ((C - 2) * mse) ** 2 / df_e), math.sqrt(num / (C * L * K))


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_satterthwaite_df_equal_the_anova_formula_in_a_balanced_design(seed):
    """lmerTest: ``ls_means(lmer(value ~ 0 + condition + (1|listener) + (1|clip)), ddf = "Satterthwaite")``."""
    df = _panel(seed, listeners=9, clips=5)
    want_df, want_se = _anova_satterthwaite(df)
    out = stats.mixed_model(df)
    assert out["df"].to_numpy() == pytest.approx(want_df, rel=2e-4)
    assert out["se"].to_numpy() == pytest.approx(want_se, rel=2e-4)
    # far from the z interval the audit found: with ~11-16 df the t quantile is 2.12-2.20, not 1.96
    assert ((out["t_high"] - out["estimate"]) / out["se"] > 2.1).all()


# Frozen from statsmodels 0.15.0 MixedLM (REML, lbfgs) on _panel(5, listeners=9, clips=5): the direct REML fit
# of the per-condition option, restricted to one residual variance, must land on the same optimum.
STATSMODELS_PANEL5 = (0.3001543889440541, 0.11243730718132207, 0.4442400740262764)


def test_the_direct_reml_fit_finds_statsmodels_optimum():
    df = stats.validate_ratings(_panel(5, listeners=9, clips=5))
    design = stats._crossed_design(df, sorted(df["condition"].unique()), ["listener", "clip"], False)
    theta, ok = stats._fit_reml(design)
    assert ok and theta == pytest.approx(STATSMODELS_PANEL5, rel=2e-4)


def test_per_condition_residual_variance():
    rng = np.random.default_rng(2)
    rows = []
    for who in range(10):
        u = rng.normal(0, 0.5)
        for k in range(4):
            for c, sd in (("steady", 0.2), ("noisy", 1.2), ("mid", 0.6)):
                rows.append({"listener": f"L{who}", "clip": f"k{k}", "condition": c,
                             "value": int(np.clip(round(3 + u + rng.normal(0, sd)), 1, 5))})
    df = pd.DataFrame(rows)
    common = stats.mixed_model(df).set_index("condition")
    per = stats.mixed_model(df, residual="per-condition").set_index("condition")
    assert (per["residual"] == "per condition").all() and (common["residual"] == "common").all()
    assert per.loc["noisy", "residual_var"] > 4 * per.loc["steady", "residual_var"]
    assert per.loc["noisy", "se"] > per.loc["steady", "se"]
    assert common.loc["noisy", "se"] == pytest.approx(common.loc["steady", "se"], rel=1e-6)
    means = df.groupby("condition")["value"].mean()  # balanced: the estimates are the means
    assert per["estimate"].to_numpy() == pytest.approx(means[per.index].to_numpy(), abs=1e-6)
    # the richer model fits at least as well (REML deviances at the two optima)
    data = stats.validate_ratings(df)
    conds = sorted(df["condition"].unique())
    d1 = stats._crossed_design(data, conds, ["listener", "clip"], False)
    d2 = stats._crossed_design(data, conds, ["listener", "clip"], True)
    assert d2.reml_deviance(stats._fit_reml(d2)[0]) <= d1.reml_deviance(stats._fit_reml(d1)[0]) + 1e-8
    with pytest.raises(stats.RatingError, match="per-condition"):
        stats.mixed_model(df, residual="separate")


# ------------------------------------------------------------------ agreement


SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_icc_matches_shrout_and_fleiss_and_an_anova():
    single, average = stats.icc_two_way(SHROUT_FLEISS)
    # Shrout & Fleiss (1979), Table 4: ICC(2,1) = .29, ICC(2,4) = .62.
    assert round(single, 2) == 0.29 and round(average, 2) == 0.62
    # The mean squares from statsmodels' two-way ANOVA, put into the documented formulas.
    n, k = SHROUT_FLEISS.shape
    long = pd.DataFrame([{"t": i, "r": j, "x": float(SHROUT_FLEISS[i, j])} for i in range(n) for j in range(k)])
    table = anova_lm(smf.ols("x ~ C(t) + C(r)", long).fit())
    msr, msc, mse = table.loc["C(t)", "mean_sq"], table.loc["C(r)", "mean_sq"], table.loc["Residual", "mean_sq"]
    assert single == pytest.approx((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n), rel=1e-12)
    assert average == pytest.approx((msr - mse) / (msr + (msc - mse) / n), rel=1e-12)


def test_listener_agreement_by_hand_on_unbalanced_data():
    df = _unbalanced()
    res = stats.listener_agreement(df)
    assert "ICC(2,1)" in res.form and "absolute agreement" in res.form
    means = df.groupby(["listener", "condition"])["value"].mean().unstack()
    table = res.listeners.set_index("listener")
    for who in means.index:
        own = means.loc[who]
        rest = means.drop(index=who).mean(axis=0)
        ok = own.notna() & rest.notna()
        r = np.corrcoef(own[ok].to_numpy(float), rest[ok].to_numpy(float))[0, 1]
        assert table.loc[who, "n_points"] == int(ok.sum())
        assert table.loc[who, "r_rest"] == pytest.approx(r, rel=1e-12)
    # L0 has no D (nor do some others): the ICC keeps the listeners with every condition.
    complete = means.dropna(axis=0)
    assert "L0" not in complete.index
    assert res.n_raters == len(complete) < len(means) and res.n_targets == 4
    single, average = stats.icc_two_way(complete.to_numpy().T)
    assert res.icc_single == pytest.approx(single) and res.icc_average == pytest.approx(average)
    assert "left out of the ICC" in res.note


def test_agreement_with_too_little_says_why():
    df = pd.DataFrame({"listener": ["a", "a", "b", "b"], "condition": ["X", "Y", "X", "Y"],
                       "clip": "k", "value": [1, 5, 2, 4]})
    res = stats.listener_agreement(df)
    assert res.listeners["r_rest"].isna().all() and "need 3" in res.listeners["note"].iloc[0]


# ------------------------------------------------------------------ screening


def _rows(listener, condition, values):
    return [{"listener": listener, "condition": condition, "clip": f"k{i}", "value": v} for i, v in enumerate(values)]


def test_below_the_minimum_of_reference_trials_nobody_is_dropped_by_it():
    df = pd.DataFrame(_rows("few", "reference", [3, 5, 5]) + _rows("few", "A", [2, 2, 3])
                      + _rows("many", "reference", [3, 3, 5, 5, 5, 5, 5]) + _rows("many", "A", [1] * 7))
    res = stats.screen_listeners(df, "reference", min_reference_trials=7)
    t = res.table.set_index("listener")
    assert res.dropped == ["many"] and res.kept == ["few"] and res.flagged == ["few"]
    assert "3 reference trial(s), fewer than the 7 needed to judge" in t.loc["few", "reason"]
    # The old behaviour: one slip in three drops the listener.
    assert stats.screen_listeners(df, "reference").dropped == ["few", "many"]


def test_the_bs1534_anchor_rule():
    df = pd.DataFrame(_rows("good", "reference", [5] * 8) + _rows("good", "anchor", [1, 2, 5, 1, 1, 2, 1, 1])
                      + _rows("loose", "reference", [5] * 8) + _rows("loose", "anchor", [5, 5, 2, 1, 1, 1, 1, 1]))
    res = stats.screen_listeners(df, "reference", anchor_condition="anchor", anchor_max_score=4,
                                 min_reference_trials=7)
    t = res.table.set_index("listener")
    assert res.dropped == ["loose"]  # 2 of 8 = 25 % > 15 %
    assert t.loc["good", "n_anchor_high"] == 1 and t.loc["good", "fraction_anchor_high"] == pytest.approx(1 / 8)
    assert "rated the anchor 'anchor' above 4 in 2 of 8 trials" in t.loc["loose", "reason"]


def test_gold_trials_and_straight_lining():
    df = pd.DataFrame(_rows("flat", "reference", [4] * 7) + _rows("flat", "A", [4] * 7)
                      + _rows("ok", "reference", [5] * 7) + _rows("ok", "A", [2] * 7))
    gold = pd.DataFrame({"listener": ["flat", "ok", "ok"], "value": [4, 1, 5],
                         "expected": [(1, 2), (1, 2), (4, 5)]})
    res = stats.screen_listeners(df, "reference", min_reference_trials=7, gold=gold)
    t = res.table.set_index("listener")
    assert res.dropped == ["flat"] and res.kept == ["ok"]
    assert t.loc["flat", "n_gold"] == 1 and t.loc["flat", "n_gold_failed"] == 1 and t.loc["ok", "n_gold_failed"] == 0
    assert bool(t.loc["flat", "straight_lining"]) and not bool(t.loc["ok", "straight_lining"])
    assert "missed 1 of 1 gold trials" in t.loc["flat", "reason"] and "straight-lining" in t.loc["flat", "reason"]
    lenient = stats.screen_listeners(df, "reference", min_reference_trials=7, gold=gold, gold_max_failures=1)
    assert lenient.dropped == [] and lenient.flagged == ["flat"]  # straight-lining is flagged, not dropped


# ------------------------------------------------------------------ BCa


def test_bca_interval_by_hand_on_the_same_resamples():
    """z0 from the mid-p share of resamples below θ̂ (scipy's rule; R's boot counts θ* < θ̂ only), a from
    the leave-one-listener-out jackknife, the ends at the adjusted percentiles (numpy linear)."""
    sums = np.array([10.0, 14, 9, 17, 12, 15, 8, 13])
    counts = np.array([4.0, 4, 3, 5, 4, 4, 3, 4])
    low, high = stats.cluster_bca_interval(sums, counts, resamples=3000, rng=np.random.default_rng(42))
    idx = np.random.default_rng(42).integers(0, 8, (3000, 8))
    boot = sums[idx].sum(1) / counts[idx].sum(1)
    theta = sums.sum() / counts.sum()
    z0 = sps.norm.ppf((np.mean(boot < theta) + np.mean(boot <= theta)) / 2)
    jack = np.array([np.delete(sums, i).sum() / np.delete(counts, i).sum() for i in range(8)])
    d = jack.mean() - jack
    a = (d ** 3).sum() / (6 * ((d ** 2).sum()) ** 1.5)
    z = sps.norm.ppf([0.025, 0.975])
    want = np.percentile(boot, 100 * sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))
    assert (low, high) == pytest.approx(tuple(want), rel=1e-12)
    assert (low, high) == pytest.approx((2.8577158664439657, 3.397863280471169), rel=1e-12)  # frozen


def test_summary_carries_the_bca_interval_next_to_the_percentile_one():
    out = stats.condition_summary(_panel(3), bootstrap=2000).set_index("condition")
    for _, row in out.iterrows():
        assert row["bca_low"] <= row["mean"] <= row["bca_high"]
    same = stats.condition_summary(_panel(3), bootstrap=2000).set_index("condition")
    assert out["bca_low"].equals(same["bca_low"])  # seeded
    two = pd.DataFrame({"listener": ["a", "a", "b", "b"], "condition": "X", "clip": ["k1", "k2"] * 2,
                        "value": [3, 4, 2, 5]})
    assert stats.condition_summary(two)[["bca_low", "bca_high"]].isna().all(axis=None)  # fewer than 3 listeners


def test_bs1534_counts_items_not_screens():
    """8 items x 2 repetitions. L1 slips on 3 screens of 3 different items (80 on one repetition, 100 on the other:
    item means 90, not below 90): by screens 3/16 = 18.75 % > 15 % (dropped), by items 0/8 (kept). L2 is below 90
    on both repetitions of 2 items: 2/8 = 25 % of items (dropped either way)."""
    rows = []
    for who in ("L1", "L2"):
        for k in range(8):
            for rep in range(2):
                ref = 100
                if who == "L1" and k < 3 and rep == 0:
                    ref = 80
                if who == "L2" and k < 2:
                    ref = 70
                rows += [(who, "reference", f"k{k}", ref), (who, "anchor", f"k{k}", 30)]
    df = pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])
    with stats.score_range(0, 100):
        by_item = stats.screen_listeners(df, "reference", min_score=90, max_fraction=0.15, min_reference_trials=3,
                                         per_item=True)
        by_trial = stats.screen_listeners(df, "reference", min_score=90, max_fraction=0.15, min_reference_trials=3)
    t = by_item.table.set_index("listener")
    assert (t["counted_per"] == "item").all() and t.loc["L1", "n_reference_trials"] == 8
    assert by_item.dropped == ["L2"] and "2 of 8 items" in t.loc["L2", "reason"]
    assert by_trial.dropped == ["L1", "L2"] and (by_trial.table["counted_per"] == "trial").all()


def test_bootstrap_t_interval_by_hand_on_the_same_resamples():
    """t* = (θ* − θ̂)/se* per resample (se by linearisation of Σs/Σc), the ends θ̂ − t*_q · se."""
    sums = np.array([10.0, 14, 9, 17, 12, 15, 8, 13])
    counts = np.array([4.0, 4, 3, 5, 4, 4, 3, 4])
    low, high = stats.cluster_bootstrap_t_interval(sums, counts, resamples=3000, rng=np.random.default_rng(42))

    def se(s, c):
        theta = s.sum() / c.sum()
        return math.sqrt(len(s) / (len(s) - 1) * ((s - theta * c) ** 2).sum()) / c.sum()

    theta = sums.sum() / counts.sum()
    idx = np.random.default_rng(42).integers(0, 8, (3000, 8))
    t = np.array([(sums[i].sum() / counts[i].sum() - theta) / se(sums[i], counts[i]) for i in idx])
    q_low, q_high = np.quantile(t, [0.025, 0.975])
    assert (low, high) == pytest.approx((theta - q_high * se(sums, counts), theta - q_low * se(sums, counts)), rel=1e-12)
    # equal counts: se is the SD of the listener means over √L
    m = np.array([3.0, 3.5, 2.0, 4.0])
    assert stats._ratio_se(m * 2, np.full(4, 2.0)) == pytest.approx(m.std(ddof=1) / 2)
    assert stats.cluster_bootstrap_t_interval(np.array([3.0, 3, 3]), np.array([1.0, 1, 1])) == (3.0, 3.0)
    assert all(math.isnan(v) for v in stats.cluster_bootstrap_t_interval(np.array([3.0, 4]), np.array([1.0, 1])))
