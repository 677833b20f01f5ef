"""What the Listen tests share (tests/gui/test_listen_*.py, test_listener_mode.py and others):
a small prepared study, a view or main window on it, and a scripted listener's keys, plus the
blindness checks. The fixtures ``template`` and ``study`` (a prepared study of each test's own) are in
tests/gui/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QTextEdit,
    QWidget,
)

from mosapp.gui.listen_view import ListenView
from mosapp.gui.listener_mode import PIN_ENV
from tests.helpers import RATE, music_like

REPO = Path(__file__).resolve().parents[2]
CONDITIONS = ["reference", "pghi-only", "lowpass-3.5k"]
STARTS = (0.0, 1.5)
LENGTH_S = 1.2
PREPARE_TIMEOUT_MS = 180_000


def write_study(folder: Path, *, name: str = "gui", test_type: str = "dcr", training: int = 1,
                stimuli_dir: Path | None = None) -> Path:
    """A small study: one 3 s music-like clip written here, two 1.2 s excerpts, three conditions."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "clip.wav"
    if not clip.exists():
        sf.write(clip, music_like(3.0, seed=3).T, RATE, subtype="FLOAT")
    lines = [
        'title = "Listening test"',
        f'test_type = "{test_type}"',
        'instructions = "Listen to the reference and the sample, then rate the sample."',
        "conditions = [" + ", ".join(f'"{c}"' for c in CONDITIONS) + "]",
        "seed = 5",
        "fade_ms = 10.0",
    ]
    if stimuli_dir is not None:
        lines.append(f'stimuli_dir = "{stimuli_dir}"')
    lines += [
        "[training]", f"trials = {training}",
        "[pipeline]", 'phase = "pghi"', 'device = "cpu"',
        'metrics = ["mel_distance", "si_sdr_db", "spectral_convergence_db"]',
        "[[clips]]", 'path = "clip.wav"', 'name = "melody"', f"start_s = {list(STARTS)!r}", f"length_s = {LENGTH_S}",
    ]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prepare(path: Path) -> None:
    from mosapp.study import load_study, open_store, prepare_study

    definition = load_study(path)
    with open_store(definition.database_url) as store:
        for _ in prepare_study(definition, store):
            pass


def settle(qtbot, view: ListenView, timeout_ms: int = 20_000) -> None:
    """Wait until the view's database work (on its worker thread) is done and its result shown."""
    qtbot.waitUntil(lambda: not view.busy, timeout=timeout_ms)


def make_view(qtbot, study_path, **kwargs) -> ListenView:
    kwargs.setdefault("open_audio", False)
    view = ListenView(study_path, **kwargs)
    qtbot.addWidget(view)
    view.resize(900, 760)
    view.show()
    qtbot.waitExposed(view)
    settle(qtbot, view)
    return view


def key(qtbot, view: ListenView, k, widget: QWidget | None = None) -> None:
    """Press ``k`` (on ``widget``, default the view) and wait for what it set off in the database."""
    qtbot.keyClick(widget or view, k)
    settle(qtbot, view)


def type_code(qtbot, view: ListenView, code: str) -> None:
    """Type a listener code on the start page and press Enter (the session starts in the background)."""
    view.code_edit.setFocus()
    qtbot.keyClicks(view.code_edit, code)
    key(qtbot, view, Qt.Key_Return, view.code_edit)


def hear(view: ListenView, seconds: float | None = None) -> None:
    """Let the playing stimulus sound for ``seconds`` (default: past the end of the trial)."""
    player = view.player
    s = player.duration_s + 0.1 if seconds is None else seconds
    player.render(int(round(s * player.rate)))
    view.tick()


def start(qtbot, view: ListenView, code: str) -> None:
    type_code(qtbot, view, code)
    assert view.page == view.PAGE_INSTRUCTIONS, view.start_message.text()
    key(qtbot, view, Qt.Key_Return)


def listen_fully(qtbot, view: ListenView) -> None:
    """R, Space, a little of the reference, A (switch at the same position), the sample to its end."""
    if view.panel.reference_button.isVisible():
        key(qtbot, view, Qt.Key_R)
        assert view.player.selected == 0
    key(qtbot, view, Qt.Key_Space)
    assert view.player.playing
    hear(view, 0.3)
    pos = view.player.position_s
    key(qtbot, view, Qt.Key_A)
    assert view.player.selected == view.panel._sample_index
    assert view.player.position_s == pytest.approx(pos)  # the switch keeps the position
    hear(view)
    assert view.player.heard_to_end[view.panel._sample_index]


def ratings_of(study_path: Path, code: str):
    """The listener's ratings, read back through the store (tidy frame, training included)."""
    from mosapp.study import load_study, open_store
    from mosapp.study.export import ratings_frame

    definition = load_study(study_path, check_codecs=False)
    with open_store(definition.database_url, create=False) as store:
        frame = ratings_frame(store, definition, include_training=True)
    return frame[frame["listener"] == code].sort_values("trial").reset_index(drop=True)


def widget_texts(root: QWidget) -> list[str]:
    """Every text the widget tree can show: labels, buttons, fields, tooltips, titles, items."""
    texts: list[str] = []
    for w in [root, *root.findChildren(QWidget)]:
        texts += [w.windowTitle(), w.toolTip(), w.statusTip(), w.whatsThis(), w.accessibleName(),
                  w.accessibleDescription()]
        if isinstance(w, (QLabel, QAbstractButton)):
            texts.append(w.text())
        if isinstance(w, QLineEdit):
            texts += [w.text(), w.placeholderText()]
        if isinstance(w, (QTextEdit, QPlainTextEdit)):
            texts.append(w.toPlainText())
        if isinstance(w, QComboBox):
            texts += [w.itemText(i) for i in range(w.count())]
        if isinstance(w, QProgressBar):
            texts += [w.text(), w.format()]
    return [t for t in texts if t]


def forbidden_strings(study_path: Path) -> list[str]:
    """What would unblind a listener: condition and codec names, stimulus and clip files, bitrates."""
    from sqlalchemy import select

    from mosapp.codecs import codec_names
    from mosapp.study import load_study, open_store
    from mosapp.study.store import StimulusRow

    definition = load_study(study_path, check_codecs=False)
    # "reference" is the known reference's own (honest) name in a DCR trial; the hidden
    # reference is a condition and is never named, which the other checks cover.
    names = {c for c in definition.conditions if c != "reference"} | set(codec_names())
    with open_store(definition.database_url, create=False) as store, store.read() as s:
        files = [f for f in s.scalars(select(StimulusRow.audio_file)) if f]
    out = set(names) | set(files) | {Path(f).stem for f in files}
    for clip in definition.clips:
        out |= {clip.name, str(clip.path), clip.path.name}
    out |= {str(definition.stimuli_dir), str(study_path), study_path.name, "kbps", "kbit", "bitrate", "codec",
            "lowpass", "pghi", "opus", "sgc", "anchor", "hidden"}
    return sorted(out)


def assert_blind(view: ListenView, forbidden: list[str], where: str) -> None:
    texts = widget_texts(view)
    for text in texts:
        low = text.lower()
        for f in forbidden:
            assert f.lower() not in low, f'{where}: "{f}" is visible in "{text}"'


# ---------------------------------------------------------------------------------- tests


def visible_texts(window: QWidget) -> list[str]:
    """What a listener can see: visible widgets' texts and tooltips, the window title, the status bar."""
    texts = [window.windowTitle(), window.statusBar().currentMessage()]
    for w in window.findChildren(QWidget):
        if not w.isVisible():
            continue
        texts += [w.windowTitle(), w.toolTip(), w.statusTip(), w.accessibleName()]
        if isinstance(w, (QLabel, QAbstractButton)):
            texts.append(w.text())
        if isinstance(w, QLineEdit):
            texts += [w.text(), w.placeholderText()]
        if isinstance(w, QComboBox):
            texts += [w.itemText(i) for i in range(w.count())]
        if isinstance(w, QProgressBar):
            texts.append(w.text())
    return [t for t in texts if t]


def assert_window_blind(window, forbidden: list[str], where: str) -> None:
    texts = visible_texts(window)
    assert texts, where
    for text in texts:
        for f in forbidden:
            assert f.lower() not in text.lower(), f'{where}: "{f}" is visible in "{text}"'


def answer_pin(qtbot, window, pin: str) -> None:
    """Type ``pin`` into the PIN dialog as soon as it is open, and press OK."""
    def answer():
        dialog = window.listener_lock.pin_dialog
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, answer)
            return
        dialog.edit.setText(pin)
        dialog.accept()
    QTimer.singleShot(20, answer)


def main_window(qtbot, monkeypatch, path, *, break_every_trials: int = 0, size=None):
    """The app's main window with the study ``path`` open in Listen (no audio device, no breaks by time)."""
    from mosapp.gui.app import MainWindow

    monkeypatch.setenv(PIN_ENV, "4711")
    w = MainWindow()
    qtbot.addWidget(w)
    if size is not None:
        w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    listen = w.views["Listen"]
    listen.open_audio = False
    listen.break_every_trials = break_every_trials
    listen.break_every_minutes = 0
    assert listen.open_study(path)
    settle(qtbot, listen)
    return w, listen
