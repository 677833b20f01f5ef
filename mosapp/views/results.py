"""What the Results view shows, computed without Qt: a study's report and its listeners'
progress read in the background (:func:`load_results`), a (clip, condition) cell's files and
ratings for Inspect (:func:`stimulus_link`), and the rows of the view's tables as text.

Every number comes from :func:`mosapp.study.report.build_report` (the ``mosapp study report``
numbers); this module only formats them. The view (:mod:`mosapp.gui.results_view`) draws them.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import make_url

from mosapp.study.definition import REFERENCE, StudyDefinition, load_study
from mosapp.study.engine import ListenerProgress, StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.export import check_screening_units
from mosapp.study.report import Report, build_report, condition_family
from mosapp.study.store import ClipRow, ConditionRow, StimulusRow, Store, StudyRow, open_store
from mosapp.study.types.ccr import CcrReport

#: Line colours of the plot and the summary's condition names (matplotlib's tab10, as the report's PNG).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
#: What a table shows for a number that is not there.
NA = "–"


def num(value: Any, fmt: str = "{:.2f}") -> str:
    """``value`` formatted, or :data:`NA` when it is missing."""
    try:
        if value is None or pd.isna(value):
            return NA
    except (TypeError, ValueError):
        return str(value)
    return fmt.format(value)


def interval(low: float | None, high: float | None) -> str:
    """``[low, high]``, or :data:`NA` when either is missing."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return NA
    return f"[{low:.2f}, {high:.2f}]"


#: How a study without a database yet begins its message: a first step, not an error (shown as a hint).
NO_RATINGS_YET = "No ratings yet."


def open_existing(url: str) -> Store:
    """Open a study database for reading (read-only when the file or its folder cannot be written)."""
    u = make_url(url)
    readonly = False
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        p = Path(u.database)
        if not p.exists():
            raise StudyError(f"{NO_RATINGS_YET} The study database {p} does not exist yet: prepare the study "
                             f"(Listen tab, or `mosapp study prepare` with --db at that path) and rate some trials "
                             f"first.")
        readonly = not (os.access(p, os.W_OK) and os.access(p.parent, os.W_OK))
    return open_store(url, create=False, readonly=readonly)


def load_results(study: str | os.PathLike[str] | StudyDefinition, database: str | None, *, screening: bool,
                 bootstrap: int, min_score: int | None = None
                 ) -> Generator[str, None, tuple[StudyDefinition, Report | CcrReport, list[ListenerProgress]]]:
    """The job the worker runs: (definition, Report, listener progress). A generator (one step).

    ``min_score`` overrides the study's screening threshold, in its units (ignored where out of them)."""
    yield "reading"
    definition = study if isinstance(study, StudyDefinition) else load_study(study, check_codecs=False)
    if min_score is not None:
        try:
            check_screening_units(definition, min_score=min_score)  # in the study's units (its test type's)
        except StudyError:
            min_score = None  # another study's threshold: the study's own
    store = open_existing(database or definition.database_url)
    try:
        report = build_report(store, definition, screening=screening, bootstrap=bootstrap, min_score=min_score)
        progress = StudyEngine(definition, store).listener_progress()
    finally:
        store.close()
    return definition, report, progress


@dataclass(frozen=True)
class StimulusLink:
    """A (clip, condition) cell of Results as Inspect opens it: the rendered stimulus, its reference, its ratings."""

    clip: str
    condition: str
    stimulus: Path
    reference: Path
    ratings: tuple[str, ...]

    @property
    def title(self) -> str:
        return f"{self.condition} · {self.clip}"


def stimulus_link(store: Store, definition: StudyDefinition, ratings: pd.DataFrame, clip: str,
                  condition: str) -> StimulusLink:
    """The files listeners heard for ``(clip, condition)`` and for the clip's reference, and the cell's ratings
    (``ratings``: the report's table; one line per rating, screened-out listeners marked)."""
    with store.read() as s:
        rows = dict(s.execute(
            select(ConditionRow.name, StimulusRow.audio_file)
            .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
            .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
            .join(StudyRow, StimulusRow.study_id == StudyRow.id)
            .where(StudyRow.name == definition.name, ClipRow.name == clip,
                   ConditionRow.name.in_([condition, REFERENCE]))).all())
    if condition not in rows or REFERENCE not in rows:
        missing = condition if condition not in rows else REFERENCE
        raise StudyError(f'The study "{definition.name}" has no rendered stimulus of {missing} for the clip {clip}; '
                         f"run `mosapp study prepare`.")
    cell = ratings[(ratings["clip"] == clip) & (ratings["condition"] == condition)] if len(ratings) else ratings
    if "is_gold" in cell:
        cell = cell[~cell["is_gold"].astype(bool)]
    lines = tuple(
        f"{r.listener}: {r.value:g} (trial {r.trial})" + (" — screened out" if getattr(r, "screened_out", False) else "")
        for r in cell.itertuples())
    folder = definition.stimuli_dir
    return StimulusLink(clip, condition, folder / rows[condition], folder / rows[REFERENCE], lines)


def cell(row: pd.Series | None, column: str, fmt: str = "{:.0f}") -> str:
    """``row[column]`` formatted, or the "not available" mark."""
    return NA if row is None or column not in row.index else num(row[column], fmt)


def family_colors(summary: pd.DataFrame) -> dict[str, str]:
    """A colour per plotted family (conditions with a bitrate) or condition (without)."""
    colors: dict[str, str] = {}
    i = 0
    data = summary.dropna(subset=["mean"])
    for family in dict.fromkeys(data.dropna(subset=["bitrate_kbps"])["condition"].map(condition_family)):
        colors[family] = PALETTE[i % len(PALETTE)]
        i += 1
    for cond in data[data["bitrate_kbps"].isna()]["condition"]:
        colors[cond] = PALETTE[i % len(PALETTE)]
        i += 1
    return colors


def summary_rows(summary: pd.DataFrame) -> tuple[list[list[str]], list[str | None]]:
    """The Per-condition table: a row per condition (an interval clipped to the scale marked ``*``),
    and the colour of each row's condition name (its plotted line's)."""
    colors = family_colors(summary)
    rows: list[list[str]] = []
    row_colors: list[str | None] = []
    for r in summary.itertuples():
        marks = set(str(r.clipped).split(";")) if isinstance(r.clipped, str) and r.clipped else set()

        def iv(name: str, low: float, high: float, marks: set[str] = marks) -> str:
            text = interval(low, high)
            return text + ("*" if name in marks and text != NA else "")

        rows.append([
            str(r.condition) + ("  (hidden reference)" if r.is_reference else ""),
            num(r.bitrate_kbps, "{:.1f}"), str(int(r.n)), str(int(r.n_listeners)), num(r.mean),
            iv("ci", r.ci_low, r.ci_high), iv("boot", r.boot_low, r.boot_high), iv("boot_t", r.boot_t_low, r.boot_t_high),
            NA if pd.isna(r.mixed_estimate) else
            f"{r.mixed_estimate:.2f} {iv('mixed_t', r.mixed_t_low, r.mixed_t_high)}",
            iv("rating_ci", r.rating_ci_low, r.rating_ci_high), num(r.sd),
        ])
        key = r.condition if pd.isna(r.bitrate_kbps) else condition_family(r.condition)
        row_colors.append(colors.get(key))
    return rows, row_colors


def _screening_outcome(report: Report | CcrReport, s: pd.Series | None) -> str:
    if s is None:
        return "no ratings yet"
    if not report.screening.applied:
        return "kept (no screening)"
    if bool(s.get("dropped", False)):
        return f"dropped: {s.get('reason', '')}"
    if bool(s.get("flagged", False)):
        return f"kept, flagged: {s.get('reason', '')}"
    return "kept"


def listener_rows(report: Report | CcrReport, progress: list[ListenerProgress]) -> list[list[str]]:
    """The Listeners table: every enrolled listener (and any with ratings but no sitting), their
    progress and their post-screening outcome."""
    screening = report.listeners.set_index("listener") if len(report.listeners) else pd.DataFrame()
    by_code = {p.code: p for p in progress}
    codes = list(by_code) + [c for c in screening.index if c not in by_code]
    rows = []
    for code in codes:
        p = by_code.get(code)
        s = screening.loc[code] if code in screening.index else None
        rows.append([
            str(code),
            NA if p is None else f"{p.rated}/{p.total}" + (" ✓" if p.finished else ""),
            NA if p is None else f"{p.training_rated}/{p.training_total}",
            NA if p is None else str(p.sessions),
            cell(s, "ratings"), cell(s, "mean", "{:.2f}"), cell(s, "n_reference_trials"),
            cell(s, "n_below"), cell(s, "fraction_below", "{:.0%}"), _screening_outcome(report, s),
        ])
    return rows


def clip_rows(clips: pd.DataFrame | None) -> list[list[str]]:
    """The Per-clip table: a row per (clip, condition) cell."""
    return [] if clips is None else [
        [str(r.clip), str(r.condition), str(int(r.n)), str(int(r.n_listeners)), num(r.mean),
         interval(r.ci_low, r.ci_high), num(r.listener_sd)] for r in clips.itertuples()]


def agreement_rows(report: Report | CcrReport) -> list[list[str]]:
    """The Agreement table: each listener against the rest, then the panel's ICCs."""
    frame = report.agreement_frame()
    rows = [[str(r.listener), str(int(r.n_points)) if pd.notna(r.n_points) else NA,
             num(r.r_rest, "{:+.2f}"), str(r.note or "")] for r in frame.itertuples()]
    for r in report.icc_frame().itertuples():  # the panel's ICC, below the listeners
        rows.append(["ICC(2,1)", str(int(r.n_conditions)), num(r.icc_single, "{:+.2f}"),
                     f"{r.n_listeners} listeners x {r.n_conditions} conditions" + (f"; {r.note}" if r.note else "")])
        rows.append(["ICC(2,k)", str(int(r.n_conditions)), num(r.icc_average, "{:+.2f}"),
                     "average of the listeners"])
    return rows


def correlation_rows(correlations: pd.DataFrame) -> list[list[str]]:
    """The metrics-against-score table: a row per metric."""
    return [[str(r.metric), str(int(r.n)), num(r.pearson_r, "{:+.2f}"), num(r.pearson_p, "{:.3g}"),
             num(r.spearman_rho, "{:+.2f}"), num(r.spearman_p, "{:.3g}"), str(r.note or "")]
            for r in correlations.itertuples()]


def comparison_rows(comparisons: pd.DataFrame) -> list[list[str]]:
    """The Paired comparisons table: a row per pair of conditions."""
    rows: list[list[str]] = []
    for r in comparisons.itertuples():
        sig = NA if pd.isna(r.p_t) else ("yes" if r.significant_t else "no")
        diff = num(r.mean_diff, "{:+.2f}") + ("" if pd.isna(r.diff_ci_low) else
                                              f" [{r.diff_ci_low:+.2f}, {r.diff_ci_high:+.2f}]")
        rows.append([str(r.a), str(r.b), diff, num(r.dz, "{:+.2f}"), str(int(r.n_pairs)),
                     num(r.p_t_holm, "{:.3g}"), sig, num(r.p_perm_holm, "{:.3g}"),
                     num(r.p_wilcoxon_holm, "{:.3g}"), num(r.listeners_needed, "{:.0f}"),
                     str(getattr(r, "note", "") or "")])
    return rows


__all__ = [
    "NA",
    "NO_RATINGS_YET",
    "PALETTE",
    "StimulusLink",
    "agreement_rows",
    "cell",
    "clip_rows",
    "comparison_rows",
    "correlation_rows",
    "family_colors",
    "interval",
    "listener_rows",
    "load_results",
    "num",
    "open_existing",
    "stimulus_link",
    "summary_rows",
]
