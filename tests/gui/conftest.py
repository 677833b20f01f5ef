"""GUI tests run headless: Qt's offscreen platform is chosen before anything imports Qt.

Without PySide6, pyqtgraph or pytest-qt none of these tests is collected; the Qt-free half of
the views (:mod:`mosapp.views`) is tested in ``tests/views/``, which runs without them.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile

os.environ["QT_QPA_PLATFORM"] = "offscreen"
# The app keeps the demo study's database and stimuli in the user's data folder: the tests' own.
os.environ["MOSAPP_DATA_DIR"] = tempfile.mkdtemp(prefix="mosapp-gui-tests-")

_MISSING = [m for m in ("PySide6", "pyqtgraph", "pytestqt") if importlib.util.find_spec(m) is None]
collect_ignore = []
if _MISSING:
    here = os.path.dirname(__file__)
    collect_ignore = [f for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py")]
