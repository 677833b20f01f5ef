"""mosapp.gui.workers: cyclic garbage collection stays on the GUI thread while a worker runs."""

from __future__ import annotations

import gc
import threading

from mosapp.gui.workers import run_in_background


def test_a_running_worker_leaves_collection_to_the_gui_thread(qtbot):
    assert gc.isenabled()
    release = threading.Event()
    seen: dict[str, bool] = {}

    def job():
        seen["enabled_in_worker"] = gc.isenabled()
        release.wait(10)
        yield 1
        return "ok"

    results = []
    worker = run_in_background(job, on_finished=results.append)
    qtbot.waitUntil(lambda: "enabled_in_worker" in seen, timeout=5000)
    assert seen["enabled_in_worker"] is False and not gc.isenabled()
    release.set()
    qtbot.waitUntil(lambda: results == ["ok"], timeout=5000)
    assert worker.wait(5)
    qtbot.waitUntil(gc.isenabled, timeout=5000)  # on again once no worker runs
