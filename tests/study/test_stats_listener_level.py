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
        for col in ("estimate", "se", "ci_low", "ci_high"):
            assert out.loc[c, col] == pytest.approx(ref.loc[c, col], rel=1e-5, abs=1e-7), (c, col)
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
        z = sps.norm.ppf(0.975)
        assert row["ci_low"] == pytest.approx(row["estimate"] - z * row["se"], rel=1e-9)


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
