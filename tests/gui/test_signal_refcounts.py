"""Worker signals must not leak references to ``True`` or ``None``.

PySide6 6.12.0 on Python 3.11 dropped one reference to ``True`` on every ``Signal.emit()`` and
one to ``None`` on every ``processEvents()``; after a few hundred emits (minutes into a long
Inspect run) the interpreter aborted with ``Fatal Python error: bool_dealloc``.
constraints.txt pins a release without the leak; this test fails on a release that has it.
It runs in a process of its own, so an abort is a failed test, not a dead test session.
"""

from __future__ import annotations

import os
import subprocess
import sys

EMITS = 30_000

CODE = f"""
import sys
from PySide6.QtCore import QCoreApplication, QThreadPool
from mosapp.gui.workers import GeneratorWorker

app = QCoreApplication(["refcounts"])
seen = []

def job():
    for i in range({EMITS}):
        yield (True, None, i) if i % 2 else {{"stage": "decode", "done": i, "total": {EMITS}}}
    return None

# Warm up (first emits create Qt's metatypes), then count from here.
for _ in range(50):
    app.processEvents()
true0, none0 = sys.getrefcount(True), sys.getrefcount(None)
worker = GeneratorWorker(job)
worker.progress.connect(lambda value: seen.append(1))
worker.start()
while not worker.wait(0.0):
    app.processEvents()
QThreadPool.globalInstance().waitForDone()
for _ in range(50):
    app.processEvents()
print(len(seen), sys.getrefcount(True) - true0, sys.getrefcount(None) - none0)
"""


def test_tens_of_thousands_of_worker_emits_keep_true_and_none_refcounts_stable():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, f"exit {out.returncode}: {out.stderr[-2000:]}"
    seen, d_true, d_none = (int(v) for v in out.stdout.split())
    assert seen == EMITS
    # A leak drops one reference per emit / per processEvents: tens of thousands. Allow a little
    # noise from objects that come and go.
    assert abs(d_true) < 100, f"True lost {-d_true} references over {EMITS} emits"
    assert abs(d_none) < 100, f"None lost {-d_none} references over {EMITS} emits"
