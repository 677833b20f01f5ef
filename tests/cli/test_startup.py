"""The command line starts without the libraries only some commands need.

``mosapp --help``, ``encode`` or ``codecs`` must not pay for the study stack (SQLAlchemy,
pandas, matplotlib, statsmodels: ~1.7 s) or for training's compressai (~2.6 s); those load
when ``mosapp study`` or ``mosapp train`` runs. Checked in a fresh interpreter by what it
imported, not by a clock.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY_FOR_OTHERS = ("sqlalchemy", "pandas", "matplotlib", "statsmodels", "alembic", "compressai", "mosapp.study",
                    "mosapp.training.loop", "PySide6", "pyqtgraph")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_building_the_parser_loads_no_study_training_or_qt_library():
    loaded = loaded_after("from mosapp.cli.main import build_parser\nbuild_parser()")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY_FOR_OTHERS or m in HEAVY_FOR_OTHERS}
    assert "mosapp.cli.study_parser" in loaded


def test_a_study_command_loads_the_study_stack():
    # The other side: the lazy import really brings in what `mosapp study` runs on.
    loaded = loaded_after("import contextlib, io\nfrom mosapp.cli.main import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
                          "    main(['study', 'status', 'no-such-study'])")
    assert {"mosapp.cli.study", "mosapp.study.engine", "sqlalchemy"} <= loaded
