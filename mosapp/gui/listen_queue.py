"""The Listen view's database work off the GUI thread: one job at a time on a thread of its own.

Every :class:`~mosapp.study.listening.ListenController` call that touches the database (open, start,
rate, end a sitting …) is submitted here: it runs after the jobs before it, on the queue's single
worker thread, and its result (or the one sentence of a :class:`~mosapp.study.errors.StudyError`)
comes back on the GUI thread. While a job runs or waits (:attr:`ControllerQueue.busy`) the window
keeps drawing and playing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThreadPool

from mosapp.gui.workers import GeneratorWorker


def _call(fn: Callable[[], Any]) -> Callable[[], Generator[None, None, Any]]:
    """``fn`` as the generator job a :class:`GeneratorWorker` runs (it yields nothing)."""
    def job() -> Generator[None, None, Any]:
        yield from ()
        return fn()
    return job


class ControllerQueue(QObject):
    """Jobs run one after another on one worker thread; ``after_each`` runs on the GUI thread after every job."""

    def __init__(self, parent: QObject, *, after_each: Callable[[], None] = lambda: None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._jobs: deque[tuple[Callable[[], Any], Callable[[Any], None], Callable[[str], None]]] = deque()
        self._job: GeneratorWorker | None = None
        self._after_each = after_each
        self.closed = False

    @property
    def busy(self) -> bool:
        """A job is running or queued."""
        return self._job is not None or bool(self._jobs)

    def submit(self, call: Callable[[], Any], on_done: Callable[[Any], None], on_failed: Callable[[str], None]) -> None:
        """Run ``call`` on the worker thread after the jobs before it; ``on_done(result)`` or
        ``on_failed(message)`` then runs on the GUI thread (neither once the queue is closed)."""
        self._jobs.append((call, on_done, on_failed))
        if self._job is None:
            self._run_next()

    def _run_next(self) -> None:
        if not self._jobs or self.closed:
            return
        call, on_done, on_failed = self._jobs.popleft()
        worker = GeneratorWorker(_call(call), self)
        worker.finished.connect(lambda result: self.closed or on_done(result))
        worker.failed.connect(lambda message: self.closed or on_failed(message))
        worker.done.connect(self._job_done)
        worker.done.connect(worker.deleteLater)
        self._job = worker
        worker.start(self._pool)

    def _job_done(self) -> None:
        self._job = None
        self._run_next()
        if not self.closed:
            self._after_each()

    def close(self, last: Callable[[], Any], wait_s: float) -> None:
        """Drop the queued jobs, wait for the one in flight (at most ``wait_s``), then run ``last`` on the
        worker thread and wait for it too; no callback runs after this."""
        self._jobs.clear()
        if self._job is not None:
            self._job.wait(wait_s)
        self.closed = True
        worker = GeneratorWorker(_call(last))
        worker.start(self._pool)
        worker.wait(wait_s)
        self._job = None


__all__ = ["ControllerQueue"]
