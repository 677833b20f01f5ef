"""The study report: MOS/DMOS per condition with listener-level 95 % intervals, the mixed
model, per clip × condition, listener agreement, screening, paired tests, metric correlations,
and a plot of the score against bitrate (PNG).

:func:`build_report` computes everything (with :mod:`mosapp.study.stats`) from the store;
:func:`write_report` writes ``<study>-report.txt``, ``<study>-report-summary.csv``,
``<study>-report-mixed-model.csv``, ``<study>-report-clips.csv``,
``<study>-report-agreement.csv``, ``<study>-report-comparisons.csv``,
``<study>-report-correlations.csv``, ``<study>-report-listeners.csv`` and
``<study>-report-mos-vs-kbps.png`` — names of their own, so ``mosapp study export``'s files
are never overwritten; every table that depends on screening records its settings. The plot is drawn with matplotlib's Agg canvas directly, so no
GUI backend is ever loaded. What differs by test type (warnings, the plot's marks and file name,
a report of the type's own: CCR's CMOS tables, :mod:`mosapp.study.types.ccr`) is the type's.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
from matplotlib.transforms import Bbox

from mosapp.core.files import atomic_write
from mosapp.study import stats
from mosapp.study.definition import StudyDefinition
from mosapp.study.errors import StudyError
from mosapp.study.export import (
    METRIC_COLUMNS,
    RESULT_MODE,
    SUMMARY_COLUMNS,
    Screening,
    clip_to_scale,
    condition_table,
    has_bitrate,
    output_folder,
    ratings_frame,
    screen,
    statistics_input,
    summary_frame,
    write_csv,
)
from mosapp.study.store import Store

#: Columns of ``<study>-report-icc.csv`` (before, two rows of the agreement file whose ``listener`` was "ICC(2,1)").
ICC_COLUMNS = ("form", "icc_single", "icc_average", "n_listeners", "n_conditions", "note", "screening")


def study_warnings(definition: StudyDefinition) -> list[str]:
    """Sentences the report prints first (its test type's: a MUSHRA study lacking either BS.1534-3 anchor)."""
    return definition.kind.warnings(definition)


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
        mixed: :func:`mosapp.study.stats.mixed_model` of the kept listeners.
        clips: :func:`mosapp.study.stats.clip_condition_summary` of the kept listeners.
        agreement: :func:`mosapp.study.stats.listener_agreement` of the kept listeners.
    """

    definition: StudyDefinition
    ratings: pd.DataFrame
    screening: Screening
    summary: pd.DataFrame
    listeners: pd.DataFrame
    comparisons: pd.DataFrame
    correlations: pd.DataFrame
    mixed: pd.DataFrame | None = None
    clips: pd.DataFrame | None = None
    agreement: stats.AgreementResult | None = None

    def agreement_frame(self) -> pd.DataFrame:
        """Per listener: r with the rest of the panel (one row per listener; the ICC is in :meth:`icc_frame`)."""
        a = self.agreement
        out = (a.listeners.copy() if a is not None and len(a.listeners)
               else pd.DataFrame(columns=["listener", "n_points", "r_rest", "note"]))
        out["screening"] = self.screening.describe()
        return out

    def icc_frame(self) -> pd.DataFrame:
        """The ICC of the panel, one row: form, ICC(2,1), ICC(2,k), listeners, conditions, note, screening."""
        a = self.agreement
        if a is None:
            return pd.DataFrame(columns=list(ICC_COLUMNS))
        return pd.DataFrame([{"form": a.form, "icc_single": a.icc_single, "icc_average": a.icc_average,
                              "n_listeners": a.n_raters, "n_conditions": a.n_targets, "note": a.note,
                              "screening": self.screening.describe()}], columns=list(ICC_COLUMNS))

    def warnings(self) -> list[str]:
        """What the reader must know before trusting the numbers (a MUSHRA study without its anchors)."""
        return study_warnings(self.definition)

    def text(self) -> str:
        """The report as plain text (what ``mosapp study report`` prints)."""
        d = self.definition
        scale = d.scale
        kind = d.test_type.upper()
        lines = [f"{d.title}  ({d.name}: {kind}" + ("" if scale == kind else f", {scale}") + ")", ""]
        lines += [d.blind_note(), ""] + self.warnings() + ([""] if self.warnings() else [])
        n_list = self.ratings["listener"].nunique() if len(self.ratings) else 0
        n_gold = int(self.ratings["is_gold"].sum()) if "is_gold" in self.ratings and len(self.ratings) else 0
        lines.append(f"ratings: {len(self.ratings) - n_gold} from {n_list} listener(s)"
                     + (f" (and {n_gold} gold)" if n_gold else "") + f"; screening: {self.screening.describe()}")
        if self.screening.applied and self.screening.dropped:
            lines.append(f"dropped: {', '.join(map(str, self.screening.dropped))}")
        if self.screening.applied and self.screening.flagged and len(self.screening.table):
            t = self.screening.table.set_index("listener")
            for code in self.screening.flagged:
                lines.append(f"flagged: {code}: {t.loc[code, 'reason']}")
        lines.append("")

        def iv(low, high) -> str:
            return "" if pd.isna(low) or pd.isna(high) else f"[{low:.2f}, {high:.2f}]"

        lines.append(f"{scale} per condition; intervals at the listener level (95 %): t over listener means, "
                     f"listener-clustered bootstrap-t and BCa (the percentile bootstrap, too narrow with few "
                     f"listeners, is in the CSV), mixed model (random listener and clip intercepts; t with "
                     f"Satterthwaite df); the per-rating t interval, which treats ratings as independent, last. "
                     f"kbps: none for the reference, the anchors and pghi-only:")
        header = (f"{'condition':<18} {'kbps':>7} {'n':>4} {'L':>3} {scale:>6} {'t (listeners)':>16} "
                  f"{'bootstrap-t':>16} {'BCa':>16} {'mixed model':>16} {'t (ratings)':>16}")
        lines += ruled(header)
        clipped = False
        for r in self.summary.itertuples():
            mean = "-" if pd.isna(r.mean) else f"{r.mean:.2f}"
            marks = set(str(r.clipped).split(";")) if isinstance(r.clipped, str) and r.clipped else set()
            clipped |= bool(marks)

            def cell(name: str, low: float, high: float, marks: set[str] = marks) -> str:
                return iv(low, high) + ("*" if name in marks else " ")

            lines.append(f"{r.condition:<18} {kbps_cell(r.bitrate_kbps):>7} {r.n:>4} {r.n_listeners:>3} {mean:>6} "
                         f"{cell('ci', r.ci_low, r.ci_high):>16} {cell('boot_t', r.boot_t_low, r.boot_t_high):>16} "
                         f"{cell('bca', r.bca_low, r.bca_high):>16} "
                         f"{cell('mixed_t', r.mixed_t_low, r.mixed_t_high):>16} "
                         f"{cell('rating_ci', r.rating_ci_low, r.rating_ci_high):>16}")
        if clipped:
            low, high = d.score_range
            lines.append(f"* clipped to the scale ({low} to {high}): the interval reached past it")
        if self.mixed is not None and len(self.mixed):
            m = self.mixed.iloc[0]
            if pd.notna(m["residual_var"]):
                residual = (f"residual {m['residual_var']:.3g}" if m["residual"] == "common" else
                            "residual per condition " + ", ".join(
                                f"{c} {v:.3g}" for c, v in zip(self.mixed["condition"], self.mixed["residual_var"])))
                df = self.mixed["df"].dropna()
                dfs = "" if not len(df) else f"; Satterthwaite df {df.min():.1f} to {df.max():.1f}"
                lines.append(f"mixed model variances: listener {m['listener_var']:.3g}, clip {m['clip_var']:.3g}, "
                             f"{residual}{dfs}" + (f" ({m['note']})" if m["note"] else ""))
        a = self.agreement
        if a is not None and len(a.listeners):
            lines += ["", "listener agreement (Pearson r of each listener's condition means with the panel mean "
                          "without them):"]
            for r in a.listeners.itertuples():
                lines.append(f"  {r.listener}: " + (f"r {r.r_rest:+.2f} over {r.n_points} conditions"
                                                    if pd.notna(r.r_rest) else r.note))
            icc = ("not computed" if pd.isna(a.icc_single) else
                   f"ICC(2,1) {a.icc_single:.2f}, ICC(2,k) {a.icc_average:.2f} ({a.n_raters} listeners x "
                   f"{a.n_targets} conditions)")
            lines.append(f"  {icc}; {a.form}" + (f"; {a.note}" if a.note else ""))
        lines += comparison_lines(self.comparisons, "per-listener means")
        if len(self.correlations):
            lines += ["", f"objective metrics vs {scale} per condition:"]
            for r in self.correlations.itertuples():
                if pd.isna(r.pearson_r):
                    lines.append(f"  {r.metric}: n {r.n}, {r.note or 'not computed'}")
                else:
                    lines.append(f"  {r.metric}: n {r.n}, Pearson r {r.pearson_r:+.2f} (p {r.pearson_p:.3g}), "
                                 f"Spearman rho {r.spearman_rho:+.2f} (p {r.spearman_p:.3g}, {r.spearman_method})")
        return "\n".join(lines)


def build_report(store: Store, definition: StudyDefinition, *, screening: bool = True, min_score: int | None = None,
                 max_fraction: float | None = None, min_reference_trials: int | None = None,
                 anchor_max_score: int | None = None, bootstrap: int = 2000, seed: int = 0,
                 residual: str = "common") -> Report | Any:
    """Compute the report of a study from its store.

    Screening follows the study file's ``screening``; ``min_score``, ``max_fraction`` and
    ``min_reference_trials`` and ``anchor_max_score`` override it, each in the study's units
    (MUSHRA 0..100, DCR/ACR 1..5), ``screening=False`` turns it off. ``residual``: the mixed
    model's residual variance, ``common`` or ``per-condition``. Raises
    :class:`~mosapp.study.export.ScreeningError` when it drops every listener. A test type with a
    report of its own (CCR's :class:`~mosapp.study.types.ccr.CcrReport`, no screening rule) gets that.
    """
    own = definition.kind.build_report(store, definition, screening=screening, min_score=min_score,
                                       max_fraction=max_fraction, min_reference_trials=min_reference_trials,
                                       anchor_max_score=anchor_max_score, bootstrap=bootstrap, seed=seed,
                                       residual=residual)
    if own is not None:
        return own
    with stats.score_range(*definition.score_range):
        return _build_report(store, definition, screening=screening, min_score=min_score, max_fraction=max_fraction,
                             min_reference_trials=min_reference_trials, anchor_max_score=anchor_max_score,
                             bootstrap=bootstrap, seed=seed, residual=residual)


def _build_report(store: Store, definition: StudyDefinition, *, screening: bool, min_score: int | None,
                  max_fraction: float | None, min_reference_trials: int | None, anchor_max_score: int | None,
                  bootstrap: int, seed: int, residual: str) -> Report:
    ratings = ratings_frame(store, definition)
    scr = screen(ratings, definition, enabled=screening, min_score=min_score, max_fraction=max_fraction,
                 min_reference_trials=min_reference_trials, anchor_max_score=anchor_max_score)
    ratings["screened_out"] = ratings["listener"].isin(scr.dropped)
    conditions = condition_table(store, definition)
    kept = statistics_input(ratings, scr)
    mixed = stats.mixed_model(kept, residual=residual)
    summary = summary_frame(ratings, conditions, definition, scr, bootstrap=bootstrap, seed=seed, mixed=mixed)
    position = {c: i for i, c in enumerate(conditions["condition"])}
    mixed = mixed.assign(_o=mixed["condition"].map(position)).sort_values("_o").drop(columns="_o").reset_index(drop=True)
    mixed = clip_to_scale(mixed, *definition.score_range, intervals={"t": ("t_low", "t_high")})
    mixed["screening"] = scr.describe()
    clips = stats.clip_condition_summary(kept)
    clips["screening"] = scr.describe()
    agreement = stats.listener_agreement(kept)

    plain = ratings[~ratings["is_gold"]] if "is_gold" in ratings else ratings
    if len(plain):
        listeners = (plain.groupby("listener", sort=False)
                     .agg(ratings=("value", "size"), mean=("value", "mean")).reset_index())
    else:
        listeners = pd.DataFrame({"listener": [], "ratings": [], "mean": []})
    if scr.applied and len(scr.table):
        listeners = listeners.merge(scr.table, on="listener", how="left")
    else:
        listeners["dropped"] = False
    listeners["screening"] = scr.describe()

    order = [c for c in conditions["condition"] if c in set(kept["condition"])]
    comparisons = stats.paired_comparisons(kept, conditions=order) if len(order) >= 2 else pd.DataFrame(
        columns=list(stats.PAIRED_COLUMNS))
    correlations = metric_correlations(summary.dropna(subset=["mean"]), conditions, definition)
    correlations["screening"] = scr.describe()
    return Report(definition, ratings, scr, summary, listeners, comparisons, correlations, mixed, clips, agreement)


def metric_correlations(scored: pd.DataFrame, conditions: pd.DataFrame, definition: StudyDefinition) -> pd.DataFrame:
    """The study's metrics against the score per condition (``scored``: ``condition``, ``mean``)."""
    metric_cols = [m for m in METRIC_COLUMNS if m in definition.metrics]
    if not metric_cols or not len(scored):
        return pd.DataFrame(columns=list(stats.CORRELATION_COLUMNS))
    return stats.metric_correlations(scored[["condition", "mean"]], conditions[["condition", *metric_cols]])


def ruled(header: str) -> list[str]:
    """A text table's header and the rule under it."""
    return [header, "-" * len(header)]


def kbps_cell(bitrate_kbps: float) -> str:
    return "" if pd.isna(bitrate_kbps) else f"{bitrate_kbps:.1f}"


def comparison_lines(comparisons: pd.DataFrame, on: str, alpha: float = 0.05) -> list[str]:
    """The report text's paired comparisons (paired t, sign-flip, Wilcoxon on ``on``, each Holm-corrected)."""
    if not len(comparisons):
        return []
    lines = ["", f"paired comparisons on {on} (95 % CI of the difference; paired t-test, the decision; sign-flip "
                 f"permutation and Wilcoxon signed-rank tests to check it; p-values Holm-corrected over the "
                 f"{len(comparisons)} pairs):"]
    for r in comparisons.itertuples():
        if r.n_pairs < 2 or pd.isna(r.mean_diff):
            lines.append(f"  {r.a} vs {r.b}: not tested ({r.note or 'too few listeners'})")
            continue
        ci = "" if pd.isna(r.diff_ci_low) else f" [{r.diff_ci_low:+.2f}, {r.diff_ci_high:+.2f}]"
        dz = "" if pd.isna(r.dz) else f", dz {r.dz:+.2f}"
        t = (f"t({r.df:g}) {r.t:+.2f}, Holm p {r.p_t_holm:.3g}" if pd.notna(r.p_t) else "t not computed")
        mark = "significant" if r.significant_t else ("n.s." if pd.notna(r.p_t) else "no test")
        perm = "" if pd.isna(r.p_perm) else f"; sign-flip ({r.perm_method}) Holm p {r.p_perm_holm:.3g}"
        wil = ("" if pd.isna(r.p_wilcoxon) else
               f"; Wilcoxon ({r.wilcoxon_method}) V {r.wilcoxon_v:g}, Holm p {r.p_wilcoxon_holm:.3g}")
        need = ("" if pd.isna(r.listeners_needed) else
                f"; about {int(r.listeners_needed)} listeners would find this difference (power 80 %)")
        lines.append(f"  {r.a} vs {r.b}: diff {r.mean_diff:+.2f}{ci}{dz}, n {r.n_pairs}: {t} ({mark}){perm}{wil}"
                     f"{need}")
    n = int(comparisons["n_pairs"].max())
    m = len(comparisons)
    if m * 2.0 / 2.0 ** n > alpha:
        lines.append(f"  with {n} listeners and {m} pairs no exact (sign-flip or Wilcoxon) test can reach "
                     f"significance after Holm; about {stats.exact_tests_floor_listeners(m, alpha)} listeners "
                     f"would be needed for them")
    if not comparisons["significant_t"].any():
        needed = comparisons["listeners_needed"].dropna()
        lines.append("  no pair is significant with this panel" + (
            f"; about {int(needed.min())} listeners would be needed to find the largest difference seen"
            if len(needed) else ""))
    return lines


def condition_family(condition: str) -> str:
    """``opus`` for ``opus-12``, ``msillm`` for ``msillm-q3``; other names stand alone."""
    head, _, tail = condition.rpartition("-")
    if head and (tail[:1].isdigit() or (tail[:1] == "q" and tail[1:].isdigit())):
        return head
    return condition


#: Bitrates that may be labelled on a log kbps axis (a 1-1.5-2-3-4-6-8 series).
KBPS_TICKS = (0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
              1536, 2048, 3072)


def kbps_ticks(lo: float, hi: float, *, min_ratio: float = 1.9) -> list[float]:
    """Ticks of :data:`KBPS_TICKS` in ``[lo, hi]``, thinned so that neighbours differ by at least ``min_ratio``.

    On a log axis the labels then never run together ("768 1024 1536" became "7681024 1536"):
    their distance on the axis is at least ``log(min_ratio)``. Never fewer than two ticks
    where the range holds two.
    """
    inside = [v for v in KBPS_TICKS if lo <= v <= hi]
    if len(inside) <= 2:
        return inside
    for ratio in (min_ratio, 1.45):
        kept = [inside[0]]
        for v in inside[1:]:
            if v / kept[-1] >= ratio - 1e-9:
                kept.append(v)
        if len(kept) >= 3:
            return kept
    return kept


def score_ticks(definition: StudyDefinition) -> list[float]:
    """Every value of the scale worth a label: each grade of 1..5 and of CCR's -3..+3, MUSHRA's band edges."""
    low, high = definition.score_range
    return [float(v) for v in range(int(low), int(high) + 1, definition.kind.tick_step)]


def line_label(condition: str) -> str:
    """How a condition without a bitrate is named in a legend: the reference, an anchor, or no bitrate."""
    if condition == "reference":
        return "reference (hidden)"
    if condition.startswith("lowpass-"):
        return f"{condition} (anchor)"
    return f"{condition} (no bitrate)"


def _place_labels(fig: Figure, ax, texts: list) -> None:
    """Move each point label to the first of eight offsets around its point where it overlaps no label placed
    before it and stays inside the axes; the last resort keeps it inside the axes."""
    renderer = cast(FigureCanvasAgg, fig.canvas).get_renderer()
    box = ax.get_window_extent(renderer)
    # The points themselves are obstacles too (a label never sits on a marker).
    placed: list = [Bbox.from_extents(x - 5, y - 5, x + 5, y + 5)
                    for x, y in (ax.transData.transform(t.xy) for t in texts)]
    offsets = [(4, 4), (4, -11), (-4, 4), (-4, -11), (4, 12), (-4, 12), (4, -19), (-4, -19)]
    for text in texts:
        choice = None
        for dx, dy in offsets:
            text.set_position((dx, dy))
            text.set_ha("left" if dx > 0 else "right")
            ext = text.get_window_extent(renderer)
            inside = ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0 and ext.y1 <= box.y1
            if inside and not any(ext.overlaps(p) for p in placed):
                choice = ext
                break
        if choice is None:  # crowded: inside the axes at least
            for dx, dy in offsets:
                text.set_position((dx, dy))
                text.set_ha("left" if dx > 0 else "right")
                ext = text.get_window_extent(renderer)
                if ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0 and ext.y1 <= box.y1:
                    break
            choice = text.get_window_extent(renderer)
        placed.append(choice)


def plot_score_vs_kbps(summary: pd.DataFrame, definition: StudyDefinition, path: str | os.PathLike[str]) -> Path:
    """Draw each condition's score (95 % t CI over listener means) against its measured bitrate (log axis) as a PNG.

    Codecs of one family (``opus-6``, ``opus-12`` …) are joined by a line; conditions without
    a bitrate (the reference, the ``lowpass-*`` anchors, ``pghi-only``:
    :func:`mosapp.study.export.has_bitrate`) are drawn as horizontal dashed lines with their
    interval as a band. The score axis labels every grade (each of 1..5, each of CCR's -3..+3
    with 0 drawn, MUSHRA's 0, 20 … 100); bitrate ticks are thinned (:func:`kbps_ticks`) and
    point labels moved off each other and inside the axes; the legend sits outside the axes.
    """
    fig = Figure(figsize=(8.4, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    data = summary.dropna(subset=["mean"])
    data = data.assign(bitrate_kbps=data["bitrate_kbps"].where(data["condition"].map(has_bitrate)))
    with_rate = data.dropna(subset=["bitrate_kbps"])
    colors = itertools.cycle([f"C{i}" for i in range(10)])
    texts = []
    for family, group in with_rate.groupby(with_rate["condition"].map(condition_family), sort=False):
        group = group.sort_values("bitrate_kbps")
        color = next(colors)
        yerr = np.vstack([group["mean"] - group["ci_low"], group["ci_high"] - group["mean"]])
        yerr = np.clip(np.where(np.isfinite(yerr), yerr, 0.0), 0.0, None)
        ax.errorbar(group["bitrate_kbps"], group["mean"], yerr=yerr, marker="o", capsize=3, color=color,
                    label=family, linestyle="-" if len(group) > 1 else "none")
        for r in group.itertuples():
            texts.append(ax.annotate(r.condition, (r.bitrate_kbps, r.mean), textcoords="offset points",
                                     xytext=(4, 4), fontsize=7, color=color, zorder=5,
                                     bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}))
    for r in data[data["bitrate_kbps"].isna()].itertuples():
        color = next(colors)
        ax.axhline(r.mean, linestyle="--", color=color, linewidth=1, label=line_label(str(r.condition)))
        if not (pd.isna(r.ci_low) or pd.isna(r.ci_high)):
            ax.axhspan(r.ci_low, r.ci_high, color=color, alpha=0.12)
    if len(with_rate):
        ax.set_xscale("log")
        lo, hi = with_rate["bitrate_kbps"].min() / 1.5, with_rate["bitrate_kbps"].max() * 1.5
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(kbps_ticks(lo, hi) or [lo, hi]))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_xticks([])
        ax.set_xlabel("")
    low, high = definition.score_range
    pad = (high - low) * 0.03
    ax.set_ylim(low - pad, high + pad)
    ax.set_yticks(score_ticks(definition))
    kind = definition.kind
    kind.decorate_plot(ax, definition)  # MUSHRA's labelled bands, CCR's zero line
    if len(with_rate):
        ax.set_xlabel("measured bitrate (kbit/s, log scale)")
    ax.set_ylabel(f"{definition.scale} (95% t CI over listener means)")
    ax.set_title(definition.title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    fig.subplots_adjust(left=0.09, right=kind.plot_right, bottom=0.12, top=0.92)
    if len(data):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(kind.legend_x, 1.0), borderaxespad=0.0)
    _place_labels(fig, ax, texts)
    p = Path(path)
    atomic_write(p, lambda fh: fig.savefig(fh, format="png"), suffix=".png", error=StudyError, mode=RESULT_MODE)
    return p


def write_text(path: Path, text: str) -> Path:
    body = (text + "\n").encode("utf-8")
    atomic_write(path, lambda fh: fh.write(body), suffix=".txt", error=StudyError, mode=RESULT_MODE)
    return path


def write_report(report: Report | Any, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the report's files into ``out_dir`` (created); returns them by kind."""
    if not isinstance(report, Report):  # a test type's own report (CCR's) writes its own files
        return report.write(out_dir)
    folder = output_folder(out_dir)
    name = report.definition.name
    comparisons = report.comparisons.copy()
    comparisons["screening"] = report.screening.describe()
    files = {
        "summary": write_csv(report.summary, folder / f"{name}-report-summary.csv"),
        "mixed": write_csv(report.mixed if report.mixed is not None else pd.DataFrame(),
                           folder / f"{name}-report-mixed-model.csv"),
        "clips": write_csv(report.clips if report.clips is not None else pd.DataFrame(),
                           folder / f"{name}-report-clips.csv"),
        "agreement": write_csv(report.agreement_frame(), folder / f"{name}-report-agreement.csv"),
        "icc": write_csv(report.icc_frame(), folder / f"{name}-report-icc.csv"),
        "comparisons": write_csv(comparisons, folder / f"{name}-report-comparisons.csv"),
        "correlations": write_csv(report.correlations, folder / f"{name}-report-correlations.csv"),
        "listeners": write_csv(report.listeners, folder / f"{name}-report-listeners.csv"),
        "plot": plot_score_vs_kbps(report.summary, report.definition,
                                   folder / f"{name}-report-{report.definition.kind.plot_name}-vs-kbps.png"),
    }
    files["text"] = write_text(folder / f"{name}-report.txt", report.text())
    return files


def standard_summary(cmos: pd.DataFrame) -> pd.DataFrame:
    """The CMOS table in the columns of :data:`mosapp.study.export.SUMMARY_COLUMNS` (what the app's Results
    view and the plot read): ``mean`` is the order-corrected CMOS, ``ci_*`` its interval over listeners;
    the bootstrap, mixed-model and per-rating columns are NA."""
    out = pd.DataFrame({c: pd.Series([np.nan] * len(cmos), dtype=float) for c in SUMMARY_COLUMNS})
    for c in ("condition", "is_reference", "scale", "nominal_kbps", "bitrate_kbps", "n", "n_listeners", "ci_low",
              "ci_high", "listener_sd", "clipped", "screening"):
        out[c] = cmos[c].to_numpy()
    out["mean"] = out["listener_mean"] = cmos["cmos"].to_numpy()
    return out



__all__ = ["ICC_COLUMNS", "Report", "build_report", "comparison_lines", "condition_family", "kbps_cell",
           "metric_correlations", "plot_score_vs_kbps", "ruled", "standard_summary", "study_warnings", "write_report",
           "write_text"]
