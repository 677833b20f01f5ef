"""Results as tables: the tidy ratings table (one row per rating) and the per-condition summary.

``mosapp study export`` writes ``<study>-ratings.csv``, ``<study>-export-summary.csv`` and
``<study>-export-screening.csv`` (per listener: what the screening found); ``mosapp study
report`` writes its own ``<study>-report-…`` files, so neither overwrites the other. Every
summary records the screening settings it was made with (column ``screening``).

Both are written as CSV that pandas (``pd.read_csv``) and R (``read.csv``, ``readr::read_csv``)
load without cleanup: a header row, comma separators, ``NA`` for missing values, ``TRUE`` /
``FALSE`` for booleans, times in ISO 8601 UTC (``2026-05-10T09:15:02.123456Z``), plain
decimal numbers. The columns are documented in ``studies/README.md`` and in
:data:`RATINGS_COLUMNS` / :data:`SUMMARY_COLUMNS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from mosapp.core.files import atomic_write
from mosapp.core.metrics import STUDY_METRIC_NAMES
from mosapp.study import stats
from mosapp.study.definition import REFERENCE, ScreeningSpec, StudyDefinition
from mosapp.study.errors import StudyError
from mosapp.study.store import (
    ClipRow,
    ConditionRow,
    ItemRatingRow,
    ListenerRow,
    RatingRow,
    SessionRow,
    StimulusRow,
    Store,
    StudyRow,
    TrialItemRow,
    TrialRow,
    metric_value,
)
from mosapp.study.types import get_test_type

#: Exports and reports are as private as the database they come from (0600).
RESULT_MODE = 0o600
#: The stimulus metrics a study stores and exports (the registry's :data:`mosapp.core.metrics.STUDY_METRIC_NAMES`).
METRIC_COLUMNS = STUDY_METRIC_NAMES

#: The tidy table, one row per rating (column → meaning).
RATINGS_COLUMNS: dict[str, str] = {
    "study": "study name",
    "test_type": "the study's test type: dcr, acr, mushra, ccr (or a plug-in's name, mosapp.study.types)",
    "listener": "pseudonymous listener code",
    "listener_position": "enrolment order from 0 (picks the listener's row of the balanced design)",
    "session": "sitting number (unique in the database); a resumed listener starts a new one",
    "session_started_at": "start of the sitting, ISO 8601 UTC",
    "app_version": "mosapp version that recorded the sitting",
    "audio_device": "audio output device the app reported",
    "trial": "position in the listener's plan, from 0 (training trials first)",
    "is_training": "TRUE for training trials (excluded unless asked for)",
    "is_gold": "TRUE for gold (known-answer) trials: scored by the screening, left out of the statistics",
    "gold_expected": "the accepted scores of a gold trial, e.g. 4;5 (NA otherwise)",
    "clip": "clip (excerpt) name",
    "clip_file": "source audio file name",
    "clip_start_s": "excerpt start in the source, seconds",
    "clip_length_s": "excerpt length, seconds",
    "condition": "condition (codec name, or reference for the hidden reference)",
    "is_reference": "TRUE for the hidden reference",
    "value": "the score on the test type's scale: 1..5 (dcr, acr); ratings_columns(test_type) says it per type",
    "rated_at": "when the score was given, ISO 8601 UTC",
    "response_time_s": "seconds from the trial's start to the score",
    "listening_time_s": "seconds of audio played in the trial",
    "plays_sample": "times the sample was played",
    "plays_reference": "times the reference was played (DCR)",
    "nominal_kbps": "the codec's advertised bitrate, kbit/s (NA for reference and unconstrained codecs)",
    # The stimulus's payload_kbps (the database column's name since revision 0006); the CSV keeps its name.
    "bitrate_kbps": "measured payload bitrate of this stimulus, kbit/s (NA for the reference, the lowpass anchors "
                    "and pghi-only: they code no bitrate of their own)",
    "loudness_lufs": "BS.1770 loudness of the stimulus before normalisation, LUFS",
    "gain_db": "gain applied to reach the study's loudness target, dB",
    "mel_distance": "multi-scale mel distance to the excerpt (lower is better; NA for reference)",
    "si_sdr_db": "SI-SDR against the excerpt, dB (higher is better; NA for reference)",
    "spectral_convergence_db": "spectral convergence, dB (lower is better; NA for reference)",
    "visqol": "ViSQOL v3 audio MOS-LQO, 1..5 (NA for reference or when not computed)",
    "low_band_distance_db": "log-spectral distance 20-1000 Hz (4096-point Hann STFT), dB (lower is better; NA for reference)",
    "low_band_correlation": "spectral correlation 20-1000 Hz, -1..1 (higher is better; NA for reference)",
    "high_band_distance_db": "log-spectral distance above 1 kHz, dB (lower is better; NA for reference)",
    "high_band_correlation": "spectral correlation above 1 kHz, -1..1 (higher is better; NA for reference)",
    "screened_out": "TRUE when post-screening dropped this listener (see the report)",
}

#: The per-condition summary (column → meaning).
SUMMARY_COLUMNS: dict[str, str] = {
    "condition": "condition, in the study file's order",
    "is_reference": "TRUE for the hidden reference",
    "scale": "the test type's scale: DMOS (dcr), MOS (acr), MUSHRA; summary_columns(test_type) says it per type",
    "nominal_kbps": "advertised bitrate, kbit/s",
    "bitrate_kbps": "mean measured payload bitrate over the clips, kbit/s (NA for the reference, anchors and "
                    "pghi-only)",
    "n": "ratings",
    "n_listeners": "listeners with ratings",
    "mean": "mean score (MOS or DMOS)",
    "sd": "sample standard deviation (ddof 1)",
    "sem": "standard error of the mean",
    "listener_mean": "mean of the listeners' means (equals mean in a balanced design)",
    "listener_sd": "standard deviation of the listeners' means (ddof 1)",
    "ci_low": "95 % t confidence interval over listener means (the default, listener level), lower end",
    "ci_high": "95 % t confidence interval over listener means, upper end",
    "boot_low": "95 % listener-clustered bootstrap interval, lower end",
    "boot_high": "95 % listener-clustered bootstrap interval, upper end",
    "bca_low": "95 % BCa interval of the same listener-clustered bootstrap, lower end",
    "bca_high": "95 % BCa interval of the same listener-clustered bootstrap, upper end",
    "boot_t_low": "95 % bootstrap-t (studentised) interval of the same listener-clustered bootstrap, lower end",
    "boot_t_high": "95 % bootstrap-t interval, upper end",
    "mixed_estimate": "mixed-model estimate (random listener and clip intercepts, REML)",
    "mixed_df": "Satterthwaite degrees of freedom of the mixed-model estimate",
    "mixed_t_low": "95 % t interval (Satterthwaite df) of the mixed-model estimate, lower end (replaces the Wald "
                   "z interval, mixed_low)",
    "mixed_t_high": "95 % t interval (Satterthwaite df) of the mixed-model estimate, upper end",
    "rating_ci_low": "95 % per-rating t interval (treats ratings as independent: too narrow), lower end",
    "rating_ci_high": "95 % per-rating t interval, upper end",
    "clipped": "the intervals of this row that reached past the scale and were clipped to it (e.g. ci;mixed_t), "
               "empty when none",
    "mel_distance": "mean over the clips",
    "si_sdr_db": "mean over the clips",
    "spectral_convergence_db": "mean over the clips",
    "visqol": "mean over the clips",
    "low_band_distance_db": "mean over the clips",
    "low_band_correlation": "mean over the clips",
    "high_band_distance_db": "mean over the clips",
    "high_band_correlation": "mean over the clips",
    "screening": "the post-screening settings and what they did (rule off, or the rule, its parameters and how "
                 "many listeners it dropped)",
}


def ratings_columns(test_type: str) -> dict[str, str]:
    """The ratings CSV's columns as a study of ``test_type`` has them (column → meaning): :data:`RATINGS_COLUMNS`
    with ``value`` on the type's scale, then the type's own columns (MUSHRA's and CCR's ``slot`` …)."""
    kind = get_test_type(test_type)
    return {**RATINGS_COLUMNS, "value": kind.value_description, **kind.rating_columns}


def summary_columns(test_type: str) -> dict[str, str]:
    """The export summary's columns as a study of ``test_type`` has them (column → meaning)."""
    kind = get_test_type(test_type)
    if kind.summary_columns:  # a summary of the type's own (CCR's CMOS table)
        return dict(kind.summary_columns)
    return {**SUMMARY_COLUMNS, "scale": kind.scale, "mean": f"mean score ({kind.scale})"}


#: Interval columns of the summary, clipped to the scale (name in ``clipped`` → (low, high)).
CLIPPED_INTERVALS: dict[str, tuple[str, str]] = {
    "ci": ("ci_low", "ci_high"), "boot": ("boot_low", "boot_high"), "bca": ("bca_low", "bca_high"),
    "boot_t": ("boot_t_low", "boot_t_high"),
    "mixed_t": ("mixed_t_low", "mixed_t_high"), "rating_ci": ("rating_ci_low", "rating_ci_high"),
}


def has_bitrate(condition: str) -> bool:
    """False for the hidden reference, the ``lowpass-*`` anchors and ``pghi-only``: they code no bitrate of their
    own (an anchor's stored payload is compressed PCM), so tables give them none and plots draw them as lines."""
    name = str(condition)
    return not (name == REFERENCE or name == "pghi-only" or name.startswith("lowpass-"))


def clip_to_scale(frame: pd.DataFrame, low: float, high: float,
                  intervals: dict[str, tuple[str, str]] = CLIPPED_INTERVALS) -> pd.DataFrame:
    """``frame`` with each interval of ``intervals`` clipped to ``[low, high]`` and a ``clipped`` column naming,
    per row, the intervals that were (``;``-separated, empty when none)."""
    out = frame.copy()
    marks: list[list[str]] = [[] for _ in range(len(out))]
    for name, (lo, hi) in intervals.items():
        if lo not in out.columns:
            continue
        for col in (lo, hi):
            values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=np.float64)
            outside = (values < low) | (values > high)
            for i in np.flatnonzero(outside):
                if name not in marks[i]:
                    marks[i].append(name)
            out[col] = np.clip(values, low, high)
    out["clipped"] = [";".join(m) for m in marks]
    return out


def _iso(series: pd.Series) -> pd.Series:
    return series.map(lambda t: None if t is None or pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _study_id(s: Session, name: str, store: Store) -> int:
    study = s.scalars(select(StudyRow).where(StudyRow.name == name)).one_or_none()
    if study is None:
        raise StudyError(f'The study "{name}" is not in {store.label}; run `mosapp study prepare` first.')
    return study.id


def ratings_frame(store: Store, definition: StudyDefinition, *, include_training: bool = False) -> pd.DataFrame:
    """Every rating of the study as a tidy frame with :data:`RATINGS_COLUMNS` (``screened_out`` all False).

    Rows are ordered by listener (enrolment) and trial. Times are pandas Timestamps (UTC, naive).
    MUSHRA and CCR studies: one row per stimulus rating, ordered by slot within a trial, then
    :data:`mosapp.study.items.ITEM_COLUMNS`; ``value`` is the score as given (MUSHRA 0..100,
    CCR -3..+3: the second sample against the first) and ``plays_reference`` counts the open
    reference (MUSHRA) or the reference of the pair (CCR).
    """
    kind = definition.kind
    with store.read() as s:
        result = s.execute(_ratings_query(_study_id(s, definition.name, store), kind.item_ratings, include_training))
        frame = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
    if kind.item_ratings:  # no gold trials in item ratings (MUSHRA, CCR)
        frame["is_gold"] = False
        frame["gold_expected"] = None
    else:
        frame["is_gold"] = frame["gold_expected"].notna()
        frame["gold_expected"] = frame["gold_expected"].map(lambda g: None if g is None or pd.isna(g)
                                                            else g.replace(",", ";"))
    frame.insert(0, "study", definition.name)
    frame.insert(1, "test_type", definition.test_type)
    frame["clip_file"] = frame["clip_file"].map(lambda p: Path(p).name)
    frame["screened_out"] = False
    for col in ("is_training", "is_gold", "is_reference", "screened_out"):
        frame[col] = frame[col].astype(bool)
    for col in ("listener_position", "session", "trial", "value", "plays_sample", "plays_reference",
                *(("slot",) if kind.item_ratings else ())):
        frame[col] = frame[col].astype(np.int64)
    for col in ("nominal_kbps", "bitrate_kbps", *METRIC_COLUMNS):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    frame["bitrate_kbps"] = frame["bitrate_kbps"].where(frame["condition"].map(has_bitrate))
    frame = kind.finish_ratings(frame)
    return frame[[*RATINGS_COLUMNS, *kind.rating_columns]]


def _ratings_query(study_id: int, items: bool, include_training: bool) -> Executable:
    """The ratings of a study, each column labelled with its name in :data:`RATINGS_COLUMNS` (``items``: the
    scores are item ratings, one per stimulus of a trial, with its ``slot`` and the trial's ``processed_first``)."""
    score = ItemRatingRow if items else RatingRow
    q = select(
        ListenerRow.code.label("listener"), ListenerRow.position.label("listener_position"),
        SessionRow.id.label("session"), SessionRow.started_at.label("session_started_at"),
        SessionRow.app_version.label("app_version"), SessionRow.audio_device.label("audio_device"),
        TrialRow.position.label("trial"), TrialRow.is_training.label("is_training"),
        TrialRow.gold_expected.label("gold_expected"),
        ClipRow.name.label("clip"), ClipRow.source_file.label("clip_file"),
        ClipRow.start_s.label("clip_start_s"), ClipRow.length_s.label("clip_length_s"),
        ConditionRow.name.label("condition"), ConditionRow.is_reference.label("is_reference"),
        score.value.label("value"), score.given_at.label("rated_at"), score.response_time_s.label("response_time_s"),
        score.listening_time_s.label("listening_time_s"), score.plays_sample.label("plays_sample"),
        score.plays_reference.label("plays_reference"), ConditionRow.nominal_kbps.label("nominal_kbps"),
        # The stimulus's payload bitrate (the database column's name since revision 0006); the CSV keeps its name.
        StimulusRow.payload_kbps.label("bitrate_kbps"),
        StimulusRow.loudness_lufs.label("loudness_lufs"), StimulusRow.gain_db.label("gain_db"),
        *(metric_value(m).label(m) for m in METRIC_COLUMNS),
        TrialRow.processed_first.label("processed_first"),  # CCR's order, or a type's own bit of the trial
        *((TrialItemRow.slot.label("slot"),) if items else ()),
    ).select_from(score)
    if items:  # a trial's items are what was rated, each its own stimulus
        q = (q.join(TrialItemRow, ItemRatingRow.item_id == TrialItemRow.id)
             .join(TrialRow, TrialItemRow.trial_id == TrialRow.id))
        stimulus_id = TrialItemRow.stimulus_id
    else:
        q = q.join(TrialRow, RatingRow.trial_id == TrialRow.id)
        stimulus_id = TrialRow.stimulus_id
    q = (
        q.join(SessionRow, score.session_id == SessionRow.id)
        .join(ListenerRow, TrialRow.listener_id == ListenerRow.id)
        .join(StimulusRow, stimulus_id == StimulusRow.id)
        .join(ClipRow, StimulusRow.clip_id == ClipRow.id)
        .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)
        .where(ListenerRow.study_id == study_id)
        .order_by(ListenerRow.position, TrialRow.position, *((TrialItemRow.slot,) if items else ()))
    )
    return q if include_training else q.where(TrialRow.is_training.is_(False))


def condition_table(store: Store, definition: StudyDefinition) -> pd.DataFrame:
    """One row per condition in the plan (study order): is_reference, nominal_kbps, and the
    means over clips of the measured bitrate and each metric."""
    with store.read() as s:
        study_id = _study_id(s, definition.name, store)
        result = s.execute(
            select(ConditionRow.name.label("condition"), ConditionRow.is_reference.label("is_reference"),
                   ConditionRow.nominal_kbps.label("nominal_kbps"), ConditionRow.position.label("position"),
                   StimulusRow.payload_kbps.label("bitrate_kbps"), *(metric_value(m).label(m) for m in METRIC_COLUMNS))
            .outerjoin(StimulusRow, StimulusRow.condition_id == ConditionRow.id)
            .where(ConditionRow.study_id == study_id, ConditionRow.in_plan.is_(True))
        )
        raw = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
    for col in ("nominal_kbps", "bitrate_kbps", *METRIC_COLUMNS):
        raw[col] = pd.to_numeric(raw[col], errors="coerce").astype(np.float64)
    table = (raw.groupby(["condition", "is_reference", "position"], dropna=False, sort=False)
             [["nominal_kbps", "bitrate_kbps", *METRIC_COLUMNS]].mean().reset_index()
             .sort_values("position").drop(columns="position").reset_index(drop=True))
    table["is_reference"] = table["is_reference"].astype(bool)
    table["bitrate_kbps"] = table["bitrate_kbps"].where(table["condition"].map(has_bitrate))
    return table


class ScreeningError(StudyError):
    """Post-screening dropped every listener: there is nothing left to summarise."""


@dataclass
class Screening:
    """The post-screening rule applied to a study's ratings and what it did.

    Attributes:
        spec: the settings (the study file's ``screening``, with any command-line overrides).
        applied: False when the rule is off (or there was nothing to screen).
        kept, dropped, flagged: listener codes.
        table: per listener (:data:`mosapp.study.stats.SCREENING_COLUMNS`).
    """

    spec: ScreeningSpec
    applied: bool
    kept: list[str]
    dropped: list[str]
    table: pd.DataFrame
    flagged: list[str] = field(default_factory=list)

    @property
    def min_score(self) -> int:
        return self.spec.min_score

    @property
    def max_fraction(self) -> float:
        return self.spec.max_fraction

    @property
    def reference_condition(self) -> str | None:
        return REFERENCE if self.applied else None

    def describe(self) -> str:
        """The settings and the outcome in one line (the summaries' ``screening`` column)."""
        if not self.applied:
            return self.spec.describe() if self.spec.rule != "off" else "rule off: every listener kept"
        n = len(self.kept) + len(self.dropped)
        return (f"{self.spec.describe()}: {len(self.dropped)} of {n} listeners dropped, "
                f"{len(self.flagged)} flagged")


def check_screening_units(definition: StudyDefinition, *, min_score: float | None = None,
                          anchor_max_score: float | None = None) -> None:
    """Refuse, in one sentence, a screening threshold outside the study's scale or in another test type's units
    (:meth:`mosapp.study.types.base.TestType.check_screening_threshold`).

    DCR/ACR thresholds are scores 1..5; MUSHRA's are 0..100, and a MUSHRA threshold of 5 or
    less is refused as a five-grade score given by mistake (it would keep every listener); a
    CCR study has no screening rule.
    """
    for flag, value in (("--min-score", min_score), ("--anchor-max-score", anchor_max_score)):
        if value is not None:
            definition.kind.check_screening_threshold(flag, value)


def screening_spec(definition: StudyDefinition, *, enabled: bool = True, min_score: int | None = None,
                   max_fraction: float | None = None, min_reference_trials: int | None = None,
                   anchor_max_score: int | None = None) -> ScreeningSpec:
    """The study's screening settings with the given overrides (``enabled=False``: rule off), each in the
    study's units (:func:`check_screening_units`)."""
    spec = definition.screening
    if not enabled:
        return replace(spec, rule="off")
    check_screening_units(definition, min_score=min_score, anchor_max_score=anchor_max_score)
    return replace(spec, min_score=spec.min_score if min_score is None else min_score,
                   max_fraction=spec.max_fraction if max_fraction is None else max_fraction,
                   min_reference_trials=(spec.min_reference_trials if min_reference_trials is None
                                         else min_reference_trials),
                   anchor_max_score=spec.anchor_max_score if anchor_max_score is None else anchor_max_score)


def screen(ratings: pd.DataFrame, definition: StudyDefinition, *, enabled: bool = True, min_score: int | None = None,
           max_fraction: float | None = None, min_reference_trials: int | None = None,
           anchor_max_score: int | None = None, spec: ScreeningSpec | None = None) -> Screening:
    """Post-screen listeners by the study's rule (see :func:`mosapp.study.stats.screen_listeners`).

    ``ratings`` is :func:`ratings_frame`'s table; training rows are ignored, gold rows are
    scored. Raises :class:`ScreeningError` when the rule drops every listener.
    """
    with stats.score_range(*definition.score_range):
        return _screen(ratings, definition, enabled=enabled, min_score=min_score, max_fraction=max_fraction,
                       min_reference_trials=min_reference_trials, anchor_max_score=anchor_max_score, spec=spec)


def _screen(ratings: pd.DataFrame, definition: StudyDefinition, *, enabled: bool, min_score: int | None,
            max_fraction: float | None, min_reference_trials: int | None, anchor_max_score: int | None,
            spec: ScreeningSpec | None) -> Screening:
    spec = spec or screening_spec(definition, enabled=enabled, min_score=min_score, max_fraction=max_fraction,
                                  min_reference_trials=min_reference_trials, anchor_max_score=anchor_max_score)
    data = ratings[~ratings["is_training"]] if "is_training" in ratings else ratings
    gold_rows = data[data["is_gold"]] if "is_gold" in data else data.iloc[:0]
    plain = data[~data["is_gold"]] if "is_gold" in data else data
    listeners = sorted(data["listener"].unique().tolist()) if len(data) else []
    if spec.rule == "off" or not definition.has_hidden_reference or not len(data):
        return Screening(spec, False, listeners, [], pd.DataFrame(columns=list(stats.SCREENING_COLUMNS)))
    gold = None
    if len(gold_rows):
        gold = pd.DataFrame({"listener": gold_rows["listener"], "value": gold_rows["value"],
                             "expected": gold_rows["gold_expected"].map(lambda g: tuple(int(v) for v in g.split(";")))})
    result = stats.screen_listeners(
        plain[["listener", "condition", "clip", "value"]], REFERENCE, min_score=spec.min_score,
        max_fraction=spec.max_fraction, min_reference_trials=spec.min_reference_trials,
        anchor_condition=spec.anchor if spec.rule == "bs1534" else None, anchor_max_score=spec.anchor_max_score,
        gold=gold, gold_max_failures=spec.gold_max_failures, per_item=spec.rule == "bs1534",
    )
    out = Screening(spec, True, list(result.kept), list(result.dropped), result.table, list(result.flagged))
    if out.dropped and not out.kept:
        raise ScreeningError(
            f'Post-screening dropped all {len(out.dropped)} listeners of "{definition.name}" ({spec.describe()}), '
            f"so there is nothing left to summarise; check the ratings and the rule, or run without post-screening "
            f"(--no-screening)."
        )
    return out


def statistics_input(ratings: pd.DataFrame, screening: Screening) -> pd.DataFrame:
    """The ratings the statistics use: no training, no gold trials, no dropped listener."""
    data = ratings
    if "is_training" in data:
        data = data[~data["is_training"]]
    if "is_gold" in data:
        data = data[~data["is_gold"]]
    if screening.dropped:
        data = data[~data["listener"].isin(screening.dropped)]
    return data[["listener", "condition", "clip", "value"]]


def summary_frame(ratings: pd.DataFrame, conditions: pd.DataFrame, definition: StudyDefinition,
                  screening: Screening, *, bootstrap: int = 2000, seed: int = 0,
                  mixed: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per condition with :data:`SUMMARY_COLUMNS`, from the kept listeners' ordinary ratings.

    Every interval is clipped to the study's scale (MUSHRA 0..100, 1..5; a t interval of a
    mean near the top reaches past it); ``clipped`` names the intervals that were.
    ``mixed``: :func:`mosapp.study.stats.mixed_model` of the same ratings (computed when None).
    """
    data = statistics_input(ratings, screening)
    with stats.score_range(*definition.score_range):
        summary = stats.condition_summary(data, bootstrap=bootstrap, seed=seed)
        if mixed is None:
            mixed = stats.mixed_model(data)
    mixed = mixed[["condition", "estimate", "df", "t_low", "t_high"]].rename(
        columns={"estimate": "mixed_estimate", "df": "mixed_df", "t_low": "mixed_t_low", "t_high": "mixed_t_high"})
    out = conditions.merge(summary, on="condition", how="left").merge(mixed, on="condition", how="left")
    out = clip_to_scale(out, *definition.score_range)
    out["n"] = out["n"].fillna(0).astype(np.int64)
    out["n_listeners"] = out["n_listeners"].fillna(0).astype(np.int64)
    out["scale"] = definition.scale
    out["screening"] = screening.describe()
    return out[list(SUMMARY_COLUMNS)]


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as analysis-ready CSV (see the module docstring), atomically."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "TRUE", False: "FALSE"})
        elif col.endswith("_at"):
            out[col] = _iso(out[col])
    p = Path(path)
    if not p.parent.is_dir():
        raise StudyError(f"Cannot write {p}: the folder {p.parent} does not exist.")
    text = out.to_csv(index=False, na_rep="NA", float_format="%.10g", lineterminator="\n").encode("utf-8")
    atomic_write(p, lambda fh: fh.write(text), suffix=".csv", error=StudyError, mode=RESULT_MODE)
    return p


def output_folder(out_dir: str | os.PathLike[str]) -> Path:
    """``out_dir`` as a folder that exists (created with its parents), or a one-sentence :class:`StudyError`."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"The output folder {folder} cannot be created ({exc.strerror or exc}).") from None
    return folder


def export_study(store: Store, definition: StudyDefinition, out_dir: str | os.PathLike[str], *,
                 include_training: bool = False, screening: bool = True, min_score: int | None = None,
                 max_fraction: float | None = None, min_reference_trials: int | None = None,
                 anchor_max_score: int | None = None, bootstrap: int = 2000) -> tuple[Path, Path]:
    """Write ``<study>-ratings.csv``, ``<study>-export-summary.csv`` and ``<study>-export-screening.csv``.

    Returns the ratings and summary paths. Raises :class:`ScreeningError` when screening
    drops every listener (nothing is written then).
    """
    folder = output_folder(out_dir)
    ratings = ratings_frame(store, definition, include_training=include_training)
    own = definition.kind.export_summary(store, definition, ratings)  # a test type's own summary (CCR's CMOS)
    if own is not None:
        summary, table = own
    else:
        scr = screen(ratings, definition, enabled=screening, min_score=min_score, max_fraction=max_fraction,
                     min_reference_trials=min_reference_trials, anchor_max_score=anchor_max_score)
        ratings["screened_out"] = ratings["listener"].isin(scr.dropped)
        summary = summary_frame(ratings, condition_table(store, definition), definition, scr, bootstrap=bootstrap)
        table = scr.table.copy() if len(scr.table) else pd.DataFrame(columns=list(stats.SCREENING_COLUMNS))
        table.insert(1, "screening", scr.describe())
    name = definition.name
    out = (write_csv(ratings, folder / f"{name}-ratings.csv"),
           write_csv(summary, folder / f"{name}-export-summary.csv"))
    write_csv(table, folder / f"{name}-export-screening.csv")
    return out


__all__ = [
    "METRIC_COLUMNS", "RATINGS_COLUMNS", "SUMMARY_COLUMNS", "Screening", "ScreeningError", "condition_table",
    "check_screening_units", "clip_to_scale", "export_study", "has_bitrate", "output_folder", "ratings_columns",
    "ratings_frame", "screen", "screening_spec", "statistics_input", "summary_columns", "summary_frame", "write_csv",
]
