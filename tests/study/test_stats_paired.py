"""Paired comparisons with power: paired t + Holm, sign-flip permutation, exact Wilcoxon, effect sizes.

Reference values are frozen from scipy 1.11.1 / statsmodels 0.15.0 (the R calls that give the same
numbers are in studies/README.md, "Paired comparisons"), and checked against brute-force enumeration
where that is possible. The simulated panels at the end are the issue's "done when": a MUSHRA study
with 9 kept listeners finds the hidden reference against the 3.5 kHz anchor, a DCR study with
10 listeners finds a 2-point DMOS difference.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mosapp.study import stats
from mosapp.study.report import comparison_lines

# Three conditions rated by ten listeners (their means): x, y, z.
X = [4.5, 3.0, 4.0, 5.0, 3.5, 4.0, 2.5, 4.5, 3.0, 4.0]
Y = [2.0, 2.5, 1.5, 3.0, 3.5, 2.0, 2.0, 1.0, 2.5, 1.5]
Z = [3.0, 3.5, 2.0, 3.5, 3.0, 2.5, 2.5, 2.0, 3.0, 2.0]

# Frozen: scipy.stats.ttest_rel, scipy.stats.t.interval, scipy.stats.permutation_test(permutation_type="samples",
# n_resamples=inf), statsmodels multipletests(method="holm"); Wilcoxon: enumeration of the 2^k sign patterns of
# the mid-ranks (coin::wilcoxsign_test(distribution = "exact")).
FROZEN = {
    ("x", "y"): dict(t=4.422993810926825, p_t=0.001663953078463357, mean=1.65, ci=(0.8061011662956659, 2.4938988337043337),
                     p_perm=0.00390625, v=45.0, p_w=0.00390625, method="exact conditional", p_t_holm=0.0049918592353900716),
    ("x", "z"): dict(t=3.4036901126540178, p_t=0.007827438841646706, mean=1.1, ci=(0.36891908585802824, 1.831080914141972),
                     p_perm=0.0234375, v=34.5, p_w=0.0234375, method="exact conditional", p_t_holm=0.007827438841646706),
    ("y", "z"): dict(t=-3.9727331518303837, p_t=0.0032412146013796567, mean=-0.55,
                     ci=(-0.8631814778282562, -0.23681852217174393), p_perm=0.015625, v=4.0, p_w=0.015625,
                     method="exact conditional", p_t_holm=0.006482429202759313),
}


def _ratings(columns: dict[str, list[float]]) -> pd.DataFrame:
    """One rating per listener and condition (doubled over two clips, so that means can be halves)."""
    rows = []
    for cond, values in columns.items():
        for i, v in enumerate(values):
            lo, hi = int(np.floor(v)), int(np.ceil(v))
            rows += [(f"L{i:02d}", cond, "c1", lo), (f"L{i:02d}", cond, "c2", hi)]
    return pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])


def test_paired_tests_match_frozen_reference_values():
    out = stats.paired_comparisons(_ratings({"x": X, "y": Y, "z": Z})).set_index(["a", "b"])
    for key, want in FROZEN.items():
        row = out.loc[key]
        assert row["t"] == pytest.approx(want["t"], rel=1e-10)
        assert row["p_t"] == pytest.approx(want["p_t"], rel=1e-10)
        assert row["p_t_holm"] == pytest.approx(want["p_t_holm"], rel=1e-10)
        assert row["mean_diff"] == pytest.approx(want["mean"], rel=1e-12)
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(want["ci"], rel=1e-10)
        assert row["p_perm"] == pytest.approx(want["p_perm"], rel=1e-12) and row["perm_method"] == "exact"
        assert row["wilcoxon_v"] == want["v"] and row["p_wilcoxon"] == pytest.approx(want["p_w"], rel=1e-12)
        assert row["wilcoxon_method"] == want["method"]
        assert row["significant_t"]
        assert np.isnan(row["listeners_needed"])


def test_exact_wilcoxon_without_ties_is_rs_psignrank():
    w = np.array([0.8, 1.9, -0.3, 2.2, 1.1, 0.6, 1.7, 2.9, -0.9, 1.4, 0.2])
    v, p, method, _ = stats.wilcoxon_signed_rank(w)
    assert method == "exact" and p == pytest.approx(0.0185546875, rel=1e-12)  # wilcox.test(w, exact=TRUE)
    assert v == sps.rankdata(np.abs(w))[w > 0].sum()


@pytest.mark.parametrize("seed", range(6))
def test_exact_conditional_wilcoxon_equals_enumeration_with_ties_and_zeros(seed):
    rng = np.random.default_rng(100 + seed)
    d = rng.integers(-2, 5, size=11) / 2.0  # many ties, some zeros
    v, p, method, note = stats.wilcoxon_signed_rank(d)
    nz = d[d != 0]
    r = sps.rankdata(np.abs(nz))
    null = np.array(list(itertools.product([0, 1], repeat=len(r)))) @ r
    want = min(1.0, 2 * min(np.mean(null <= v + 1e-9), np.mean(null >= v - 1e-9)))
    assert p == pytest.approx(want, rel=1e-12)
    assert method in ("exact", "exact conditional")
    assert (len(nz) < len(d)) == ("zero difference" in note)


def test_sign_flip_is_exact_to_16_and_seeded_monte_carlo_beyond():
    d = np.array([1.0, 2.0, -0.5, 1.5, 0.5, 2.5])
    p, method = stats.sign_flip_test(d)
    ref = sps.permutation_test((d, np.zeros_like(d)), lambda u, v, axis: np.mean(u - v, axis=axis),
                               permutation_type="samples", n_resamples=np.inf, vectorized=True)
    assert method == "exact" and p == pytest.approx(ref.pvalue, rel=1e-12)
    big = np.random.default_rng(3).normal(0.3, 1.0, 30)
    p1, m1 = stats.sign_flip_test(big, seed=5)
    p2, _ = stats.sign_flip_test(big, seed=5)
    assert m1 == "Monte Carlo" and p1 == p2 and 0 < p1 <= 1
    assert p1 == pytest.approx(sps.ttest_1samp(big, 0).pvalue, abs=0.05)  # close to t for normal data


def test_listeners_needed_matches_statsmodels_power():
    from statsmodels.stats.power import TTestPower

    for dz, alpha in ((0.5, 0.05), (1.2, 0.05 / 15), (0.3, 0.01)):
        want = TTestPower().solve_power(effect_size=dz, alpha=alpha, power=0.8)  # 33.37, 14.21, …
        assert stats.listeners_needed(dz, alpha) == np.ceil(want)


def test_a_pair_too_small_to_find_gets_a_listener_count_and_the_floor_note():
    rng = np.random.default_rng(0)
    cols = {c: list(np.round(rng.normal(3, 0.7, 5) * 2) / 2) for c in "abcd"}
    out = stats.paired_comparisons(_ratings({k: np.clip(v, 1, 5).tolist() for k, v in cols.items()}))
    # 6 pairs, 5 listeners: the exact tests' floor 6 * 2 / 32 = 0.375 > 0.05
    assert out["note"].str.contains("cannot reach 0.05").all()
    lines = "\n".join(comparison_lines(out, "per-listener means"))
    assert "no exact (sign-flip or Wilcoxon) test can reach significance" in lines
    assert f"about {stats.exact_tests_floor_listeners(6)} listeners" in lines
    assert stats.exact_tests_floor_listeners(6) == 8  # 6 * 2 / 2^8 = 0.047
    if not out["significant_t"].any():
        assert "no pair is significant with this panel" in lines
    assert (out.loc[~out["significant_t"], "listeners_needed"].dropna() >= 2).all()


# ------------------------------------------------------------------ simulated panels (the done-when)

MUSHRA_TRUE = {"reference": 96, "lowpass-3.5k": 18, "lowpass-7k": 45, "opus-6": 40, "opus-12": 62, "opus-24": 80}


def _mushra_panel(seed: int) -> pd.DataFrame:
    """11 listeners x 8 clips; L09 rates the reference low, L10 the mid anchor high (both dropped by BS.1534)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(11):
        bias = rng.normal(0, 6)
        for k in range(8):
            for cond, mu in MUSHRA_TRUE.items():
                v = mu + bias + rng.normal(0, 9)
                if cond == "reference":  # found and rated near the top, as listeners do
                    v = 100 - abs(rng.normal(0, 2.5))
                if i == 9 and cond == "reference":
                    v = 60 + rng.normal(0, 5)
                if i == 10 and cond == "lowpass-7k":
                    v = 97
                rows.append((f"L{i:02d}", cond, f"clip{k}", int(np.clip(round(v), 0, 100))))
    return pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 59])
def test_mushra_with_nine_kept_listeners_finds_reference_against_the_3_5k_anchor(seed):
    panel = _mushra_panel(seed)
    with stats.score_range(0, 100):
        scr = stats.screen_listeners(panel, "reference", min_score=90, max_fraction=0.15, min_reference_trials=3,
                                     anchor_condition="lowpass-7k", anchor_max_score=90)
        kept = scr.apply(panel)
        assert kept["listener"].nunique() == 9, scr.table[["listener", "reason"]]
        out = stats.paired_comparisons(kept, conditions=list(MUSHRA_TRUE)).set_index(["a", "b"])
    assert len(out) == 15
    pair = out.loc[("reference", "lowpass-3.5k")]
    assert pair["n_pairs"] == 9 and pair["significant_t"] and pair["p_t_holm"] < 1e-6
    # the exact tests cannot (15 * 2 / 2^9 = 0.0586), and say so
    assert pair["p_wilcoxon_holm"] > 0.05 and "cannot reach" in pair["note"]
    text = "\n".join(comparison_lines(out.reset_index(), "per-listener means"))
    assert "reference vs lowpass-3.5k: diff +" in text and "(significant)" in text.split("reference vs lowpass-3.5k")[1].split("\n")[0]


def _dcr_panel(seed: int) -> pd.DataFrame:
    """10 listeners x 4 clips, DMOS 1..5 by rounding: reference 4.7, codecs 4.5, 3.6, 2.5, 2.7."""
    rng = np.random.default_rng(seed)
    true = {"reference": 4.7, "opus-24": 4.5, "opus-12": 3.6, "opus-6": 2.5, "pghi-only": 2.7}
    rows = []
    for i in range(10):
        bias = rng.normal(0, 0.4)
        for k in range(4):
            for cond, mu in true.items():
                rows.append((f"L{i}", cond, f"clip{k}", int(np.clip(round(mu + bias + rng.normal(0, 0.7)), 1, 5))))
    return pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])


@pytest.mark.parametrize("seed", [5, 17, 29, 31, 47])
def test_dcr_with_ten_listeners_finds_a_two_point_dmos_difference(seed):
    out = stats.paired_comparisons(_dcr_panel(seed)).set_index(["a", "b"])
    pair = out.loc[("opus-24", "opus-6")]  # a true difference of 2.0
    assert pair["n_pairs"] == 10 and pair["significant_t"], pair
    assert 1.4 < pair["mean_diff"] < 2.6
    assert pair["diff_ci_low"] > 0
