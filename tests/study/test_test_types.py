"""Test types are plug-ins: the built-in ones answer through one protocol, and a new one (ABX, the worked
example of docs/architecture.md, in tests/plugins/abx.py) runs a whole study without any other file changed.

The ABX study is real: prepared stimuli, a SQLite file, the Qt-free ListenController a listener's
window drives, the export and the report as ``mosapp study`` writes them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mosapp.cli.main import main
from mosapp.study import StudyEngine, load_study, open_store, parse_study
from mosapp.study.errors import StudyError
from mosapp.study.export import check_screening_units, export_study, ratings_columns, summary_columns
from mosapp.study.listening import ListenController, Playback, Screen, streams
from mosapp.study.report import build_report, write_report
from mosapp.study.types import get_test_type, register_test_type, type_names, unregister_test_type
from tests.study.conftest import REPO, prepared, study_toml

BUILTIN = ("dcr", "acr", "mushra", "ccr")


@pytest.fixture
def abx():
    """The ABX plug-in, registered for the test and forgotten after it."""
    from tests.plugins import abx

    register_test_type(abx.ABX)
    yield abx
    unregister_test_type("abx")


# ---------------------------------------------------------------------------------- the built-in types
def test_the_built_in_types_are_registered_with_their_scales():
    assert type_names()[:4] == BUILTIN
    scales = {n: (get_test_type(n).scale, get_test_type(n).score_range, len(get_test_type(n).labels)) for n in BUILTIN}
    assert scales == {"dcr": ("DMOS", (1, 5), 5), "acr": ("MOS", (1, 5), 5), "mushra": ("MUSHRA", (0, 100), 5),
                      "ccr": ("CMOS", (-3, 3), 7)}


def test_an_unknown_test_type_is_named_with_the_known_ones():
    with pytest.raises(StudyError, match=r'test_type is "abc"; use "dcr", "acr", "mushra" or "ccr"'):
        parse_study(study_toml(test_type="abc"))
    with pytest.raises(StudyError, match='Unknown test type "abc"'):
        get_test_type("abc")


def test_each_type_describes_its_own_columns():
    assert ratings_columns("dcr")["value"] == "the score, 1..5"
    assert "0..100" in ratings_columns("mushra")["value"] and "slot" in ratings_columns("mushra")
    assert "-3..+3" in ratings_columns("ccr")["value"] and "cmos_value" in ratings_columns("ccr")
    assert summary_columns("acr")["scale"] == "MOS" and summary_columns("mushra")["scale"] == "MUSHRA"
    assert "order_effect" in summary_columns("ccr")


def _string_comparisons_of_test_type(path: Path) -> list[str]:
    """``test_type == "…"``, ``test_type in (…)`` and the like in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            text = ast.unparse(node)
            if "test_type" in text and re.search(r"""['"](dcr|acr|mushra|ccr)['"]""", text):
                found.append(f"{path.name}:{node.lineno}: {text}")
    return found


def test_no_module_outside_the_types_chooses_by_a_test_type_name():
    """The engine, controller, parser, export, report and the Listen view ask the type, never compare its name."""
    modules = ["engine", "listening", "definition", "export", "report", "sitting", "items"]
    paths = [REPO / "mosapp" / "study" / f"{m}.py" for m in modules]
    paths += [REPO / "mosapp" / "gui" / f"{m}.py" for m in ("listen_view", "listen_start", "trial_widgets")]
    assert [hit for p in paths for hit in _string_comparisons_of_test_type(p)] == []


# ---------------------------------------------------------------------------------- a fifth type
def _listen_through(definition, code: str, answer) -> int:
    """A scripted listener takes the whole study through the controller; returns the trials rated."""
    controller = ListenController()
    assert controller.open(definition) is None
    step = controller.start(code)
    assert step.screen is Screen.INSTRUCTIONS
    step = controller.begin()
    rated = 0
    while step is not None and step.screen is not Screen.DONE:
        if step.screen is Screen.PRACTICE_OVER:
            step = controller.end_practice()
            continue
        if step.screen is Screen.BREAK:
            step = controller.end_break()
            continue
        assert step.screen is Screen.TRIAL, step.message
        trial = step.trial
        s = streams(trial)
        durations = tuple(b.shape[1] / trial.sample_rate for b in s.buffers)
        not_heard = Playback((0,) * 3, (0.0,) * 3, (False,) * 3, durations)
        assert not controller.ready(not_heard)  # every stream must be heard first
        heard = Playback((1, 1, 2), durations, (True,) * 3, durations)
        step = controller.rate(answer(trial), heard)
        rated += 1
    controller.close()
    return rated


def test_a_new_test_type_runs_a_study_from_its_module_alone(abx, tmp_path, capsys):
    path = prepared(tmp_path, "abx-study", test_type="abx", conditions=["reference", "pghi-only"], training=1)
    definition = load_study(path)
    assert definition.kind is abx.ABX and definition.labels == ("X is A", "X is B")
    assert definition.screening.rule == "off"

    def perfect(trial) -> int:  # hears whether X is B's buffer
        return 2 if np.array_equal(trial.x, trial.b) else 1

    assert _listen_through(definition, "L01", perfect) == 1 + 3 * 2
    assert _listen_through(definition, "L02", lambda trial: 1) == 1 + 3 * 2
    with StudyEngine.open(definition) as engine:
        assert [p.finished for p in engine.listener_progress()] == [True, True]

    with open_store(definition.database_url) as store:
        ratings_path, summary_path = export_study(store, definition, tmp_path / "out")
        report = build_report(store, definition)
        files = write_report(report, tmp_path / "report")
    ratings = pd.read_csv(ratings_path)
    assert list(ratings.columns) == list(ratings_columns("abx"))
    assert set(ratings["test_type"]) == {"abx"} and len(ratings) == 2 * 6
    l01 = ratings[ratings["listener"] == "L01"]
    # The perfect listener is right on every pghi-only trial; on the reference, X is A and B at once.
    assert l01.loc[l01["condition"] == "pghi-only", "correct"].all()
    assert (ratings["value"] == np.where(ratings["correct"] == (ratings["x_is"] == "B"), 2, 1)).all()
    summary = pd.read_csv(summary_path)
    assert list(summary.columns) == list(summary_columns("abx")) == list(abx.SUMMARY_COLUMNS)
    pghi = summary.set_index("condition").loc["pghi-only"]
    assert pghi["n"] == 6 and pghi["n_correct"] == 3 + int((ratings[(ratings["listener"] == "L02")
                                                                    & (ratings["condition"] == "pghi-only")]
                                                            ["x_is"] == "A").sum())
    assert "pghi-only:" in report.text() and files["summary"].is_file()

    # The command line needs nothing either.
    assert main(["study", "export", str(path), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "abx-study-ratings.csv").read_text() == ratings_path.read_text()
    capsys.readouterr()


def test_a_new_type_gets_the_protocols_defaults_in_its_own_words(abx):
    """ABX says nothing of screening, gold trials or reference_first: the defaults refuse them, naming ABX."""
    text = study_toml(test_type="abx", conditions=["reference", "pghi-only"])
    definition = parse_study(text)
    assert definition.scale == "ABX" and definition.score_range == (1, 2) and definition.trials_per_listener == 6
    with pytest.raises(StudyError, match="--min-score is not accepted for a ABX study: ABX has no post-screening rule"):
        check_screening_units(definition, min_score=1)
    with pytest.raises(StudyError, match="a ABX study has no post-screening rule here"):
        parse_study(study_toml(test_type="abx", conditions=["reference", "pghi-only"], extra='screening = "reference"'))
    with pytest.raises(StudyError, match="reference_first is true, but only a DCR study plays a reference"):
        parse_study(study_toml(test_type="abx", conditions=["reference", "pghi-only"], extra="reference_first = true"))
    with pytest.raises(StudyError, match="trials_per_listener is 5; give a multiple of the 2 conditions"):
        parse_study(study_toml(test_type="abx", conditions=["reference", "pghi-only"], trials=5))


def test_a_type_that_is_gone_is_refused_in_one_sentence(abx, tmp_path):
    text = study_toml(test_type="abx", conditions=["reference", "pghi-only"])
    assert parse_study(text).test_type == "abx"
    unregister_test_type("abx")
    with pytest.raises(StudyError, match=r'test_type is "abx"; use "dcr", "acr", "mushra" or "ccr"'):
        parse_study(text)


def test_the_worked_example_in_the_docs_is_the_plug_ins_own_code():
    """Every line docs/architecture.md quotes of the ABX example is a line of tests/plugins/abx*.py."""
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Test types as plug-ins"):doc.index("## Where to put new code")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2
    source = "\n".join((REPO / "tests" / "plugins" / f).read_text(encoding="utf-8")
                       for f in ("abx.py", "abx_panel.py"))
    own = {line.strip() for line in source.splitlines()}
    quoted = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert len(quoted) > 20 and [line for line in quoted if line not in own] == []
    # The hooks the table names are the protocol's.
    from mosapp.study.types.base import TestType

    table = re.findall(r"^\| (.+?) \| .+ \|$", section, flags=re.M)[2:]
    hooks = {name for row in table for name in re.findall(r"`(\w+)`", row)}
    assert hooks and all(hasattr(TestType, name) for name in hooks)


def test_the_study_package_and_the_listen_view_import_without_a_cycle():
    """No module of mosapp.study (nor the Listen view's) reaches back to one that imports it, counting the imports
    made for the type checker only (the registries load their plug-ins by name, as mosapp.codecs does)."""
    import grimp

    graph = grimp.build_graph("mosapp", cache_dir=None)
    ours = {m for m in graph.modules if m.startswith(("mosapp.study", "mosapp.gui.listen", "mosapp.gui.trial_widgets"))
            and ".migrations" not in m}
    cycles = [(a, b) for a in sorted(ours) for b in sorted(graph.find_modules_directly_imported_by(a) & ours)
              if graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
