"""Cooperative cancellation and fine-grained progress for long library calls (no Qt).

The desktop app runs a job (a generator, see :mod:`mosapp.views.jobs`) on a worker thread and
can only stop it between two of its steps. Some steps are single library calls that take
minutes on a long input: reading and resampling, a codec's encode, decoding tiles, a phase
backend on a 32-second block, the metrics. Those calls check this module's flag and report
their own units as they go::

    control = JobControl(on_progress=lambda p: ...)     # the worker's
    with control.active():                              # on the thread that runs the job
        codec.encode(samples, config)                   # calls job.check() and job.report(...)
    control.cancel()                                    # from any thread: the next check raises

:func:`check` raises :class:`Cancelled` once :meth:`JobControl.cancel` was called;
:func:`report` passes ``(done, total, unit)`` of the innermost loop to the worker. Outside a
job (the command line, the tests) both do nothing and cost one thread-local lookup.

Compiled kernels cannot call Python; they read :func:`cancel_flag`, a one-byte array that
:meth:`JobControl.cancel` sets to 1, and return early (the caller then calls :func:`check`).

A job itself is a generator that yields :class:`Progress` (one type for every layer: the
pipeline's frames, the metrics' chunks, a study's stimuli, the app's stages, and the units a
library call reports inside a step, whose ``stage`` is :data:`STEP`) and returns its result.
:func:`drive` runs one to the end; :func:`relay` re-yields another's events, changed, from
inside a generator (``result = yield from relay(inner, convert)``)::

    result = drive(roundtrip(audio), on_progress=print)      # the command line, the tests
    result = drive(make_job(), on_progress=emit, control=c)  # the app's worker thread
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

P = TypeVar("P")
Q = TypeVar("Q")
R = TypeVar("R")

#: A flag that is never set, for kernels run outside a job.
_NEVER = np.zeros(1, dtype=np.uint8)
#: At most one report per this many seconds reaches the worker (a loop may report per tile).
REPORT_INTERVAL_S = 0.05


class Cancelled(BaseException):
    """The job was cancelled: not an error, nothing to report but "Cancelled".

    A BaseException (like KeyboardInterrupt), so that ``except Exception`` blocks that keep a
    run going past a failed optional step (a metric, a note) let it through."""


#: The ``stage`` of the progress a library call reports inside a step (:func:`report`): its
#: own units ("tiles analysed", "frames decoded"), which belong to whatever step is running.
STEP = "step"


@dataclass(frozen=True)
class Progress:
    """One progress event: ``done`` of ``total`` ``unit`` of ``stage``.

    Attributes:
        stage: what is being done: ``"frames"`` and ``"metrics"`` (a round trip), ``"metrics"``
            (scoring), ``"prepare"`` (a study's stimuli), the app's stages (``"read"``,
            ``"encode"``, ``"decode"`` …), or :data:`STEP` (a library call's own units).
        done, total: how far.
        unit: what ``done`` counts ("frames", "chunks", "stimuli", "tiles analysed" …; "" when
            a stage is counted as one thing that starts and ends).
        detail: words for a person (a codec's name, "mel distance", "clip / condition" …).
    """

    stage: str
    done: int
    total: int
    unit: str = ""
    detail: str = ""


class JobControl:
    """A job's cancel flag and progress sink, shared between the GUI and the worker thread.

    ``on_progress`` receives the :class:`Progress` of :func:`report` (``stage`` :data:`STEP`)
    and whatever :func:`publish` hands over."""

    def __init__(self, on_progress: Callable[[Any], None] | None = None) -> None:
        self._event = threading.Event()
        self.flag = np.zeros(1, dtype=np.uint8)
        self.on_progress = on_progress
        self._last_report = 0.0
        self._last_unit = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Ask the job to stop; its next :func:`check` raises :class:`Cancelled`."""
        self._event.set()
        self.flag[0] = 1

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def report(self, done: int, total: int, unit: str, *, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        # Throttled, except the first report of a new unit: a step that starts says so at once,
        # however soon after the previous step's last report.
        if not force and done < total and unit == self._last_unit and now - self._last_report < REPORT_INTERVAL_S:
            return
        self._last_report = now
        self._last_unit = unit
        self.on_progress(Progress(STEP, int(done), int(total), unit))

    @contextmanager
    def active(self) -> Iterator[JobControl]:
        """Make this the control of the current thread's library calls (nests; restores the outer one)."""
        outer = getattr(_local, "control", None)
        _local.control = self
        try:
            yield self
        finally:
            _local.control = outer


_local = threading.local()


def current() -> JobControl | None:
    """The control of the job running on this thread, or None."""
    return getattr(_local, "control", None)


def check() -> None:
    """Raise :class:`Cancelled` if the job running on this thread was cancelled."""
    control = getattr(_local, "control", None)
    if control is not None:
        control.check()


def report(done: int, total: int, unit: str) -> None:
    """Tell the job running on this thread that ``done`` of ``total`` ``unit`` are done
    (also checks for cancellation, so every reporting loop is a cancellable one)."""
    control = getattr(_local, "control", None)
    if control is not None:
        control.check()
        control.report(done, total, unit)


def call(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` for a library call that cannot check the flag itself.

    In a job it runs on a thread of its own while this one waits in slices of 50 ms, so a
    cancel raises :class:`Cancelled` at once; the abandoned call finishes in the background
    and its result is dropped. Outside a job it is a plain call.
    """
    control = getattr(_local, "control", None)
    if control is None:
        return fn(*args, **kwargs)
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 — handed back to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="mosapp-call", daemon=True).start()
    while not done.wait(0.05):
        control.check()
    if "error" in box:
        raise box["error"]
    return box["value"]


def publish(value: object) -> None:
    """Hand ``value`` to the job running on this thread as progress, unthrottled (e.g. a first
    picture of a file still being read); nothing outside a job."""
    control = getattr(_local, "control", None)
    if control is not None:
        control.check()
        if control.on_progress is not None:
            control.on_progress(value)


def cancel_flag() -> np.ndarray:
    """uint8 array of one element that becomes 1 when this thread's job is cancelled
    (for compiled loops; a flag that stays 0 outside a job)."""
    control = getattr(_local, "control", None)
    return control.flag if control is not None else _NEVER


def drive(gen: Generator[P, Any, R], on_progress: Callable[[P], None] | None = None,
          control: JobControl | None = None) -> R:
    """Run the generator ``gen`` to its end and return what it returns, passing each value it
    yields to ``on_progress``.

    With ``control``, the generator runs as that control's job (:meth:`JobControl.active`: the
    library calls inside it check and report to it) and stops between two steps once
    :meth:`JobControl.cancel` was called: :class:`Cancelled` is raised. Whenever ``gen`` does not
    finish (cancelled, failed, or ``on_progress`` raised) it is closed, so its ``finally`` blocks
    and context managers run at once.
    """
    with control.active() if control is not None else nullcontext():
        try:
            while True:
                if control is not None:
                    control.check()
                try:
                    value = next(gen)
                except StopIteration as stop:
                    return stop.value
                if on_progress is not None:
                    on_progress(value)
        except BaseException:
            gen.close()
            raise


def relay(gen: Generator[P, Any, R], convert: Callable[[P], Q]) -> Generator[Q, None, R]:
    """``yield from gen`` with every yielded value passed through ``convert`` (e.g. a codec's
    frames as the app's "decode" stage); returns what ``gen`` returns. Closing this generator
    closes ``gen``."""
    try:
        while True:
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            yield convert(value)
    finally:
        gen.close()


__all__ = ["Cancelled", "JobControl", "Progress", "REPORT_INTERVAL_S", "STEP", "call", "cancel_flag", "check",
           "current", "drive", "publish", "relay", "report"]
