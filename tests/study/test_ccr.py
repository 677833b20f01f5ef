"""CCR (P.800 Annex E): the study fields, balanced random order, the sessions, and CMOS with the order
effect removed, checked against a hand computation and a least-squares fit."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mosapp.study import load_study
from mosapp.study.definition import parse_study
from mosapp.study.engine import StudyEngine
from mosapp.study.errors import StudyError
from mosapp.study.plan import listener_plan
from mosapp.study.types.ccr import CcrSession, CcrTrial, cmos_summary, listener_cmos, order_plan
from tests.study.conftest import copy_study, prepared, study_toml

CONDITIONS = ["reference", "pghi-only", "lowpass-3.5k"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ccr_template(tmp_path_factory) -> Path:
    return prepared(tmp_path_factory.mktemp("ccr-template"), "c", test_type="ccr", conditions=CONDITIONS,
                    metrics=["mel_distance"], starts=(0.0, 3.0, 6.0, 9.0))


@pytest.fixture
def ccr(ccr_template, tmp_path) -> Path:
    return copy_study(ccr_template, tmp_path)


def test_ccr_fields_and_defaults(tmp_path):
    d = parse_study(study_toml(test_type="ccr", conditions=CONDITIONS), source=tmp_path / "c.toml")
    assert d.scale == "CMOS" and d.score_range == (-3, 3)
    assert d.labels == ("Much worse", "Worse", "Slightly worse", "About the same", "Slightly better", "Better",
                        "Much better")
    assert d.screening.rule == "off"
    with pytest.raises(StudyError, match="no post-screening rule"):
        parse_study(study_toml(test_type="ccr", conditions=CONDITIONS, extra='screening = "reference"'),
                    source=tmp_path / "c.toml")
    with pytest.raises(StudyError, match="exactly 7"):
        parse_study(study_toml(test_type="ccr", conditions=CONDITIONS, extra='labels = ["a","b","c","d","e"]'),
                    source=tmp_path / "c.toml")


def test_the_order_is_random_and_balanced(tmp_path):
    d = parse_study(study_toml(test_type="ccr", conditions=CONDITIONS, starts=(0.0, 3.0, 6.0, 9.0), training=2),
                    source=tmp_path / "c.toml")
    by_pair = Counter()
    patterns = set()
    for listener in range(8):
        plan = listener_plan(clips=[c.name for c in d.plan_clips], conditions=list(d.conditions),
                             trials=d.trials_per_listener, repetitions=1, seed=d.seed, listener_index=listener,
                             training_trials=2, training_conditions=())
        first = order_plan(d, plan, listener)
        per_condition = Counter(t.condition for t, f in zip(plan, first) if f and not t.is_training)
        assert all(per_condition[c] == 2 for c in CONDITIONS), per_condition  # 4 clips: 2 each way
        for t, f in zip(plan, first):
            if not t.is_training:
                by_pair[(t.clip, t.condition)] += 1 if f else -1
        patterns.add(tuple(sorted((t.clip, t.condition) for t, f in zip(plan, first) if f and not t.is_training)))
    assert set(by_pair.values()) == {0}  # over every two listeners each pair is heard in both orders
    assert len(patterns) > 1  # random, not one fixed assignment


def test_a_scripted_listener_completes_a_ccr_study(ccr, tmp_path):
    from mosapp.study.export import export_study

    engine = StudyEngine.open(ccr)
    with engine.start_or_resume("C01") as session:
        assert isinstance(session, CcrSession)
        n = 0
        while (trial := session.next_trial()) is not None:
            assert isinstance(trial, CcrTrial)
            assert trial.first is not trial.second and not np.shares_memory(trial.first, trial.second)
            with pytest.raises(StudyError, match="-3 to 3"):
                session.rate(trial, 4)
            session.rate(trial, (n % 7) - 3, play_counts=(1, 2), listening_time_s=2.0, response_time_s=3.0)
            with pytest.raises(StudyError, match="already rated"):
                session.rate(trial, 0)
            n += 1
        assert n == 12 + 1 and session.progress.finished
    ratings_csv, summary_csv = export_study(engine.store, engine.definition, tmp_path / "out")
    ratings = pd.read_csv(ratings_csv)
    assert len(ratings) == 12 and set(ratings["test_type"]) == {"ccr"}
    assert (ratings["value"] == [(k % 7) - 3 for k in range(1, 13)]).all()  # trial 0 is training
    sign = np.where(ratings["processed_first"], -1, 1)
    assert (ratings["cmos_value"] == sign * ratings["value"]).all()
    assert ratings.groupby("condition")["processed_first"].sum().eq(2).all()
    # Plays are stored for the processed sample and the reference, whichever played first.
    assert (ratings["plays_sample"] == np.where(ratings["processed_first"], 1, 2)).all()
    assert (ratings["plays_reference"] == np.where(ratings["processed_first"], 2, 1)).all()
    summary = pd.read_csv(summary_csv)
    assert list(summary["condition"]) == CONDITIONS and summary["n"].eq(4).all()
    con = sqlite3.connect(engine.definition.database_url.removeprefix("sqlite:///"))
    assert con.execute("select count(*) from item_ratings").fetchone()[0] == 13
    engine.close()


# ------------------------------------------------------------------------------ CMOS by hand
def _rows(rows):
    frame = pd.DataFrame(rows, columns=["listener", "condition", "processed_first", "value"])
    frame["cmos_value"] = np.where(frame["processed_first"], -frame["value"], frame["value"])
    return frame


def test_cmos_order_correction_against_a_hand_computation():
    """By hand (cmos_value = -value when the processed sample played first):

    X, L1: first +1 -> -1, first 0 -> 0, second -2 -> -2: F = -0.5, S = -2, CMOS_L1 = -1.25.
    X, L2: first +2 -> -2, second 0 -> 0:                  F = -2,   S = 0,  CMOS_L2 = -1.
    X pooled: F = mean(-1, 0, -2) = -1, S = mean(-2, 0) = -1: cmos_pooled -1, order effect 0;
    uncorrected mean(-1, 0, -2, -2, 0) = -1; cmos = mean(-1.25, -1) = -1.125,
    CI -1.125 -+ t(0.975, 1) * sd(-1.25, -1) / sqrt 2.
    N (null pair), both listeners always say "B slightly better" (+1): F = -1, S = +1:
    CMOS 0, order effect +1 (uncorrected: 0 as well, since the order is balanced).
    """
    from scipy import stats as st

    frame = _rows([
        ("L1", "X", True, 1), ("L1", "X", True, 0), ("L1", "X", False, -2),
        ("L2", "X", True, 2), ("L2", "X", False, 0),
        ("L1", "N", True, 1), ("L1", "N", False, 1), ("L2", "N", True, 1), ("L2", "N", False, 1),
    ])
    per = listener_cmos(frame).set_index(["listener", "condition"])
    assert per.loc[("L1", "X"), "cmos"] == pytest.approx(-1.25)
    assert per.loc[("L2", "X"), "cmos"] == pytest.approx(-1.0)
    s = cmos_summary(frame).set_index("condition")
    x = s.loc["X"]
    assert (x["mean_first"], x["mean_second"]) == pytest.approx((-1.0, -1.0))
    assert x["cmos_pooled"] == pytest.approx(-1.0) and x["order_effect"] == pytest.approx(0.0)
    assert x["uncorrected"] == pytest.approx(-1.0) and x["cmos"] == pytest.approx(-1.125)
    half = st.t.ppf(0.975, 1) * np.std([-1.25, -1.0], ddof=1) / np.sqrt(2)
    assert (x["ci_low"], x["ci_high"]) == pytest.approx((-1.125 - half, -1.125 + half))
    assert x["n_first"] == 3 and x["n_second"] == 2 and x["n_listeners"] == 2
    n = s.loc["N"]
    assert n["cmos"] == pytest.approx(0.0) and n["order_effect"] == pytest.approx(1.0)
    # The pooled estimate is the least-squares fit of cmos_value ~ condition + condition:order (order +-1/2).
    design = np.column_stack([
        (frame["condition"] == "X"), (frame["condition"] == "N"),
        (frame["condition"] == "X") * np.where(frame["processed_first"], -0.5, 0.5),
        (frame["condition"] == "N") * np.where(frame["processed_first"], -0.5, 0.5),
    ]).astype(float)
    coef, *_ = np.linalg.lstsq(design, frame["cmos_value"].to_numpy(float), rcond=None)
    assert coef[0] == pytest.approx(x["cmos_pooled"]) and coef[1] == pytest.approx(n["cmos_pooled"])
    assert coef[2] / 2 == pytest.approx(x["order_effect"]) and coef[3] / 2 == pytest.approx(n["order_effect"])


def test_an_order_bias_does_not_move_cmos():
    """A panel with a strong bias towards the second sample: CMOS stays at the true value, the
    uncorrected mean would too only with a balanced order; here the order is unbalanced (3:1)."""
    rows = []
    for listener in ("A", "B", "C"):
        # True quality of the processed sample against the reference: -1; bias +2 towards the second.
        rows += [(listener, "X", True, 1 + 2)] * 3  # processed first: value = +1 (ref vs proc) + 2
        rows += [(listener, "X", False, -1 + 2)]     # processed second: value = -1 + 2
    s = cmos_summary(_rows(rows)).set_index("condition").loc["X"]
    assert s["cmos"] == pytest.approx(-1.0) and s["order_effect"] == pytest.approx(2.0)
    assert s["uncorrected"] == pytest.approx((3 * -3 + 1) / 4)  # biased: -2


def test_shipped_ccr_demo_parses():
    d = load_study(REPO / "studies" / "demo-ccr.toml")
    assert d.test_type == "ccr" and d.trials_per_listener == 12 and "reference" in d.conditions


def test_status_export_and_report_from_the_command_line(ccr, tmp_path, capsys):
    from mosapp.cli.main import main

    engine = StudyEngine.open(ccr)
    with engine.start_or_resume("C02") as session:
        while (trial := session.next_trial()) is not None:
            session.rate(trial, 1, play_counts=(1, 1))  # "B slightly better" every time: a pure order bias
    engine.close()
    assert main(["study", "status", str(ccr)]) == 0
    assert "C02" in capsys.readouterr().out
    assert main(["study", "report", str(ccr), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "CMOS" in out and "order effect removed" in out
    summary = pd.read_csv(tmp_path / "r" / "c-report-summary.csv")
    # Balanced order (2 of 4 first per condition): the bias cancels, CMOS 0, order effect +1.
    assert summary["cmos"].abs().max() == pytest.approx(0) and summary["order_effect"].eq(1).all()
    assert (tmp_path / "r" / "c-report-cmos-vs-kbps.png").stat().st_size > 10_000
    assert main(["study", "export", str(ccr), "--out", str(tmp_path / "e")]) == 0
    assert len(pd.read_csv(tmp_path / "e" / "c-ratings.csv")) == 12


def test_a_report_before_any_listener_is_empty_not_an_error(ccr, tmp_path):
    from mosapp.study.report import build_report, write_report

    engine = StudyEngine.open(ccr)
    report = build_report(engine.store, engine.definition)
    assert report.cmos["n"].eq(0).all() and report.cmos["cmos"].isna().all()
    files = write_report(report, tmp_path / "r")
    assert files["summary"].exists() and "ratings: 0" in report.text()
    engine.close()
