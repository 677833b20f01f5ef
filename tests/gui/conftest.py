"""GUI tests run headless: Qt's offscreen platform is chosen before anything imports Qt.

Without PySide6, pyqtgraph or pytest-qt none of these tests is collected; the Qt-free half of
the views (:mod:`mosapp.views`) is tested in ``tests/views/``, which runs without them. Under CI
(the variable ``CI`` set, tests/helpers.py) a missing one is a failure instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import ci

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# The app keeps the demo study's database and stimuli in the user's data folder: the tests' own.
os.environ["MOSAPP_DATA_DIR"] = tempfile.mkdtemp(prefix="mosapp-gui-tests-")

_MISSING = [m for m in ("PySide6", "pyqtgraph", "pytestqt") if importlib.util.find_spec(m) is None]
collect_ignore = []
if _MISSING:
    if ci():
        pytest.fail(f"CI is set, so the GUI tests must run, but {', '.join(_MISSING)} cannot be imported "
                    "(scripts/setup installs them)", pytrace=False)
    here = os.path.dirname(__file__)
    collect_ignore = [f for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py")]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A prepared DCR study for the Listen tests (prepared once a module; tests copy its folder)."""
    from tests.gui.listen_support import prepare, write_study

    folder = tmp_path_factory.mktemp("listen-template")
    path = write_study(folder)
    prepare(path)
    return folder


@pytest.fixture
def study(template, tmp_path) -> Path:
    """A prepared study of this test's own (a copy of the template's folder)."""
    folder = tmp_path / "study"
    shutil.copytree(template, folder)
    return folder / "gui.toml"


@pytest.fixture(scope="module")
def display():
    """A fresh Xvfb server for this module's tests; its display name (``:N``)."""
    from tests.gui.xvfb import xvfb_display

    with xvfb_display() as name:
        yield name
