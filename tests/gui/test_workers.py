"""mosapp.gui.workers: cyclic garbage collection stays on the GUI thread while a worker runs."""

from __future__ import annotations

import gc
import threading

from mosapp.gui.workers import _COLLECTOR, run_in_background


class _Cycle:
    def __init__(self) -> None:
        self.me = self


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
    # Garbage made meanwhile is still collected, on the GUI thread: what the collector's timer calls
    # collects the generations Python's thresholds ask for. (Called here, not waited for: in the whole
    # suite, likely, other threads' deallocations pulled the young generation's count back under its threshold
    # before a tick came: a wait for the timer's collection timed out there once in three runs.)
    collected: list[bool] = []
    gc.callbacks.append(lambda phase, info: collected.append(threading.current_thread() is threading.main_thread()))
    try:
        for _ in range(3 * gc.get_threshold()[0]):
            _Cycle()
        _COLLECTOR.tick()
    finally:
        gc.callbacks.pop()
    assert collected and all(collected) and not gc.isenabled()  # collected, and still off while the worker runs
    release.set()
    qtbot.waitUntil(lambda: results == ["ok"], timeout=5000)
    assert worker.wait(5)
    qtbot.waitUntil(gc.isenabled, timeout=5000)  # on again once no worker runs
