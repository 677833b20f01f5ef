"""Background work for the window: a generator run on a thread pool, reported through Qt signals.

The same shape as superqt's ``GeneratorWorker``: the job is a plain generator (see
:mod:`mosapp.views.jobs`) that yields progress and returns its result. The worker drives it on
a pool thread, emits every yielded value as :attr:`GeneratorWorker.progress`, and ends with
exactly one of ``finished(result)``, ``failed(message)`` or ``cancelled()``. Signals reach
slots on the GUI thread as queued calls; the worker never touches a widget.

Cancelling sets a flag that the worker checks after each yielded step, and the job's
:class:`mosapp.core.job.JobControl`, which the library's long loops check inside a step (reading,
encoding, decoding tiles, the phase backends, the metrics): the worker then closes the
generator (its ``finally`` blocks and context managers run) and emits ``cancelled``, within a
fraction of a second at any stage. Those loops also report their own units
(:class:`mosapp.core.job.Progress` of stage :data:`mosapp.core.job.STEP`), which the worker emits
as ``progress`` too. The driving is :func:`mosapp.core.job.drive`'s.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from mosapp.core.errors import MosappError
from mosapp.core.job import Cancelled, JobControl, drive


def describe_error(exc: BaseException) -> str:
    """One sentence for the window: a :class:`MosappError`'s own, or a bug's type and text."""
    if isinstance(exc, MosappError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "The computer ran out of memory for this run; try a shorter clip or the cpu device."
    return f"Unexpected error ({type(exc).__name__}: {exc}); this is a bug in mosapp, please report it."


class _MainThreadCollector:
    """Python's cyclic garbage collection on the GUI thread only, while any worker runs.

    A collection runs in whichever thread happens to allocate when a threshold is passed. Run in a
    worker thread, it can free a Qt object there. Its C++ destructor then takes a Qt lock and waits
    for the GIL while the GUI thread, holding the GIL, waits for that lock to delete a widget.
    Seen: a Results report built in pandas on a pool thread, stuck for good with the GUI thread in
    ``QObject::~QObject`` (py-spy --native). So while a worker runs, automatic collection is off and
    a timer on the GUI thread collects whatever generations Python would have (pyqtgraph's
    ``GarbageCollector`` does the same for a whole application); when the last worker has ended,
    automatic collection is on again.
    """

    INTERVAL_MS = 200

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._disabled_here = False
        self._timer: QTimer | None = None

    def started(self) -> None:
        """A worker starts (called on the GUI thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            self._running += 1
        if gc.isenabled():
            gc.disable()
            self._disabled_here = True
        if self._disabled_here and self._timer is None:
            # A new timer each time: one kept from an earlier application object may never fire again.
            self._timer = QTimer()
            self._timer.setInterval(self.INTERVAL_MS)
            self._timer.timeout.connect(self.tick)
            self._timer.start()

    def ended(self) -> None:
        """A worker has ended (called on its thread)."""
        with self._lock:
            self._running = max(0, self._running - 1)

    def tick(self) -> None:
        """On the GUI thread (each timer tick, and when a worker's ``done`` arrives): collect what
        Python's thresholds ask for; on again when no worker runs."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = max((g for g in range(3) if counts[g] > thresholds[g]), default=-1)
        if generation >= 0:
            gc.collect(generation)
        with self._lock:
            idle = self._running == 0
        if idle and self._disabled_here:
            gc.enable()
            self._disabled_here = False
            if self._timer is not None:
                self._timer.stop()
                self._timer.deleteLater()
                self._timer = None


_COLLECTOR = _MainThreadCollector()


class GeneratorWorker(QObject):
    """Runs ``make_generator()`` on a :class:`QThreadPool` thread.

    Signals:
        progress(object): each value the generator yields, and the
            :class:`mosapp.core.job.Progress` (stage :data:`~mosapp.core.job.STEP`) that library
            calls report inside a step.
        finished(object): the generator's return value.
        failed(str): a readable message (:func:`describe_error`); bugs also print a traceback.
        cancelled(): the generator was closed after :meth:`cancel`.
        done(): after any of the three above (for bookkeeping).
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()

    def __init__(self, make_generator: Callable[[], Generator[Any, Any, Any]], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._make_generator = make_generator
        self._cancel = threading.Event()
        self.control = JobControl(on_progress=lambda value: self._emit("progress", value))
        self._finished = threading.Event()
        self._started = False

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_running(self) -> bool:
        return self._started and not self._finished.is_set()

    def start(self, pool: QThreadPool | None = None) -> None:
        """Queue the job on ``pool`` (the global pool by default).

        The pool is handed the callable itself, not a Python-made ``QRunnable``: the pool
        deletes its runnables in C++ when they end, and a Python wrapper kept past that is a
        stale entry in PySide's object map; a new Qt object later allocated at the same
        address was then handed back as that ``QRunnable`` (seen as pyqtgraph's
        ``'QRunnable' object has no attribute 'children'`` while a window was being built).
        """
        self._started = True
        _COLLECTOR.started()
        self.done.connect(_COLLECTOR.tick)  # queued to the GUI thread: automatic collection back on there
        (pool or QThreadPool.globalInstance()).start(self._run)

    def cancel(self) -> None:
        """Ask the job to stop at its next step or check (returns at once)."""
        self._cancel.set()
        self.control.cancel()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job has ended; False on timeout."""
        return self._finished.wait(timeout_s)

    def _emit(self, name: str, *args) -> None:
        """Emit a signal unless the window that owned this worker is gone (then the job stops:
        nobody is left to see it). Qt deletes a worker with its parent view, while the thread runs on."""
        try:
            getattr(self, name).emit(*args)
        except RuntimeError:  # "Signal source has been deleted" / "Internal C++ object already deleted"
            self._cancel.set()
            self.control.cancel()

    def _run(self) -> None:
        try:
            with self.control.active():
                gen = self._make_generator()
            # Checks the control (which cancel() sets) between steps; closes the generator on any end
            # but its own.
            result = drive(gen, lambda value: self._emit("progress", value), self.control)
        except Cancelled:
            self._emit("cancelled")
        except BaseException as exc:  # noqa: BLE001 — every failure must reach the window
            if not isinstance(exc, MosappError):
                traceback.print_exc(file=sys.stderr)
            self._emit("failed", describe_error(exc))
        else:
            self._emit("finished", result)
        finally:
            _COLLECTOR.ended()
            self._finished.set()
            self._emit("done")


def run_in_background(make_generator: Callable[[], Generator[Any, Any, Any]], *, on_progress=None, on_finished=None,
                      on_failed=None, on_cancelled=None, parent: QObject | None = None,
                      pool: QThreadPool | None = None) -> GeneratorWorker:
    """Create, connect and start a :class:`GeneratorWorker`; keep the returned object alive."""
    worker = GeneratorWorker(make_generator, parent)
    for signal, slot in ((worker.progress, on_progress), (worker.finished, on_finished),
                         (worker.failed, on_failed), (worker.cancelled, on_cancelled)):
        if slot is not None:
            signal.connect(slot)
    worker.start(pool)
    return worker


class WorkerSet:
    """The workers of one view: each kept (and referenced) until it is done; all cancelled and
    waited for when the view shuts down.

    Args:
        parent: the QObject that owns the workers (the view).
    """

    def __init__(self, parent: QObject) -> None:
        self.parent = parent
        self._workers: set[GeneratorWorker] = set()

    def add(self, make_generator: Callable[[], Generator[Any, Any, Any]], *,
            finished: Callable[[GeneratorWorker, Any], None] | None = None,
            failed: Callable[[GeneratorWorker, str], None] | None = None) -> GeneratorWorker:
        """A worker for ``make_generator`` (not started), its end connected to ``finished(worker, value)``
        and ``failed(worker, message)``."""
        worker = GeneratorWorker(make_generator, self.parent)
        if finished is not None:
            worker.finished.connect(lambda value, w=worker: finished(w, value))
        if failed is not None:
            worker.failed.connect(lambda message, w=worker: failed(w, message))
        worker.done.connect(lambda w=worker: self._forget(w))
        self._workers.add(worker)
        return worker

    def _forget(self, worker: GeneratorWorker) -> None:
        self._workers.discard(worker)
        worker.deleteLater()

    def shutdown(self, timeout_s: float) -> None:
        """Cancel every worker, then wait for their threads (up to ``timeout_s`` each)."""
        for worker in list(self._workers):
            worker.cancel()
        for worker in list(self._workers):
            worker.wait(timeout_s)


__all__ = ["GeneratorWorker", "WorkerSet", "describe_error", "run_in_background"]
