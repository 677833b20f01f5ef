"""ABX as a test type: the worked example of docs/architecture.md ("Adding a test type").

A trial plays A (the reference), B (the condition) and X (one of the two, drawn per trial);
the listener answers "X is A" (1) or "X is B" (2). A condition nobody can tell from the
reference is answered right about half the time. The export's summary gives, per condition,
how often X was identified and the two-sided binomial test of that against chance.

In the repository this module would be ``mosapp/study/types/abx.py`` (found and registered
there without touching any other file); the tests import it, and unregister it when done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select
from sqlalchemy.orm import Session

from mosapp.study.definition import StudyDefinition
from mosapp.study.export import condition_table, output_folder, ratings_frame, write_csv
from mosapp.study.store import Store, TrialRow
from mosapp.study.types import register_test_type
from mosapp.study.types.base import Playback, Streams, TestType
from mosapp.study.types.five_grade import ListeningSession, enrol_plan


@dataclass(frozen=True)
class AbxTrial:
    """A, B and X as a listener gets them (opaque token, audio, place in the plan)."""

    trial_id: str
    a: np.ndarray = field(repr=False, compare=False)
    b: np.ndarray = field(repr=False, compare=False)
    x: np.ndarray = field(repr=False, compare=False)
    sample_rate: int = 44100
    index: int = 0
    total: int = 0
    is_training: bool = False


class AbxSession(ListeningSession):
    """DCR's sitting (one ``ratings`` row per trial) with ABX's trials and answers 1 (X is A) or 2 (X is B)."""

    score_range = (1, 2)

    def _trial(self, row: Any, files: Mapping[int, str], total: int) -> AbxTrial:
        a = self._engine.audio_for(files[row.reference_stimulus_id])
        b = self._engine.audio_for(files[row.stimulus_id])
        x_file = files[row.stimulus_id] if row.processed_first else files[row.reference_stimulus_id]
        return AbxTrial(row.trial_token, a, b, self._engine.audio_for(x_file), index=int(row.position),
                        total=total, is_training=bool(row.is_training))


SUMMARY_COLUMNS = {
    "condition": "condition (B), in the study file's order",
    "n": "answers",
    "n_correct": "answers that named X right",
    "proportion_correct": "n_correct / n (0.5: B cannot be told from the reference)",
    "p_vs_chance": "two-sided binomial test of n_correct against n / 2",
}


@dataclass
class AbxReport:
    """The summary and the text of an ABX study's report."""

    definition: StudyDefinition
    summary: pd.DataFrame

    def text(self) -> str:
        lines = [f"{self.definition.title}  ({self.definition.name}: ABX)", ""]
        lines += [f"{r.condition}: {r.n_correct} of {r.n} right (p {r.p_vs_chance:.3g})"
                  for r in self.summary.itertuples()]
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        folder = output_folder(out_dir)
        name = self.definition.name
        text = folder / f"{name}-report.txt"
        text.write_text(self.text() + "\n", encoding="utf-8")
        return {"summary": write_csv(self.summary, folder / f"{name}-report-summary.csv"), "text": text}


def summarise(ratings: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Per condition: answers, right answers, their share, the binomial test against chance."""
    rows = []
    for condition in conditions:
        g = ratings[(ratings["condition"] == condition) & ~ratings["is_training"]]
        n, k = len(g), int(g["correct"].sum())
        p = stats.binomtest(k, n).pvalue if n else float("nan")
        rows.append({"condition": condition, "n": n, "n_correct": k, "proportion_correct": k / n if n else np.nan,
                     "p_vs_chance": p})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


class AbxType(TestType):
    name = "abx"
    scale = "ABX"
    score_range = (1, 2)
    labels = ("X is A", "X is B")
    labels_what = "for the answers X is A and X is B"
    instructions = "You will hear A, B and X. X is A or B: say which."
    trial_class = AbxTrial
    session_class = AbxSession
    value_description = "the answer: 1 X is A, 2 X is B"
    rating_columns = {"x_is": "what X was: A or B", "correct": "TRUE when the answer named X right"}
    summary_columns = SUMMARY_COLUMNS

    def enrol(self, s: Session, definition: StudyDefinition, listener_id: int, listener_index: int,
              stimuli: Mapping[tuple[str, str], int], token: Callable[[], str]) -> None:
        enrol_plan(s, definition, listener_id, listener_index, stimuli, token, with_reference=True)
        rng = np.random.default_rng([int(definition.seed), 1950, int(listener_index)])  # ABX: Munson and Gardner
        for row in s.scalars(select(TrialRow).where(TrialRow.listener_id == listener_id).order_by(TrialRow.position)):
            row.processed_first = bool(rng.random() < 0.5)  # here: X is B

    def streams(self, trial: AbxTrial) -> Streams:
        return Streams((trial.a, trial.b, trial.x), ("A", "B", "X"), None, (0, 1, 2))

    def rate(self, session: Any, trial: AbxTrial, score: Any, playback: Playback, response_time_s: float) -> int:
        counts = playback.play_counts
        session.rate(trial, score, play_counts=(counts[2], counts[0] + counts[1]),
                     listening_time_s=float(sum(playback.listened_s)), response_time_s=response_time_s)
        return int(score)

    def finish_ratings(self, frame: pd.DataFrame) -> pd.DataFrame:
        x_is_b = frame["processed_first"].astype(bool)
        frame["x_is"] = np.where(x_is_b, "B", "A")
        frame["correct"] = (frame["value"] == 2) == x_is_b
        return frame

    def export_summary(self, store: Store, definition: StudyDefinition,
                       ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        conditions = condition_table(store, definition)["condition"].tolist()
        return summarise(ratings, conditions), pd.DataFrame(columns=["listener", "screening"])

    def build_report(self, store: Store, definition: StudyDefinition, **options: Any) -> AbxReport:
        conditions = condition_table(store, definition)["condition"].tolist()
        return AbxReport(definition, summarise(ratings_frame(store, definition), conditions))


ABX = register_test_type(AbxType())
