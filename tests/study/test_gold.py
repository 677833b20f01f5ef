"""Gold (known-answer, P.808-style) trials and the screening settings of a study file: parsed,
planned into every listener's plan, stored, scored by the screening, left out of the statistics."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mosapp.study import StudyEngine, load_study
from mosapp.study.errors import StudyError
from mosapp.study.export import ratings_frame, screen, statistics_input
from mosapp.study.plan import PlannedTrial, insert_gold
from mosapp.study.report import build_report
from mosapp.study.store import ConditionRow, StimulusRow, TrialRow
from tests.study.conftest import TRAP_CLIP, prepare, study_toml, write_study

GOLD = '''
[screening]
min_reference_trials = 3

[[gold]]
clip = "pluck"
condition = "reference"
expected = [4, 5]

[[gold]]
clip = "trap"
expected = 2
'''


def _gold_study(tmp_path):
    text = study_toml(starts=(0.0,), training=1, conditions=["reference", "pghi-only"]).replace("[training]", GOLD + "\n[training]")
    path = tmp_path / "gold.toml"
    path.write_text(text + TRAP_CLIP, encoding="utf-8")
    return path


def test_gold_trials_are_parsed_planned_and_scored(tmp_path):
    path = _gold_study(tmp_path)
    d = load_study(path)
    assert [(g.clip, g.condition, g.expected) for g in d.gold] == [("pluck", "reference", (4, 5)),
                                                                   ("trap", "reference", (2,))]
    assert [c.name for c in d.plan_clips] == ["pluck"] and d.clips[-1].gold_only
    assert "gold" in d.design()
    result = prepare(path)
    assert result.total == 2 + 1  # pluck x 2 conditions, the trap clip as its reference only

    def answer(session, trial, condition_of):
        cond, gold = condition_of(trial)
        if gold is None:
            return 5 if cond == "reference" else 3
        return session_answers[session.listener_code](gold)

    session_answers = {"GOOD": lambda gold: int(gold.split(",")[0]), "CARELESS": lambda gold: 3}
    with StudyEngine.open(path) as engine:
        def condition_of(trial):
            with engine.store.read() as s:
                return s.execute(select(ConditionRow.name, TrialRow.gold_expected)
                                 .join(StimulusRow, StimulusRow.condition_id == ConditionRow.id)
                                 .join(TrialRow, TrialRow.stimulus_id == StimulusRow.id)
                                 .where(TrialRow.trial_token == trial.trial_id)).one()

        for code in session_answers:
            with engine.start_or_resume(code) as session:
                golds = []
                while (trial := session.next_trial()) is not None:
                    golds.append(condition_of(trial)[1] is not None)
                    session.rate(trial, answer(session, trial, condition_of))
                # training first, then 2 rated + 2 gold, never first and never two in a row
                assert golds[0] is False and sum(golds) == 2 and "True, True" not in str(golds)
        ratings = ratings_frame(engine.store, d)
        assert ratings["is_gold"].sum() == 4
        assert set(ratings.loc[ratings["is_gold"], "gold_expected"]) == {"4;5", "2"}
        scr = screen(ratings, d)
        t = scr.table.set_index("listener")
        assert scr.dropped == ["CARELESS"] and t.loc["CARELESS", "n_gold_failed"] == 2
        assert t.loc["GOOD", "n_gold"] == 2 and t.loc["GOOD", "n_gold_failed"] == 0
        assert not statistics_input(ratings, scr)["clip"].eq("trap").any()  # gold stays out of the numbers
        report = build_report(engine.store, d, bootstrap=0)
        assert report.summary.set_index("condition").loc["reference", "n"] == 1  # GOOD's one plain reference


def test_insert_gold_spreads_the_trials():
    plan = [PlannedTrial("t", "x", True)] + [PlannedTrial(f"c{i}", "x") for i in range(10)]
    out = insert_gold(plan, [("g1", "x", (5,)), ("g2", "x", (1,)), ("g3", "x", (2,))], seed=1, listener_index=0)
    kinds = ["T" if t.is_training else ("G" if t.gold_expected else "r") for t in out]
    assert "".join(kinds) == "TrrrGrrGrrrGrr"  # after rated trials 3 (2.5 rounded up), 5 and 8 (7.5)
    assert kinds.count("G") == 3 and kinds[1] == "r" and "GG" not in "".join(kinds)
    assert insert_gold(plan, [], seed=1, listener_index=0) == plan


@pytest.mark.parametrize("extra, message", [
    ('[[gold]]\nclip = "nope"\nexpected = [5]', "not one of the study's clips"),
    ('[[gold]]\nclip = "pluck@0s"\nexpected = [6]', "accepted scores"),
    ('[[gold]]\nclip = "pluck@0s"\ncondition = "opus-99"\nexpected = [5]', "not one of the study's conditions"),
    ('screening = "sometimes"', 'use "reference", "bs1534" or "off"'),
    ('[screening]\nrule = "bs1534"', "needs the anchor condition it scores (BS.1534-3: the mid-range anchor"),
    ('[screening]\nrule = "bs1534"\nanchor = "reference"', "not one of the study's conditions"),
    ('[screening]\nmax_fraction = 1.5', "fraction from 0 to 1"),
])
def test_bad_gold_and_screening_fields_are_one_sentence(tmp_path, extra, message):
    text = study_toml().replace("[training]", extra + "\n[training]")
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_dcr_without_the_hidden_reference_needs_screening_off(tmp_path):
    path = write_study(tmp_path, "noref", conditions=["pghi-only"])
    with pytest.raises(StudyError, match='set screening = "off"'):
        load_study(path)
    path.write_text(path.read_text().replace("[training]", 'screening = "off"\n[training]'))
    d = load_study(path)
    assert d.screening.rule == "off" and d.screening.explicit
    acr = write_study(tmp_path, "acr", conditions=["pghi-only"], test_type="acr")
    assert load_study(acr).screening.rule == "off"  # ACR has no known reference to miss


def test_screening_settings_and_reference_first_are_read(tmp_path):
    conds = ["reference", "pghi-only", "lowpass-3.5k"]
    text = study_toml(conditions=conds).replace("[training]", (
        'reference_first = true\n[screening]\nrule = "bs1534"\nanchor = "lowpass-3.5k"\nmin_score = 5\n'
        'max_fraction = 0.2\nmin_reference_trials = 4\nanchor_max_score = 3\ngold_max_failures = 1\n[training]'))
    path = tmp_path / "s.toml"
    path.write_text(text)
    d = load_study(path, check_codecs=False)
    s = d.screening
    assert (s.rule, s.anchor, s.min_score, s.max_fraction, s.min_reference_trials, s.anchor_max_score,
            s.gold_max_failures) == ("bs1534", "lowpass-3.5k", 5, 0.2, 4, 3, 1)
    assert d.reference_first and "anchor lowpass-3.5k" in s.describe()
    acr = tmp_path / "a.toml"
    acr.write_text(study_toml(test_type="acr").replace("[training]", "reference_first = true\n[training]"))
    with pytest.raises(StudyError, match="only a DCR study plays a reference"):
        load_study(acr)
