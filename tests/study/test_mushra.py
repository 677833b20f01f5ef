"""MUSHRA (ITU-R BS.1534): the study fields, the screens, one transaction per screen, the CSV, and the
BS.1534 post-screening checked against a hand computation."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mosapp.study import load_study
from mosapp.study.definition import parse_study
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.types.mushra import MushraSession, MushraTrial, band_label, screen_plan
from tests.study.conftest import DEMO_CLIP, copy_study, prepared, study_toml

CONDITIONS = ["reference", "pghi-only", "lowpass-7k", "lowpass-3.5k"]
REPO = Path(__file__).resolve().parents[2]


def conditions_of(engine: StudyEngine) -> dict[str, str]:
    """item token -> condition (what only the database knows)."""
    from sqlalchemy import select

    from mosapp.study.store import ConditionRow, StimulusRow, TrialItemRow

    with engine.store.read() as s:
        return dict(s.execute(select(TrialItemRow.token, ConditionRow.name)
                              .join(StimulusRow, TrialItemRow.stimulus_id == StimulusRow.id)
                              .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)).all())


@pytest.fixture(scope="module")
def mushra_template(tmp_path_factory) -> Path:
    return prepared(tmp_path_factory.mktemp("mushra-template"), "m", test_type="mushra", conditions=CONDITIONS,
                    metrics=["mel_distance"])


@pytest.fixture
def mushra(mushra_template, tmp_path) -> Path:
    return copy_study(mushra_template, tmp_path)


# ------------------------------------------------------------------------------ the study file
def test_mushra_fields_and_defaults(tmp_path):
    d = parse_study(study_toml(test_type="mushra", conditions=CONDITIONS), source=tmp_path / "m.toml")
    assert d.scale == "MUSHRA" and d.score_range == (0, 100)
    assert d.labels == ("Bad", "Poor", "Fair", "Good", "Excellent")
    assert d.trials_per_listener == 3  # screens: clips x repetitions
    s = d.screening
    assert (s.rule, s.min_score, s.anchor, s.anchor_max_score, s.max_fraction, s.min_reference_trials) == (
        "bs1534", 90, "lowpass-7k", 90, 0.15, 3)
    assert band_label(0, d.labels) == "Bad" and band_label(79, d.labels) == "Good"
    assert band_label(80, d.labels) == "Excellent" and band_label(100, d.labels) == "Excellent"


@pytest.mark.parametrize("conditions, extra, message", [
    (["pghi-only", "lowpass-7k"], "", 'has no "reference"'),
    (CONDITIONS, "[screening]\nmin_score = 101", "from 0 to 100"),
    (CONDITIONS, 'labels = ["a", "b"]', "give exactly 5"),
    (CONDITIONS, "trials_per_listener = 4", "at most 3 screens"),
])
def test_bad_mushra_fields_are_one_sentence(tmp_path, conditions, extra, message):
    with pytest.raises(StudyError, match=message):
        parse_study(study_toml(test_type="mushra", conditions=conditions, extra=extra), source=tmp_path / "m.toml")


def test_mushra_training_conditions_and_gold_are_refused(tmp_path):
    text = study_toml(test_type="mushra", conditions=CONDITIONS).replace(
        "[training]\ntrials = 1", '[training]\ntrials = 1\nconditions = ["reference"]')
    with pytest.raises(StudyError, match="every MUSHRA screen"):
        parse_study(text, source=tmp_path / "m.toml")
    gold = study_toml(test_type="mushra", conditions=CONDITIONS) + '[[gold]]\nclip = "pluck@0s"\nexpected = [5]\n'
    with pytest.raises(StudyError, match="gold"):
        parse_study(gold, source=tmp_path / "m.toml")


def test_too_many_conditions_for_one_screen(tmp_path):
    names = ["reference"] + [f"opus-{k}" for k in (6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128)]
    with pytest.raises(StudyError, match="at most 12"):
        parse_study(study_toml(test_type="mushra", conditions=names), source=tmp_path / "m.toml", check_codecs=False)


# ------------------------------------------------------------------------------ screens
def test_every_screen_has_every_condition_in_a_random_order_per_screen_and_listener(tmp_path):
    d = parse_study(study_toml(test_type="mushra", conditions=CONDITIONS, training=1), source=tmp_path / "m.toml")
    orders = []
    for listener in range(6):
        plan = screen_plan(d, listener)
        assert [t for _, t, _ in plan] == [True, False, False, False]
        assert sorted(c for c, t, _ in plan if not t) == sorted(c.name for c in d.plan_clips)
        for _, _, conditions in plan:
            assert sorted(conditions) == sorted(CONDITIONS)
            orders.append(tuple(conditions))
    assert len(set(orders)) > len(orders) // 2  # shuffled afresh, not one fixed order
    assert screen_plan(d, 2) == screen_plan(d, 2)  # seeded


def test_a_scripted_listener_rates_every_screen_in_one_transaction_each(mushra):
    engine = StudyEngine.open(mushra)
    scores = {"reference": 100, "pghi-only": 75, "lowpass-7k": 50, "lowpass-3.5k": 20}
    with engine.start_or_resume("M01") as session:
        truth = conditions_of(engine)
        assert isinstance(session, MushraSession)
        screens = 0
        while (trial := session.next_trial()) is not None:
            assert isinstance(trial, MushraTrial)
            assert len(trial.items) == len(CONDITIONS)
            # Blind: tokens only; the hidden reference is its own buffer, equal in sound to the open one.
            hidden = next(i for i in trial.items if truth[i.item_id] == "reference")
            assert hidden.audio is not trial.reference and not np.shares_memory(hidden.audio, trial.reference)
            np.testing.assert_array_equal(hidden.audio, trial.reference)
            assert not any(c in repr(trial) for c in ("pghi", "lowpass", "kbps", ".wav"))
            values = [scores[truth[i.item_id]] for i in trial.items]
            with pytest.raises(StudyError, match="0 to 100"):
                session.rate(trial, values[:-1] + [101])
            with pytest.raises(StudyError, match="one score"):
                session.rate(trial, values[:-1])
            assert session.next_trial().trial_id == trial.trial_id  # nothing of the screen was saved
            session.rate(trial, values, plays=[1] * len(values), reference_plays=2,
                         listening_time_s=[1.0] * len(values), response_time_s=12.5)
            with pytest.raises(StudyError, match="already rated"):
                session.rate(trial, values)
            screens += 1
        assert screens == 4 and session.progress.finished
    con = sqlite3.connect(Path(engine.definition.database_url.removeprefix("sqlite:///")))
    assert con.execute("select count(*) from item_ratings").fetchone()[0] == 4 * len(CONDITIONS)
    # One commit per screen: every item of a screen carries the same time.
    assert con.execute("select count(distinct given_at) from item_ratings").fetchone()[0] == 4
    assert con.execute("select count(*) from ratings").fetchone()[0] == 0
    progress = engine.listener_progress()
    assert [(p.code, p.rated, p.total, p.training_rated) for p in progress] == [("M01", 3, 3, 1)]
    engine.close()


def test_the_csv_has_one_row_per_stimulus_rating_and_the_report_a_mushra_plot(mushra, tmp_path):
    from mosapp.study.export import export_study
    from mosapp.study.report import build_report, write_report

    engine = StudyEngine.open(mushra)
    plan = {"A": {"reference": 100, "pghi-only": 70, "lowpass-7k": 50, "lowpass-3.5k": 20},
            "B": {"reference": 95, "pghi-only": 60, "lowpass-7k": 40, "lowpass-3.5k": 10},
            "C": {"reference": 40, "pghi-only": 60, "lowpass-7k": 95, "lowpass-3.5k": 10}}  # fails screening
    for code, scores in plan.items():
        with engine.start_or_resume(code) as session:
            truth = conditions_of(engine)
            while (trial := session.next_trial()) is not None:
                session.rate(trial, [scores[truth[i.item_id]] for i in trial.items], plays=[1] * len(trial.items))
    ratings_csv, summary_csv = export_study(engine.store, engine.definition, tmp_path / "out")
    ratings = pd.read_csv(ratings_csv)
    assert len(ratings) == 3 * 3 * len(CONDITIONS)  # listeners x screens x stimuli (training left out)
    assert set(ratings["test_type"]) == {"mushra"}
    assert sorted(ratings["slot"].unique()) == list(range(len(CONDITIONS)))
    assert ratings.groupby(["listener", "trial"]).size().eq(len(CONDITIONS)).all()
    for code, scores in plan.items():
        mine = ratings[ratings["listener"] == code]
        assert (mine["value"] == mine["condition"].map(scores)).all()
    assert ratings.loc[ratings["listener"] == "C", "screened_out"].all()
    assert not ratings.loc[ratings["listener"] != "C", "screened_out"].any()
    summary = pd.read_csv(summary_csv).set_index("condition")
    assert summary.loc["pghi-only", "mean"] == pytest.approx(65.0)  # A and B only
    assert summary.loc["reference", "mean"] == pytest.approx(97.5)
    lo, hi = summary.loc["pghi-only", ["ci_low", "ci_high"]]
    from scipy import stats as st
    half = st.t.ppf(0.975, 1) * np.std([70, 60], ddof=1) / np.sqrt(2)  # over the two listener means
    assert (lo, hi) == pytest.approx((65 - half, 100.0))  # 65 + 63.5 reaches past the scale: clipped, and said
    assert "ci" in summary.loc["pghi-only", "clipped"].split(";")
    assert pd.isna(summary.loc["reference", "bitrate_kbps"]) and pd.isna(summary.loc["lowpass-7k", "bitrate_kbps"])
    assert summary["scale"].eq("MUSHRA").all()
    report = build_report(engine.store, engine.definition)
    files = write_report(report, tmp_path / "report")
    assert files["plot"].name == "m-report-mushra-vs-kbps.png" and files["plot"].stat().st_size > 10_000
    assert "MUSHRA" in report.text() and report.screening.dropped == ["C"]
    engine.close()


# ------------------------------------------------------------------------------ screening by hand
def _frame(rows):
    return pd.DataFrame(rows, columns=["listener", "condition", "clip", "value"])


def test_bs1534_screening_against_a_hand_computation(tmp_path):
    """Seven screens per listener; 15 % of 7 is 1.05, so one bad screen is allowed and two are not.

    By hand: A has the hidden reference below 90 once (85: 1/7 = 14.3 % <= 15 %): kept.
    B twice (80, 85: 2/7 = 28.6 %): dropped. C has the mid anchor above 90 once (95): kept.
    D twice (95, 92): dropped. E has the reference at exactly 90 twice and the anchor at exactly
    90 twice: neither is "below 90" or "above 90": kept. F: only 2 screens (below the minimum of
    3): kept and flagged although its reference is at 10 on both.
    """
    from mosapp.study.export import screen

    d = parse_study(study_toml(test_type="mushra", conditions=CONDITIONS), source=tmp_path / "m.toml")
    refs = {"A": [100, 95, 85, 100, 100, 100, 100], "B": [100, 80, 85, 100, 100, 100, 100],
            "C": [100] * 7, "D": [100] * 7, "E": [90, 90, 100, 100, 100, 100, 100], "F": [10, 10]}
    anchors = {"A": [50] * 7, "B": [50] * 7, "C": [95, 50, 40, 30, 20, 40, 30], "D": [95, 92, 40, 30, 20, 40, 30],
               "E": [90, 90, 50, 50, 50, 50, 50], "F": [50, 50]}
    rows = []
    for who in refs:
        for k, (r, a) in enumerate(zip(refs[who], anchors[who])):
            rows += [(who, "reference", f"c{k}", r), (who, "lowpass-7k", f"c{k}", a),
                     (who, "pghi-only", f"c{k}", 60 + k), (who, "lowpass-3.5k", f"c{k}", 15)]
    frame = _frame(rows)
    frame["is_training"] = False
    frame["is_gold"] = False
    result = screen(frame, d)
    assert result.applied
    assert sorted(result.dropped) == ["B", "D"]
    assert sorted(result.kept) == ["A", "C", "E", "F"]
    t = result.table.set_index("listener")
    assert t.loc["A", "n_below"] == 1 and t.loc["A", "fraction_below"] == pytest.approx(1 / 7)
    assert t.loc["B", "n_below"] == 2 and t.loc["B", "fraction_below"] == pytest.approx(2 / 7)
    assert t.loc["D", "n_anchor_high"] == 2 and t.loc["E", "n_anchor_high"] == 0 and t.loc["E", "n_below"] == 0
    assert "F" in result.flagged and "fewer than the 3" in t.loc["F", "reason"]
    assert "90" in t.loc["B", "reason"] and "lowpass-7k" in t.loc["D", "reason"]


def test_shipped_mushra_demo_parses_with_the_bs1534_rule():
    d = load_study(REPO / "studies" / "demo-mushra.toml")
    assert d.test_type == "mushra" and "lowpass-3.5k" in d.conditions and "lowpass-7k" in d.conditions
    assert d.screening.rule == "bs1534" and d.screening.anchor == "lowpass-7k"
    assert all(c.path == DEMO_CLIP for c in d.clips) and all(c.length_s <= 4 for c in d.clips)


# ------------------------------------------------------------------------------ screening units


def _fixture_copy(tmp_path: Path) -> Path:
    """The MUSHRA fixture database and study file in a folder of their own (see tests/fixtures/study/README.md)."""
    import shutil

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    (tmp_path / "sgc").mkdir()
    shutil.copy(fixtures / "sgc" / "source.flac", tmp_path / "sgc" / "source.flac")
    (tmp_path / "study").mkdir()
    for name in ("mushra.toml", "mushra.sqlite", "acr.toml", "acr.sqlite", "ccr.toml", "ccr.sqlite"):
        shutil.copy(fixtures / "study" / name, tmp_path / "study" / name)
    return tmp_path / "study"


def test_screening_thresholds_are_taken_in_each_test_types_units(tmp_path, capsys):
    from mosapp.cli.main import main
    from mosapp.study import load_study
    from mosapp.study.export import check_screening_units

    folder = _fixture_copy(tmp_path)
    mushra_def, acr_def, ccr_def = (load_study(folder / f"{n}.toml", check_codecs=False) for n in ("mushra", "acr", "ccr"))
    check_screening_units(mushra_def, min_score=85, anchor_max_score=80)
    check_screening_units(acr_def, min_score=3)
    with pytest.raises(StudyError, match="five-grade score; MUSHRA scores run from 0 to 100"):
        check_screening_units(mushra_def, min_score=5)
    with pytest.raises(StudyError, match="--min-score 85 is not accepted for a ACR study; give a score from 1 to 5"):
        check_screening_units(acr_def, min_score=85)
    with pytest.raises(StudyError, match="CCR has no post-screening rule"):
        check_screening_units(ccr_def, min_score=2)
    with pytest.raises(StudyError, match="only MUSHRA"):
        check_screening_units(acr_def, anchor_max_score=4)
    # From the command line: `study report --min-score 85` on a MUSHRA study is taken, in its units.
    capsys.readouterr()
    assert main(["study", "report", str(folder / "mushra.toml"), "--min-score", "85", "--anchor-max-score", "80",
                 "--out", str(tmp_path / "out"), "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "min_score 85" in out and "anchor_max_score 80" in out
    assert main(["study", "report", str(folder / "mushra.toml"), "--min-score", "5", "--out",
                 str(tmp_path / "out")]) != 0
    assert "five-grade score" in capsys.readouterr().err


def test_a_mushra_study_without_both_anchors_is_warned_about(tmp_path):
    from mosapp.study.report import study_warnings

    full = parse_study(study_toml(test_type="mushra", conditions=["reference", "pghi-only", "lowpass-7k",
                                                                  "lowpass-3.5k"]), source=tmp_path / "a.toml")
    assert study_warnings(full) == []
    lacking = parse_study(study_toml(test_type="mushra", conditions=["reference", "pghi-only", "lowpass-7k"]),
                          source=tmp_path / "b.toml")
    (line,) = study_warnings(lacking)
    assert "lacks the low anchor (3.5 kHz) 'lowpass-3.5k'" in line and "BS.1534-3 needs both" in line
    neither = parse_study(study_toml(test_type="mushra", conditions=["reference", "pghi-only"]),
                          source=tmp_path / "c.toml")
    assert "mid-range anchor (7 kHz) 'lowpass-7k'" in study_warnings(neither)[0]
    dcr = parse_study(study_toml(conditions=["reference", "pghi-only"]), source=tmp_path / "d.toml")
    assert study_warnings(dcr) == []


def test_a_study_with_nine_kept_listeners_reports_the_reference_against_the_3_5k_anchor(mushra):
    """End to end (engine, store, screening, report): 11 listeners rate the 3 screens; one rates the hidden
    reference low, one the mid-range anchor high (both dropped by BS.1534-3, counting items), 9 are kept. The
    report's paired comparisons find the hidden reference against the 3.5 kHz anchor."""
    from mosapp.study.report import build_report

    rng = np.random.default_rng(2024)
    true = {"reference": 97, "pghi-only": 66, "lowpass-7k": 45, "lowpass-3.5k": 20}
    engine = StudyEngine.open(mushra)
    for i in range(11):
        bias = rng.normal(0, 5)
        with engine.start_or_resume(f"P{i:02d}") as session:
            truth = conditions_of(engine)
            while (trial := session.next_trial()) is not None:
                scores = []
                for item in trial.items:
                    cond = truth[item.item_id]
                    v = 100 - abs(rng.normal(0, 2)) if cond == "reference" else true[cond] + bias + rng.normal(0, 8)
                    if i == 9 and cond == "reference":
                        v = 55
                    if i == 10 and cond == "lowpass-7k":
                        v = 96
                    scores.append(int(np.clip(round(v), 0, 100)))
                session.rate(trial, scores, plays=[1] * len(scores))
    report = build_report(engine.store, engine.definition, bootstrap=0)
    engine.close()
    assert sorted(report.screening.dropped) == ["P09", "P10"] and len(report.screening.kept) == 9
    pair = report.comparisons.set_index(["a", "b"]).loc[("reference", "lowpass-3.5k")]
    assert pair["n_pairs"] == 9 and pair["significant_t"] and pair["p_t_holm"] < 1e-4
    line = next(x for x in report.text().splitlines() if x.strip().startswith("reference vs lowpass-3.5k"))
    assert "(significant)" in line
