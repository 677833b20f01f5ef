"""The shipped demo study (studies/demo.toml, its codecs sgc-12 and opus-12 included) completed
through the Listen view by a scripted listener, keys only; the ratings are then in its database.

The study file is copied with its database and stimulus folder redirected into tmp_path (and
the phase backend set to ``pghi`` to keep preparation short); everything else is the shipped one.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from PySide6.QtCore import Qt

from tests.gui.listen_support import (
    assert_blind,
    forbidden_strings,
    key,
    listen_fully,
    make_view,
    prepare,
    ratings_of,
    start,
)

REPO = Path(__file__).resolve().parents[2]


def demo_copy(tmp_path: Path) -> Path:
    text = (REPO / "studies" / "demo.toml").read_text()
    shipped = tomllib.loads(text)
    clip = (REPO / "studies" / shipped["clips"][0]["path"]).resolve()
    text = text.replace(shipped["clips"][0]["path"], str(clip))
    text = re.sub(r'(?m)^phase = "[^"]*"', 'phase = "pghi"', text)
    head = f'database = "{tmp_path / "demo.sqlite"}"\nstimuli_dir = "{tmp_path / "stimuli"}"\n'
    path = tmp_path / "demo.toml"
    path.write_text(head + text)
    return path


def test_a_scripted_listener_completes_the_demo_study(qtbot, tmp_path):
    path = demo_copy(tmp_path)
    prepare(path)
    view = make_view(qtbot, path, break_every_trials=0, break_every_minutes=0)
    forbidden = forbidden_strings(path)
    start(qtbot, view, "DEMO1")
    rated = 0
    while view.page in (view.PAGE_TRIAL, view.PAGE_BREAK, view.PAGE_PRACTICE_OVER):
        if view.page in (view.PAGE_BREAK, view.PAGE_PRACTICE_OVER):
            key(qtbot, view, Qt.Key_Return)
            continue
        assert_blind(view, forbidden, f"trial {view.trial.index}")
        listen_fully(qtbot, view)
        key(qtbot, view, getattr(Qt, f"Key_{1 + rated % 5}"))
        key(qtbot, view, Qt.Key_Return)
        rated += 1
    assert view.page == view.PAGE_DONE
    frame = ratings_of(path, "DEMO1")
    shipped = tomllib.loads((REPO / "studies" / "demo.toml").read_text())
    main_trials = frame[~frame["is_training"]] if "is_training" in frame else frame
    assert len(frame) == rated
    # Every condition of the shipped study was rated, each equally often (balanced plan).
    counts = main_trials["condition"].value_counts()
    assert set(counts.index) == set(shipped["conditions"])
    assert counts.nunique() == 1
    assert frame["value"].between(1, 5).all()
