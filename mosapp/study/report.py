"""The study report: MOS/DMOS per condition with 95 % intervals, screening, paired tests,
metric correlations, and a plot of the score against bitrate (PNG).

:func:`build_report` computes everything (with :mod:`mosapp.study.stats`) from the store;
:func:`write_report` writes ``<study>-report.txt``, ``<study>-summary.csv``,
``<study>-comparisons.csv``, ``<study>-correlations.csv``, ``<study>-listeners.csv`` and
``<study>-mos-vs-kbps.png``. The plot is drawn with matplotlib's Agg canvas directly, so no
GUI backend is ever loaded.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mosapp.study.definition import StudyDefinition
from mosapp.study.errors import StudyError
from mosapp.study.export import (
    METRIC_COLUMNS, Screening, condition_table, ratings_frame, screen, summary_frame, write_csv,
)
from mosapp.study.store import Store


@dataclass
class Report:
    """Everything the report shows.

    Attributes:
        definition: the study.
        ratings: every non-training rating (``screened_out`` marks dropped listeners).
        screening: the post-screening applied.
        summary: per condition (see :data:`mosapp.study.export.SUMMARY_COLUMNS`).
        listeners: per listener: ratings, mean score, screening outcome.
        comparisons: :func:`mosapp.study.stats.paired_comparisons` of the kept listeners.
        correlations: :func:`mosapp.study.stats.metric_correlations` of the metrics with the scores.
    """

    definition: StudyDefinition
    ratings: pd.DataFrame
    screening: Screening
    summary: pd.DataFrame
    listeners: pd.DataFrame
    comparisons: pd.DataFrame
    correlations: pd.DataFrame

    def text(self) -> str:
        """The report as plain text (what ``mosapp study report`` prints)."""
        d = self.definition
        scale = d.scale
        lines = [f"{d.title}  ({d.name}: {d.test_type.upper()}, {scale})", ""]
        n_list = self.ratings["listener"].nunique() if len(self.ratings) else 0
        lines.append(f"ratings: {len(self.ratings)} from {n_list} listener(s); screening: {self.screening.describe()}")
        if self.screening.applied and self.screening.dropped:
            lines.append(f"dropped: {', '.join(map(str, self.screening.dropped))}")
        lines.append("")
        header = f"{'condition':<18} {'kbps':>8} {'n':>5} {scale:>6} {'95% t CI':>15} {'95% bootstrap':>15}"
        lines += [header, "-" * len(header)]
        for r in self.summary.itertuples():
            kbps = "" if pd.isna(r.bitrate_kbps) else f"{r.bitrate_kbps:.1f}"
            mean = "-" if pd.isna(r.mean) else f"{r.mean:.2f}"
            ci = "" if pd.isna(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
            boot = "" if pd.isna(r.boot_low) else f"[{r.boot_low:.2f}, {r.boot_high:.2f}]"
            lines.append(f"{r.condition:<18} {kbps:>8} {r.n:>5} {mean:>6} {ci:>15} {boot:>15}")
        if len(self.comparisons):
            lines += ["", "paired comparisons (Wilcoxon signed-rank on per-listener means, Holm-corrected):"]
            for r in self.comparisons.itertuples():
                if pd.isna(r.p):
                    lines.append(f"  {r.a} vs {r.b}: not tested ({r.note or 'too few listeners'})")
                    continue
                mark = "significant" if r.significant else "n.s."
                lines.append(f"  {r.a} vs {r.b}: diff {r.mean_diff:+.2f}, n {r.n_pairs}, p {r.p:.3g}, "
                             f"Holm p {r.p_holm:.3g} ({mark})")
        if len(self.correlations):
            lines += ["", f"objective metrics vs {scale} per condition:"]
            for r in self.correlations.itertuples():
                if pd.isna(r.pearson_r):
                    lines.append(f"  {r.metric}: n {r.n}, {r.note or 'not computed'}")
                else:
                    lines.append(f"  {r.metric}: n {r.n}, Pearson r {r.pearson_r:+.2f} (p {r.pearson_p:.3g}), "
                                 f"Spearman rho {r.spearman_rho:+.2f} (p {r.spearman_p:.3g})")
        return "\n".join(lines)


def build_report(store: Store, definition: StudyDefinition, *, screening: bool = True, min_score: int = 4,
                 max_fraction: float = 0.15, bootstrap: int = 2000, seed: int = 0) -> Report:
    """Compute the report of a study from its store."""
    from mosapp.study import stats

    ratings = ratings_frame(store, definition)
    scr = screen(ratings, definition, enabled=screening, min_score=min_score, max_fraction=max_fraction)
    ratings["screened_out"] = ratings["listener"].isin(scr.dropped)
    conditions = condition_table(store, definition)
    summary = summary_frame(ratings, conditions, definition, scr, bootstrap=bootstrap, seed=seed)
    kept = ratings[~ratings["screened_out"]][["listener", "condition", "clip", "value"]]

    if len(ratings):
        listeners = (ratings.groupby("listener", sort=False)
                     .agg(ratings=("value", "size"), mean=("value", "mean")).reset_index())
    else:
        listeners = pd.DataFrame({"listener": [], "ratings": [], "mean": []})
    if scr.applied and len(scr.table):
        listeners = listeners.merge(scr.table, on="listener", how="left")
    else:
        listeners["dropped"] = False

    order = [c for c in conditions["condition"] if c in set(kept["condition"])]
    comparisons = stats.paired_comparisons(kept, conditions=order) if len(order) >= 2 else pd.DataFrame(
        columns=list(stats.PAIRED_COLUMNS))
    scored = summary.dropna(subset=["mean"])
    metric_cols = [m for m in METRIC_COLUMNS if m in definition.metrics]
    correlations = (stats.metric_correlations(scored[["condition", "mean"]], conditions[["condition", *metric_cols]])
                    if metric_cols and len(scored) else pd.DataFrame(columns=list(stats.CORRELATION_COLUMNS)))
    return Report(definition, ratings, scr, summary, listeners, comparisons, correlations)


def _family(condition: str) -> str:
    """``opus`` for ``opus-12``, ``msillm`` for ``msillm-q3``; other names stand alone."""
    head, _, tail = condition.rpartition("-")
    if head and (tail[:1].isdigit() or (tail[:1] == "q" and tail[1:].isdigit())):
        return head
    return condition


def plot_score_vs_kbps(summary: pd.DataFrame, definition: StudyDefinition, path: str | os.PathLike[str]) -> Path:
    """Draw each condition's score (95 % t CI) against its measured bitrate (log axis) as a PNG.

    Codecs of one family (``opus-6``, ``opus-12`` …) are joined by a line; conditions without
    a bitrate (the reference) are drawn as horizontal dashed lines.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(7.5, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    data = summary.dropna(subset=["mean"])
    with_rate = data.dropna(subset=["bitrate_kbps"])
    colors = itertools.cycle([f"C{i}" for i in range(10)])
    for family, group in with_rate.groupby(with_rate["condition"].map(_family), sort=False):
        group = group.sort_values("bitrate_kbps")
        color = next(colors)
        yerr = np.vstack([group["mean"] - group["ci_low"], group["ci_high"] - group["mean"]])
        yerr = np.where(np.isfinite(yerr), yerr, 0.0)
        ax.errorbar(group["bitrate_kbps"], group["mean"], yerr=yerr, marker="o", capsize=3, color=color,
                    label=family, linestyle="-" if len(group) > 1 else "none")
        for r in group.itertuples():
            ax.annotate(r.condition, (r.bitrate_kbps, r.mean), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=color)
    for r in data[data["bitrate_kbps"].isna()].itertuples():
        color = next(colors)
        ax.axhline(r.mean, linestyle="--", color=color, linewidth=1, label=f"{r.condition} (no bitrate)")
        if not (pd.isna(r.ci_low) or pd.isna(r.ci_high)):
            ax.axhspan(r.ci_low, r.ci_high, color=color, alpha=0.12)
    if len(with_rate):
        ax.set_xscale("log")
        lo, hi = with_rate["bitrate_kbps"].min(), with_rate["bitrate_kbps"].max()
        ax.set_xlim(lo / 1.5, hi * 1.5)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(1.0, 5.05)
    ax.set_xlabel("measured bitrate (kbit/s, log scale)")
    ax.set_ylabel(f"{definition.scale} (95% t CI)")
    ax.set_title(definition.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if len(data):
        ax.legend(fontsize=7, loc="best")
    p = Path(path)
    try:
        fig.savefig(p, format="png")
    except OSError as exc:
        raise StudyError(f"Cannot write {p} ({exc.strerror or exc}).") from None
    return p


def write_report(report: Report, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the report's files into ``out_dir`` (created); returns them by kind."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"The output folder {folder} cannot be created ({exc.strerror or exc}).") from None
    name = report.definition.name
    files = {
        "summary": write_csv(report.summary, folder / f"{name}-summary.csv"),
        "comparisons": write_csv(report.comparisons, folder / f"{name}-comparisons.csv"),
        "correlations": write_csv(report.correlations, folder / f"{name}-correlations.csv"),
        "listeners": write_csv(report.listeners, folder / f"{name}-listeners.csv"),
        "plot": plot_score_vs_kbps(report.summary, report.definition, folder / f"{name}-mos-vs-kbps.png"),
    }
    text = folder / f"{name}-report.txt"
    try:
        text.write_text(report.text() + "\n", encoding="utf-8")
    except OSError as exc:
        raise StudyError(f"Cannot write {text} ({exc.strerror or exc}).") from None
    files["text"] = text
    return files


__all__ = ["Report", "build_report", "plot_score_vs_kbps", "write_report"]
