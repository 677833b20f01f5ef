"""The app on a real X server: Xvfb (installed by scripts/setup), Qt's ``xcb`` platform, real processes.

The rest of the GUI suite runs on Qt's ``offscreen`` platform, which needs none of the X11
libraries: it could not see that the window did not open at all after the README's set-up
(Qt aborted with exit code 134: ``libxcb-icccm4`` and ``libxcb-keysyms1`` were missing). Here:

* the X11 platform plugin finds every library it links;
* a process on ``xcb`` opens the window, shows each view, runs a short Inspect job with the
  default codec and saves screenshots of the X screen to ``out/screenshots/xcb-*.png``;
* ``mosapp gui FILE`` (and ``mosapp FILE``) as a real command opens the window and stays up;
* without a usable display the command says why in one sentence and exits, never hangs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from mosapp.views.platform import missing_xcb_libraries, xcb_plugin
from tests.gui.listen_support import write_study
from tests.gui.xvfb import SCREENSHOTS, env_for, xvfb_display
from tests.helpers import RATE, music_like

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("xcb") / "music.wav"
    sf.write(path, music_like(3.0, seed=4).T, RATE, subtype="PCM_16")
    return path


def grab_screen(display: str, path: Path) -> None:
    """A screenshot of the whole X screen, taken by a Qt process of its own on ``xcb``."""
    code = ("import sys\nfrom PySide6.QtGui import QGuiApplication\napp = QGuiApplication(['grab'])\n"
            "ok = app.primaryScreen().grabWindow(0).save(sys.argv[1], 'PNG')\nsys.exit(0 if ok else 1)\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code, str(path)], env=env_for(display), check=True, timeout=60)


def colours(path: Path) -> int:
    """Distinct colours on a grid over the picture (a blank or black screen has one or two)."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    w, h = image.size
    return len({image.getpixel((x, y)) for x in range(0, w, 23) for y in range(0, h, 19)})


def test_the_x11_platform_plugin_finds_every_library():
    assert xcb_plugin() is not None
    assert missing_xcb_libraries() == [], "scripts/setup must install these"


DRIVER = """
import sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication
from mosapp.gui.app import MainWindow
from mosapp.gui.inspect_controls import set_combo

app = QApplication(["mosapp"])
print("platform", app.platformName(), flush=True)
out, clip = Path(sys.argv[1]), sys.argv[2]

def pump(seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.01)

def shot(name):
    pump(0.5)
    window.grab().save(str(out / f"xcb-window-{name}.png"), "PNG")
    app.primaryScreen().grabWindow(0).save(str(out / f"xcb-{name}.png"), "PNG")

window = MainWindow()
window.resize(1500, 900)
window.show()
pump(1.0, window.isVisible)
print("visible", window.isVisible(), window.windowHandle() is not None, flush=True)
for i in range(window.tabs.count()):
    window.tabs.setCurrentIndex(i)
    title = window.tabs.tabText(i)
    pump(1.0)
    print("view", title, type(window.tabs.currentWidget()).__name__, flush=True)
    shot(title.lower())
view = window.inspect
window.tabs.setCurrentWidget(view)
print("default codec", view.controls.codec_combo.currentText(), flush=True)
set_combo(view.controls.visqol_combo, "off")
results = []
view.result_ready.connect(results.append)
view.open_path(clip)
pump(540, lambda: results or (not view.busy and view.result is None and view.controls.message_label.property("error")))
if not results:
    print("no result:", view.message_text(), flush=True)
    sys.exit(3)
r = results[0]
print("result", r.request.codec, f"{r.file_kbps:.1f}", f"{r.scores['mel_distance']:.3f}", flush=True)
view.panes.set_playhead(1.0)
shot("inspect-run")
window.close()
pump(0.5)
print("closed", flush=True)
"""


def test_the_window_on_xcb_shows_every_view_and_runs_an_inspect_job(display, clip):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", DRIVER, str(SCREENSHOTS), str(clip)], env=env_for(display),
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    lines = out.stdout.splitlines()
    assert "platform xcb" in lines
    assert "visible True True" in lines
    for title, cls in (("Inspect", "InspectView"), ("Listen", "ListenView"), ("Results", "ResultsView")):
        assert f"view {title} {cls}" in lines
    assert "default codec sgc-12" in lines or "default codec pghi-only" in lines
    assert any(line.startswith("result ") for line in lines) and "closed" in lines
    assert "Traceback" not in out.stderr
    for name in ("inspect", "listen", "results", "inspect-run"):
        assert colours(SCREENSHOTS / f"xcb-{name}.png") > 20, name


@pytest.mark.parametrize("argv", [["gui"], []], ids=["mosapp gui FILE", "mosapp FILE"])
def test_mosapp_gui_file_opens_the_window_and_stays_up(display, clip, argv):
    app = subprocess.Popen([sys.executable, "-m", "mosapp", *argv, str(clip)], env=env_for(display),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180  # a busy 2-core machine starts Python and Qt slowly
        found = ""
        while time.monotonic() < deadline and app.poll() is None:
            tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env_for(display), capture_output=True,
                                  text=True).stdout
            found = next((line for line in tree.splitlines() if "mosapp — audio" in line), "")
            if found:
                break
            time.sleep(0.25)
        assert app.poll() is None, f"mosapp exited with {app.returncode}: {app.stderr.read()[-2000:]}"
        assert found, "no mosapp window on the X screen"
        time.sleep(4.0)  # the run on the file starts; the window must survive it
        assert app.poll() is None
        if not argv:
            grab_screen(display, SCREENSHOTS / "xcb-mosapp-file.png")
            assert colours(SCREENSHOTS / "xcb-mosapp-file.png") > 20
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
        try:
            app.wait(60)
        except subprocess.TimeoutExpired:  # a swamped machine can take longer to tear the process down
            app.kill()
            app.wait(60)
        err = app.stderr.read()
    assert "Traceback" not in err, err[-2000:]


@pytest.mark.parametrize("environment, says", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "where nobody can see or close it"),
    ({"DISPLAY": ":97"}, "does not answer"),
    ({}, "there is no display"),
], ids=["offscreen", "dead display", "no display"])
def test_without_a_usable_display_mosapp_gui_says_why_and_exits(clip, environment, says):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env.update(environment, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-m", "mosapp", "gui", str(clip)], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert says in out.stderr and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_mosapp_file_is_taken_as_gui_file_and_a_wrong_name_is_one_sentence(clip, tmp_path):
    """`mosapp FILE` used to be refused by the argument parser ("invalid choice")."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-m", "mosapp", str(clip)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "there is no display" in out.stderr and "invalid choice" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "mosapp", str(tmp_path / "missing.wav")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"mosapp: error: {tmp_path / 'missing.wav'} is neither an audio file nor a study "
                                  f"(a .toml file or a name in studies/); check the path.")


OPEN_INTO = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from mosapp.gui.app import MainWindow, run_app

def report():
    w = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
    listen, results = w.views["Listen"], w.views["Results"]
    print("tab", w.tabs.tabText(w.tabs.currentIndex()))
    print("inspect", w.inspect.controls.source_label.text())
    print("listen", listen.definition.name if listen.definition else None)
    print("results", getattr(results.study, "name", results.study))
    w.inspect.shutdown()
    w.close()
    QApplication.instance().exit(0)

app = QApplication(["mosapp"])
QTimer.singleShot(1500, report)
kind, target = sys.argv[1], sys.argv[2]
sys.exit(run_app([], open_audio=target if kind == "audio" else None, open_study=target if kind == "study" else None))
"""


@pytest.mark.parametrize("kind", ["audio", "study"])
def test_gui_file_opens_in_inspect_and_gui_study_in_listen(kind, clip, tmp_path):
    target = str(clip) if kind == "audio" else str(write_study(tmp_path / "s", name="opened"))
    out = subprocess.run([sys.executable, "-c", OPEN_INTO, kind, target], capture_output=True, text=True,
                         timeout=TIMEOUT_S, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    if kind == "audio":
        assert "tab Inspect" in lines and "inspect music.wav" in lines
    else:
        assert "tab Listen" in lines and "listen opened" in lines and "results opened" in lines


# ---------------------------------------------------------------------- real screens, with a window manager

SCREEN_SIZES = [(1366, 768), (1920, 1080)]
#: Room a desktop's task bar takes from a 768-line laptop screen.
TASK_BAR = 40


@pytest.fixture
def screen_with_window_manager(request):
    """An Xvfb server of the size given by the test's ``size`` parameter with openbox managing its
    windows (so the window gets a frame, a place and a maximised size as on a desktop); its display name."""
    if shutil.which("openbox") is None:
        pytest.fail("openbox is not installed; scripts/setup installs it (Debian package openbox).")
    width, height = request.param
    with xvfb_display((width, height)) as name:
        manager = subprocess.Popen(["openbox", "--sm-disable"], env=env_for(name), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        # Wait until openbox owns the screen (it sets _NET_SUPPORTING_WM_CHECK on the root window).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            props = subprocess.run(["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=env_for(name),
                                   capture_output=True, text=True).stdout if shutil.which("xprop") else "window id"
            if "window id" in props:
                break
            time.sleep(0.2)
        yield name, (width, height)
        manager.terminate()
        manager.wait(10)


SCALES = """
import sys, time
from pathlib import Path
import numpy as np, soundfile as sf
from PySide6.QtCore import QRect
from PySide6.QtGui import QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QApplication
from mosapp.gui.app import MainWindow
from mosapp.gui.inspect_controls import set_combo
from mosapp.views.inspect_controller import CODEC_LATTICE

app = QApplication(["mosapp"])
out, clip, name, reserved = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
screen = app.primaryScreen().geometry()

def pump(seconds, until=lambda: False):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not until():
        app.processEvents()
        time.sleep(0.01)

window = MainWindow()
least = window.minimumSizeHint()
print("least", least.width(), least.height(), flush=True)
window.show()
pump(1.0, lambda: window.isVisible() and window.frameGeometry() != window.geometry())
print("shown", window.frameGeometry().width(), window.frameGeometry().height(), flush=True)
# The window-manager frame around the smallest window must fit the screen less a task bar.
frame = window.frameGeometry().height() - window.geometry().height()
print("fits", least.width() <= screen.width() and least.height() + frame <= screen.height() - reserved, flush=True)
window.showMaximized()
pump(2.0, lambda: window.isMaximized())
pump(0.3)
view = window.inspect
x, rate = sf.read(clip, dtype="float32", always_2d=True)
x = x.mean(1)[: 3 * rate]
rng = np.random.default_rng(0)
view.show_arrays(x, (x + 0.003 * rng.standard_normal(x.shape)).astype(np.float32))
pump(0.5)

def problems(stage):
    panes = view.panes
    viewport = panes.viewport().rect()
    on_screen = QRect(panes.viewport().mapToGlobal(viewport.topLeft()), viewport.size())
    found = []
    if not screen.contains(on_screen):
        found.append(f"{stage}: the spectrogram area {on_screen} is not on the screen {screen}")
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    for bar_name, bar in (("level", panes.db_bar), ("difference", panes.difference_bar)):
        axis = bar.axis
        if not bar.isVisible() or not axis.isVisible():
            found.append(f"{stage}: the {bar_name} colour bar is hidden")
            continue
        painter = QPainter(image)
        painter.setFont(axis.style["tickFont"] or axis.font())
        specs = axis.generateDrawSpecs(painter)
        metrics = QFontMetrics(painter.font())
        painter.end()
        texts = specs[2] if specs else []
        if len(texts) < 2:
            found.append(f"{stage}: the {bar_name} colour bar has {len(texts)} tick labels")
        for rect, _flags, text in texts:
            box = panes.mapFromScene(axis.mapRectToScene(rect)).boundingRect()
            if not viewport.contains(box):
                found.append(f"{stage}: {bar_name} tick {text!r} at {box} lies outside the view {viewport}")
            if rect.width() + 0.5 < metrics.horizontalAdvance(text):
                found.append(f"{stage}: {bar_name} tick {text!r} is {rect.width():.0f} px wide for "
                             f"{metrics.horizontalAdvance(text)} px of text")
    for plot in panes.plots:
        title = plot.titleLabel
        text = title.item.mapRectToScene(title.item.boundingRect())
        if not plot.sceneBoundingRect().contains(text) or not viewport.contains(panes.mapFromScene(text).boundingRect()):
            found.append(f"{stage}: the title {title.text!r} is cut ({text} in {plot.sceneBoundingRect()})")
    print("checked", stage, len(found), flush=True)
    return found

def settle():
    pump(20.0, lambda: not view.analysing)
    pump(0.4)

found = problems("first")
window.grab().save(str(out / f"wm-{name}.png"), "PNG")
app.primaryScreen().grabWindow(0).save(str(out / f"wm-{name}-screen.png"), "PNG")
set_combo(view.view_panel.window_combo, CODEC_LATTICE)
settle()
print("lattice", view.panes.pair.analysis.short_name, flush=True)
found += problems("codec lattice")
app.primaryScreen().grabWindow(0).save(str(out / f"wm-{name}-lattice.png"), "PNG")
set_combo(view.view_panel.window_combo, "Hann 2048")
settle()
found += problems("back to Hann 2048")
view.view_panel.low_mode_check.setChecked(True)
settle()
found += problems("low-frequency mode")
app.primaryScreen().grabWindow(0).save(str(out / f"wm-{name}-low.png"), "PNG")
window.showNormal()
pump(1.0)
found += problems("normal size")
window.showMaximized()
pump(0.5)
listen = window.views["Listen"]
window.tabs.setCurrentWidget(listen)
pump(0.5)
app.primaryScreen().grabWindow(0).save(str(out / f"wm-{name}-listen.png"), "PNG")
for control in listen.start_controls:
    if control.isVisibleTo(listen):
        where = QRect(control.mapToGlobal(control.rect().topLeft()), control.size())
        if not screen.contains(where):
            found.append(f"listen: {control.objectName() or type(control).__name__} at {where} is off the screen")
print("checked listen", sum(line.startswith("listen") for line in found), flush=True)
# The start page fits: it does not scroll because a taller page (a MUSHRA screen) exists.
print("listen scrolls", listen.pages_scroll.verticalScrollBar().isVisible(), flush=True)
for line in found:
    print("problem", line, flush=True)
window.close()
pump(0.3)
print("closed", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("screen_with_window_manager", SCREEN_SIZES, indirect=True,
                         ids=[f"{w}x{h}" for w, h in SCREEN_SIZES])
def test_every_colour_bar_tick_and_title_is_on_screen_and_whole_at_each_screen_size(screen_with_window_manager):
    """Issue 26: at 1400×860 the colour bars' ticks were cut ("−10" read "−1"), after "codec lattice"
    both bars left the window for good and the titles were cut, and the smallest window (1225×877)
    did not fit a 1366×768 laptop."""
    display, (width, height) = screen_with_window_manager
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = f"{width}x{height}"
    out = subprocess.run([sys.executable, "-c", SCALES, str(SCREENSHOTS), str(REPO / "assets/demo/pluck-demo.flac"),
                          name, str(TASK_BAR)], env=env_for(display), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}"
    lines = out.stdout.splitlines()
    assert "fits True" in lines, out.stdout
    assert "lattice two-band codec lattice" in lines  # the default codec (sgc-12) codes two bands
    for stage in ("first", "codec lattice", "back to Hann 2048", "low-frequency mode", "normal size", "listen"):
        assert f"checked {stage} 0" in lines, "\n".join(line for line in lines if line.startswith("problem"))
    assert "listen scrolls False" in lines
    assert "closed" in lines and "Traceback" not in out.stderr
    for shot in (f"wm-{name}-screen", f"wm-{name}-lattice", f"wm-{name}-low", f"wm-{name}-listen"):
        assert colours(SCREENSHOTS / f"{shot}.png") > 20, shot
