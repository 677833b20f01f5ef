"""Coverage of the study statistics' 95 % intervals on simulated panels (the figures in studies/README.md).

    .venv/bin/python benchmarks/interval_coverage.py [--panels 400] [--seed 1]

A. Listener-level intervals of a condition mean: L listeners (7 and 10) x 6 clips, ratings
   ``mu + u_l + e`` (``u ~ N(0, 0.6²)``, ``e ~ N(0, 0.8²)``, continuous); the target is ``mu``.
   t over listener means, the listener-clustered percentile bootstrap, its BCa and its bootstrap-t
   (999 resamples each).
B. The mixed model: 8 listeners x 6 clips x 4 conditions, ``mu_c + u_l + v_k + e`` (``u ~ N(0, 0.5²)``,
   ``v ~ N(0, 0.3²)``, ``e ~ N(0, 0.7²)``); the target is ``mu_c``: the Wald z interval
   (``estimate ± 1.96 se``) against the t interval with Satterthwaite df.

Prints each method's share of intervals that hold the target, with its binomial standard error.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
from scipy import stats as sps

from mosapp.study import stats


def listener_level(panels: int, listeners: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, listeners])
    hits = {"t over listener means": 0, "percentile bootstrap": 0, "BCa bootstrap": 0, "bootstrap-t": 0}
    for _ in range(panels):
        u = rng.normal(0, 0.6, listeners)
        values = 3.0 + u[:, None] + rng.normal(0, 0.8, (listeners, 6))
        sums, counts = values.sum(axis=1), np.full(listeners, 6.0)
        m = values.mean(axis=1)
        lo, hi = stats.t_interval(float(m.mean()), float(m.std(ddof=1)), listeners)
        hits["t over listener means"] += lo <= 3.0 <= hi
        lo, hi = stats.cluster_bootstrap_interval(sums, counts, resamples=999, rng=rng)
        hits["percentile bootstrap"] += lo <= 3.0 <= hi
        lo, hi = stats.cluster_bca_interval(sums, counts, resamples=999, rng=rng)
        hits["BCa bootstrap"] += lo <= 3.0 <= hi
        lo, hi = stats.cluster_bootstrap_t_interval(sums, counts, resamples=999, rng=rng)
        hits["bootstrap-t"] += lo <= 3.0 <= hi
    return {k: v / panels for k, v in hits.items()}


def mixed(panels: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng([seed, 99])
    mu = np.array([2.0, 2.8, 3.5, 4.2])
    hits = {"mixed model, Wald z": 0, "mixed model, Satterthwaite t": 0}
    total = 0
    for _ in range(panels):
        u, v = rng.normal(0, 0.5, 8), rng.normal(0, 0.3, 6)
        rows = [(f"L{i}", f"c{c}", f"k{k}", mu[c] + u[i] + v[k] + rng.normal(0, 0.7))
                for i in range(8) for k in range(6) for c in range(4)]
        df = pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])
        out = _fit(df)
        z = sps.norm.ppf(0.975)
        for c, row in enumerate(out.itertuples()):
            total += 1
            hits["mixed model, Wald z"] += abs(row.estimate - mu[c]) <= z * row.se
            hits["mixed model, Satterthwaite t"] += row.t_low <= mu[c] <= row.t_high
    return {k: v / total for k, v in hits.items()}


def _fit(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`mosapp.study.stats.mixed_model` on continuous values (scaled into its whole-number check and back)."""
    scaled = df.assign(value=np.round(df["value"] * 1e4).astype(np.int64))
    with stats.score_range(-10**9, 10**9):
        out = stats.mixed_model(scaled)
    for col in ("estimate", "se", "t_low", "t_high"):
        out[col] = out[col] / 1e4
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for listeners in (7, 10):
        for name, share in listener_level(args.panels, listeners, args.seed).items():
            se = math.sqrt(share * (1 - share) / args.panels)
            print(f"A  L={listeners:<2}  {name:<30} coverage {100 * share:5.1f} % (± {100 * se:.1f})")
    n = args.panels // 2
    for name, share in mixed(n, args.seed).items():
        se = math.sqrt(share * (1 - share) / (4 * n))
        print(f"B  L=8   {name:<30} coverage {100 * share:5.1f} % (± {100 * se:.1f}, {n} panels x 4 conditions)")


if __name__ == "__main__":
    main()
