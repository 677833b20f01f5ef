"""Where many independent pieces of work run: Dask distributed, on this machine or a cluster.

``mosapp evaluate`` and ``mosapp study prepare`` hand their (clip, codec) work to an
:class:`Engine`:

* by default a local cluster (``distributed.LocalCluster``) of worker *processes*, one per core
  (``workers``), each with one thread: a codec's torch and numba code then has a core to itself,
  and a worker keeps what it loaded (a model's weights, a read excerpt) for the next task;
* with ``scheduler="tcp://HOST:PORT"``, the cluster a user started with ``dask scheduler`` and
  ``dask worker`` (on any machines that see the same files and have mosapp installed);
* with ``workers=0``, this process alone (one piece after the other): no cluster to start, for a
  handful of pieces and for debugging.

GPU work: a task of a learned codec asks for the Dask resource ``GPU`` when the run's device is
CUDA, so only workers started with it (``dask worker --resources GPU=1``; the local cluster
declares one per worker when torch sees a GPU) take it.

:meth:`Engine.map_unordered` keeps a bounded window of tasks in flight (a few per worker
thread), so memory does not grow with the run and a stop cancels little; it yields each result
as it arrives, checks the job's cancel flag (:func:`mosapp.core.job.check`) between waits, and a
Ctrl+C (KeyboardInterrupt) cancels what is in flight and closes the cluster at once.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from mosapp.core import job
from mosapp.core.errors import MosappError

T = TypeVar("T")
R = TypeVar("R")

#: Tasks in flight per worker thread (the window of :meth:`Engine.map_unordered`).
TASKS_PER_THREAD = 2
#: Seconds a wait for results lasts before the cancel flag is looked at again.
POLL_S = 0.2
#: Seconds to connect to a scheduler before saying it does not answer.
CONNECT_TIMEOUT_S = 10.0


class EngineError(MosappError):
    """The cluster cannot be started or reached."""


@dataclass
class Outcome(Generic[T, R]):
    """One piece of work done: its item, and its result or the exception it raised."""

    item: T
    result: R | None = None
    error: BaseException | None = None


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _cuda_count() -> int:
    try:
        import torch  # noqa: PLC0415 — torch is loaded by every worker anyway; here only to count GPUs

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 — a broken CUDA install means no GPU, not a failed run
        return 0


def _kill_workers(cluster: Any) -> None:
    """SIGKILL the local cluster's worker processes, their nannies told first not to start new ones."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        pid = getattr(nanny, "pid", None)
        try:
            nanny.close_gracefully(reason="mosapp-done")
        except Exception:  # noqa: BLE001 — a nanny already gone needs no telling
            pass
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Engine:
    """A context manager that starts (or connects to) the cluster and runs work on it.

    Args:
        workers: worker processes of the local cluster (default one per core); 0: this process.
        scheduler: address of an existing Dask scheduler; ``workers`` is then ignored.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        if workers is not None and workers < 0:
            raise EngineError(f"--workers must be 0 or more, not {workers}.")
        self.scheduler = scheduler
        self.workers = default_workers() if workers is None else workers
        self.client: Any = None
        self._cluster: Any = None

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.workers == 0

    def __enter__(self) -> Engine:
        if self.in_process:
            return self
        from distributed import Client, LocalCluster  # noqa: PLC0415 — dask loads only when work runs on it

        try:
            if self.scheduler is not None:
                self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            else:
                gpus = _cuda_count()
                # dashboard_address ":0": the scheduler's HTTP server (health routes; a dashboard only where
                # bokeh is installed) on a free port, instead of a warning when 8787 is taken.
                self._cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR, resources={"GPU": 1} if gpus else None,
                )
                self.client = Client(self._cluster, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            where = f"the Dask scheduler {self.scheduler}" if self.scheduler else "a local Dask cluster"
            raise EngineError(f"Cannot reach {where} ({exc}); start it with `dask scheduler` and "
                              f"`dask worker ADDRESS`, or leave --scheduler out to use this machine.") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and the local cluster.

        The local workers are killed first: a graceful close waits seconds for each worker (longer on
        a busy machine), there is nothing in them to save (every result that arrived is committed by
        the caller), and a Ctrl+C or a cancel then ends the command within a second instead of
        waiting for pairs in flight.
        """
        client, cluster = self.client, self._cluster
        self.client = self._cluster = None
        # Killed workers break their connections on purpose: what Dask logs about that (a
        # CommClosedError's traceback at INFO, from a sender still running once the cluster has
        # put its handlers' levels back) is not news for the user. So Dask's logger stays at ERROR
        # (the cluster's own silence_logs) from here on.
        dask_log = logging.getLogger("distributed")
        level = dask_log.level if cluster is None else max(dask_log.getEffectiveLevel(), logging.ERROR)
        if cluster is not None:
            dask_log.setLevel(logging.CRITICAL)
            _kill_workers(cluster)
        try:
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 — closing a cluster that is already gone must not hide why we stop
                    pass
            if cluster is not None:
                try:
                    cluster.close()
                except Exception:  # noqa: BLE001 — as above
                    pass
        finally:
            dask_log.setLevel(level)

    def threads(self) -> int:
        """Worker threads the work is spread over (1 in this process)."""
        if self.client is None:
            return 1
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def describe(self) -> str:
        """Where the work runs, for the run's record and progress line."""
        if self.client is None:
            return "this process"
        where = self.scheduler or "a local cluster"
        return f"{where}, {self.threads()} worker thread(s)"

    def map_unordered(self, fn: Callable[[T], R], items: Iterable[T], *,
                      resources: Callable[[T], dict[str, float] | None] | None = None) -> Iterator[Outcome[T, R]]:
        """``fn(item)`` for every item, yielded as each finishes (in this process: in order).

        ``fn`` must be a module-level function (workers import it). An exception in ``fn`` comes
        back as the outcome's ``error``; the rest go on.
        """
        if self.client is None:
            for item in items:
                job.check()
                try:
                    yield Outcome(item, fn(item))
                except (Exception, job.Cancelled) as exc:
                    if isinstance(exc, job.Cancelled):
                        raise
                    yield Outcome(item, error=exc)
            return
        from distributed import as_completed  # noqa: PLC0415 — see __enter__

        pending = iter(items)
        window = TASKS_PER_THREAD * self.threads() + 1
        futures: dict[Any, T] = {}
        done = as_completed(loop=self.client.loop)

        def submit_next() -> bool:
            try:
                item = next(pending)
            except StopIteration:
                return False
            extra = resources(item) if resources is not None else None
            future = self.client.submit(fn, item, pure=False, resources=extra or None)
            futures[future] = item
            done.add(future)
            return True

        try:
            while len(futures) < window and submit_next():
                pass
            while futures:
                job.check()
                batch = done.next_batch(block=False)
                if not batch:
                    time.sleep(POLL_S / 4)
                    t0 = time.monotonic()
                    while not done.has_ready() and time.monotonic() - t0 < POLL_S:
                        time.sleep(0.01)
                    continue
                for future in batch:
                    item = futures.pop(future)
                    if future.status == "finished":
                        outcome: Outcome[T, R] = Outcome(item, future.result())
                    else:
                        outcome = Outcome(item, error=future.exception())
                    future.release()
                    submit_next()
                    yield outcome
        finally:
            if futures:
                self.client.cancel(list(futures), force=True)
            done.clear()


__all__ = ["Engine", "EngineError", "Outcome", "default_workers"]
