"""Phase reconstruction and synthesis of a whole magnitude spectrogram, block by block.

:func:`invert_magnitude` is what every decoder of a magnitude image and the round trip
(:mod:`mosapp.pipeline`) run after their own analysis: the configured phase backend
(:func:`mosapp.phase.get_backend`) on blocks of frames with context either side, each
block seeded by the last committed frames of the one before, and the overlap-add of the
committed frames into the periodic waveform.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, TypeVar

import torch

from mosapp.core import dsp, job
from mosapp.core.config import PipelineConfig, StftGeometry
from mosapp.core.job import Progress
from mosapp.phase import get_backend, supports_blocks

R = TypeVar("R")


class StageTimer:
    """Seconds spent per named stage (``analysis``, ``phase``, ``synthesis`` …), summed over
    every time a stage runs; waits for the GPU before a stage ends, so its time is its own."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.totals: dict[str, float] = {}

    def stage(self, name: str) -> _Stage:
        """``with timer.stage(name):`` adds the block's time to ``totals[name]``."""
        return _Stage(self, name)


class _Stage:
    def __init__(self, timer: StageTimer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.timer.device.type == "cuda":
            torch.cuda.synchronize(self.timer.device)
        self.timer.totals[self.name] = self.timer.totals.get(self.name, 0.0) + time.perf_counter() - self.start


#: Allocations at least this large get their own mapping from glibc, returned when freed.
MMAP_THRESHOLD_BYTES = 8 << 20
_malloc_tuned = False


def return_large_blocks_to_the_system() -> None:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` (once per process, Linux).

    A reconstruction allocates and frees block-sized arrays (tens of MB: spectra, images,
    coefficients) on three threads. glibc raises its mmap threshold to the largest block
    freed (up to 32 MB), after which such arrays come from the threads' heaps, which
    fragment and are not given back: a 2-minute round trip peaked 226 MB higher (1051 MB
    against 825 MB). A fixed threshold keeps every large array its own mapping, unmapped
    when freed; 8 MB rather than less, because every mapping is faulted in afresh (1 MB cost
    a 10-minute round trip 27 s more system time). Elsewhere (no glibc) this does nothing.
    """
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, MMAP_THRESHOLD_BYTES)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _one_torch_thread() -> None:
    torch.set_num_threads(1)  # OpenMP's thread count is per thread: this one's only


def torch_pool(workers: int, device: torch.device, name: str) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads whose torch operations run on one thread each (on the CPU).

    On a machine of few cores the pipeline already keeps every core busy with its own
    threads; torch's intra-op threads on top of them only wait for one another (a batched
    real FFT took 10 ms with two intra-op threads on a busy 2-core machine, 1 ms with one).
    """
    initializer = _one_torch_thread if device.type == "cpu" else None
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name, initializer=initializer)


def in_this_job() -> Callable[[Callable[..., R]], Callable[..., R]]:
    """A decorator that runs a function, on whatever thread, as the calling thread's job
    (:func:`mosapp.core.job.current`), so that its checks see a cancel and raise."""
    control = job.current()

    def bind(fn: Callable[..., R]) -> Callable[..., R]:
        def run(*args: Any) -> R:
            with control.active() if control is not None else nullcontext():
                return fn(*args)
        return run

    return bind


def frame_blocks(n_frames: int, block_frames: int, context_frames: int) -> Iterator[tuple[int, int, int, int]]:
    """(core_start, core_stop, start, stop) for each block; ``[start, stop)`` adds context."""
    b0 = 0
    while b0 < n_frames:
        b1 = min(b0 + block_frames, n_frames)
        yield b0, b1, max(0, b0 - context_frames), min(n_frames, b1 + context_frames)
        b0 = b1


def invert_magnitude(
    magnitude_frames: Callable[[int, int], torch.Tensor],
    n_frames: int,
    length: int,
    geometry: StftGeometry,
    config: PipelineConfig,
    *,
    device: torch.device,
    timer: StageTimer | None = None,
    on_final: Callable[[torch.Tensor, int], None] | None = None,
    out: torch.Tensor | None = None,
) -> Generator[Progress, None, torch.Tensor]:
    """Phase reconstruction and synthesis of a magnitude spectrogram, block by block.

    Two blocks are in flight at once: while the phase backend works on block k (numba
    releases the GIL), a second thread reads block k+1's magnitude, synthesises and
    overlap-adds block k-1 and measures what is final (``on_final``), so both cores of a
    small machine are busy. On the CPU that thread's torch operations run single-threaded
    (:func:`torch_pool`).

    Args:
        magnitude_frames: ``f(start, stop)`` → magnitude (bins, stop - start) on ``device``.
        n_frames: frames of the periodic lattice.
        length: samples of the periodic buffer (``n_frames * hop``).
        geometry, config: lattice, backend and block sizes.
        device: working device.
        timer: stage timer.
        on_final: ``f(y, frames)`` called (on the second thread, after a block's synthesis,
            never at the same time as ``magnitude_frames``) whenever the waveform ``y`` is
            final for the analysis of every frame below ``frames``: for measuring as the
            blocks go, without keeping the whole spectrogram.
        out: the buffer to synthesise into, float32 (length,) of zeros on ``device``
            (default: a new one), e.g. a view of the caller's output array.

    Yields:
        Progress in frames.

    Returns:
        the periodic waveform (length,), float32 on ``device``.
    """
    return_large_blocks_to_the_system()
    timer = timer or StageTimer(device)
    backend = get_backend(config.phase)
    options = {"iterations": config.fgla_iterations}
    if supports_blocks(config.phase):
        block, context = config.block_frames(geometry), config.context_frames
    else:
        block, context = n_frames, 0
    blocks = list(frame_blocks(n_frames, block, context))
    if out is not None and (out.shape != (length,) or out.dtype != torch.float32 or out.device != device):
        raise ValueError(f"out must be float32 ({length},) on {device}, got {out.dtype} {tuple(out.shape)} on {out.device}")
    y = torch.zeros(length, dtype=torch.float32, device=device) if out is None else out

    in_job = in_this_job()

    @in_job
    def read(i: int) -> torch.Tensor:
        _, _, start, stop = blocks[i]
        with timer.stage("analysis"):
            return magnitude_frames(start, stop)

    @in_job
    def synthesise(committed: torch.Tensor, b0: int, final: int) -> None:
        with timer.stage("synthesis"):
            dsp.synthesize(committed, geometry, y, frame_start=b0)
        if on_final is not None and final > 0:
            on_final(y, final)

    seed: torch.Tensor | None = None
    with torch_pool(1, device, "mosapp-io") as pool:
        pending_magnitude = pool.submit(read, 0)
        pending_synthesis = None
        for i, (b0, b1, start, _stop) in enumerate(blocks):
            magnitude = pending_magnitude.result()
            if i + 1 < len(blocks):
                pending_magnitude = pool.submit(read, i + 1)
            with timer.stage("phase"):
                use_seed = seed[:, seed.shape[-1] - (b0 - start):] if seed is not None and b0 > start else None
                coeffs = backend(magnitude, geometry, seed=use_seed, frame_offset=start, **options)
                committed = coeffs[:, b0 - start: b1 - start].to(torch.complex64)
            # A copy: a view would keep the whole block's coefficients alive through the next block.
            seed = committed[:, -context:].clone() if context else None
            if pending_synthesis is not None:
                pending_synthesis.result()
            # Once this block is synthesised, frames up to b1 are; a frame's analysis window
            # reaches window_length / hop frames further, which the next block still adds to.
            last = i + 1 == len(blocks)
            final = 0 if last else b1 - geometry.window_length // geometry.hop + 1
            pending_synthesis = pool.submit(synthesise, committed, b0, final)
            yield Progress("frames", b1, n_frames, "frames")
        if pending_synthesis is not None:
            pending_synthesis.result()
        if on_final is not None:
            pool.submit(in_job(on_final), y, n_frames).result()
    return y


__all__ = ["StageTimer", "frame_blocks", "in_this_job", "invert_magnitude", "return_large_blocks_to_the_system", "torch_pool"]
