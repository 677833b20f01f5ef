"""Whether Qt can open a window here, asked before Qt starts (mosapp.views.platform), and the
views' Qt-free half importing without Qt: real sockets and a real ``ldd``, no display needed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mosapp.views.platform import missing_xcb_libraries, x_display_reachable, xcb_plugin


def test_the_core_and_the_views_do_not_import_qt():
    """Importing mosapp, its command line and the views' Qt-free half stays Qt-free (the GUI is imported lazily)."""
    code = ("import sys, mosapp, mosapp.cli.main, mosapp.views.jobs, mosapp.views.spectrogram_data, "
            "mosapp.views.inspect_controller, mosapp.views.results, mosapp.views.platform; "
            "print(any(m.startswith(('PySide6', 'pyqtgraph', 'shiboken6')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _free_display() -> int:
    """A display number with neither a local socket nor a TCP port answering."""
    for n in range(900, 1000):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not x_display_reachable(f"127.0.0.1:{n}", 0.2):
            return n
    pytest.fail("no free display number between :900 and :999")


def test_a_display_nobody_answers_on_is_unreachable():
    n = _free_display()
    assert not x_display_reachable(f":{n}")
    assert not x_display_reachable(f"unix:{n}.0", 0.5)
    assert not x_display_reachable(f"127.0.0.1:{n}", 0.5)


def test_a_tcp_display_that_answers_is_reachable():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        for n in range(900, 1000):
            try:
                server.bind(("127.0.0.1", 6000 + n))
                break
            except OSError:
                continue
        else:
            pytest.fail("no free port between 6900 and 6999")
        server.listen(1)
        assert x_display_reachable(f"127.0.0.1:{n}")
        assert x_display_reachable(f"127.0.0.1:{n}.0")


def test_a_name_that_is_no_display_is_left_to_qt():
    assert x_display_reachable("not a display")  # Qt then says what is wrong with it


def test_missing_libraries_are_those_ldd_cannot_find(tmp_path):
    """A plugin linked against a library that is gone since: ldd names it (the xcb plugin's case)."""
    cc, ldd = shutil.which("cc"), shutil.which("ldd")
    if cc is None or ldd is None:
        pytest.skip("needs a C compiler and ldd to build a plugin with a missing library")
    (tmp_path / "gone.c").write_text("int gone(void) { return 1; }\n")
    (tmp_path / "plugin.c").write_text("int gone(void);\nint plugin(void) { return gone(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "libmosappgone.so.1"), str(tmp_path / "gone.c"),
                    "-Wl,-soname,libmosappgone.so.1"], check=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(tmp_path / "libplugin.so"), str(tmp_path / "plugin.c"),
                    str(tmp_path / "libmosappgone.so.1")], check=True)
    (tmp_path / "libmosappgone.so.1").unlink()
    assert missing_xcb_libraries(tmp_path / "libplugin.so") == ["libmosappgone.so.1"]
    assert missing_xcb_libraries(Path(sys.executable)) == []  # the interpreter runs: nothing it links is missing
    plugin = xcb_plugin()
    assert plugin is None or plugin.name == "libqxcb.so"
