"""Exact small-sample p-values: Spearman's rho by enumeration of every order for n ≤ 10.

Reference p-values frozen from scipy 1.11.1's ``permutation_test(permutation_type="pairings",
n_resamples=inf)`` (exact enumeration; n = 10 took three minutes, so it is frozen, not rerun).
Without ties they equal R's ``cor.test(x, y, method = "spearman", exact = TRUE)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mosapp.study import stats

CASES = [  # (x, y, rho, exact p, method)
    ([1, 2, 3, 4, 5], [1, 3, 2, 4, 5], 0.9, 1 / 12, "exact"),  # the case: asymptotic p 0.037, exact 0.083
    ([0.126, -0.132, 0.64, 0.105], [-0.41, 0.23, 1.944, 1.052], 0.4, 0.75, "exact"),
    ([-0.704, -1.265, -0.623, 0.041, -2.325, -0.219], [-1.95, -1.997, -1.167, -0.275, -1.913, 0.824],
     0.7714285714285715, 0.10277777777777777, "exact"),
    ([-0.129, 1.366, -0.665, 0.352, 0.903, 0.094, -0.743, -0.922], [-0.587, 1.586, -1.675, 0.143, 0.744, 0.635,
                                                                      -0.528, -0.567],
     0.7857142857142858, 0.027926587301587303, "exact"),
    ([1, 2, 2, 3, 4, 5], [2, 1, 3, 3, 5, 4], 0.8088235294117647, 0.06111111111111111, "exact, mid-ranks"),
    ([-0.654, -0.13, 0.784, 1.493, -1.259, 1.514, 1.346, 0.781, 0.264, -0.314],
     [0.804, 1.83, 2.586, 2.808, -0.902, 0.306, 1.342, 1.437, -1.024, 0.081], 0.4666666666666667, 0.17862048059964727,
     "exact"),
]


@pytest.mark.parametrize(("x", "y", "rho", "p", "method"), CASES)
def test_spearman_is_exact_up_to_ten(x, y, rho, p, method):
    got_rho, got_p, got_method = stats.spearman_exact(x, y)
    assert got_rho == pytest.approx(rho, rel=1e-12)
    assert got_p == pytest.approx(p, rel=1e-12)
    assert got_method == method


def test_spearman_beyond_ten_is_scipys_t_approximation():
    rng = np.random.default_rng(4)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    rho, p, method = stats.spearman_exact(x, y)
    ref = sps.spearmanr(x, y)
    assert method == "t approx." and rho == pytest.approx(ref[0]) and p == pytest.approx(ref[1])


def test_metric_correlations_report_the_exact_p_and_its_method():
    scores = pd.DataFrame({"condition": list("abcde"), "mean": [1.0, 3.0, 2.0, 4.0, 5.0]})
    metrics = pd.DataFrame({"condition": list("abcde"), "visqol": [1.0, 2.0, 3.0, 4.0, 5.0]})
    row = stats.metric_correlations(scores, metrics).iloc[0]
    assert row["spearman_rho"] == pytest.approx(0.9) and row["spearman_p"] == pytest.approx(1 / 12)
    assert row["spearman_method"] == "exact"
    assert list(stats.metric_correlations(scores, metrics).columns) == list(stats.CORRELATION_COLUMNS)
