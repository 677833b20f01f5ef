"""Composes the stages into a round trip: a generator that yields progress and returns the result.

::

    audio (c, n) ─► pad ─► per block of frames: STFT ─► |.| ─► image [0,1] ─► (codec) ─►
        magnitude ─► phase backend (seeded by the previous block) ─► synthesis ─► overlap-add
    ─► crop ─► original rate / length / channels;  metrics on the way out

Long inputs run in blocks of ``block_seconds`` with ``context_frames`` of overlap
either side: each block's phase continues from the last committed frames of the one
before (seed frames), its look-ahead frames are recomputed by the next block, and every
frame is synthesised exactly once. Spectral metrics are tallied tile by tile as soon as
the waveform is final there. Memory therefore grows with the block size, not with the
input, apart from the waveforms themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from mosapp.core import dsp, job, metrics
from mosapp.core.audio import STREAM_BLOCK_FRAMES, Audio, AudioInfo, is_silent, restore_format, restore_format_blocks
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, StftGeometry, get_geometry
from mosapp.core.errors import AudioError
from mosapp.core.job import Progress, drive, relay
from mosapp.phase import get_backend
from mosapp.phase.invert import (
    StageTimer,
    frame_blocks,
    in_this_job,
    invert_magnitude,
    return_large_blocks_to_the_system,
    torch_pool,
)

#: ViSQOL costs ~0.2 s per second of audio on 2 cores; "auto" runs it up to this length.
VISQOL_AUTO_MAX_S = 120.0
#: Mel distance is computed in chunks of this length so memory stays bounded.
METRIC_CHUNK_S = 10.0
#: Spectral convergence and the target's consistency are computed over tiles of this many frames
#: (SC is exact; target_consistency is the cell-weighted mean of the tiles' values).
METRIC_TILE_FRAMES = 2048

ImageTransform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class RoundTripResult:
    """What a round trip produced.

    Attributes:
        output: float32 (channels, frames) in the input file's rate, length and channels,
            made when first asked for (:meth:`output_blocks` gives it block by block).
        reconstruction: float32 (channels, n) at the pipeline rate (what metrics compare).
        reference: float32 (channels, n) at the pipeline rate (what entered the pipeline).
        info: the input's format.
        geometry, backend, device: what ran.
        metrics: objective measures of the reconstruction.
        timings_s: seconds per stage.
    """

    reconstruction: np.ndarray
    reference: np.ndarray
    info: AudioInfo
    geometry: StftGeometry
    backend: str
    device: str
    metrics: metrics.Metrics
    timings_s: dict[str, float] = field(default_factory=dict)
    _output: np.ndarray | None = field(default=None, repr=False)

    @property
    def output(self) -> np.ndarray:
        if self._output is None:
            self._output = restore_format(self.reconstruction, PIPELINE_SAMPLE_RATE, self.info)
        return self._output

    def output_blocks(self) -> Iterator[np.ndarray]:
        """:attr:`output` block by block (what :func:`mosapp.core.audio.write_audio_blocks` takes):
        a long file's output is never held whole, on top of the reconstruction."""
        if self._output is not None:
            yield self._output
            return
        channels = self.reconstruction.shape[0]
        step = STREAM_BLOCK_FRAMES
        blocks = (self.reconstruction[:, i: i + step] for i in range(0, self.reconstruction.shape[-1], step))
        yield from restore_format_blocks(blocks, PIPELINE_SAMPLE_RATE, channels, self.info)

    @property
    def audio_seconds(self) -> float:
        return self.reference.shape[-1] / PIPELINE_SAMPLE_RATE

    @property
    def processing_seconds(self) -> float:
        return sum(self.timings_s.values())

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio per second of processing (> 1 is faster than real time)."""
        return self.audio_seconds / max(self.processing_seconds, 1e-9)


def check_processable(audio: Audio, geometry: StftGeometry) -> None:
    """Raise :class:`AudioError` for audio the round trip cannot process (one sentence)."""
    name = audio.info.path or "the input"
    n = audio.samples.shape[-1]
    if n < geometry.window_length:
        ms = 1000.0 * geometry.window_length / PIPELINE_SAMPLE_RATE
        raise AudioError(
            f"{name} is {1000.0 * n / PIPELINE_SAMPLE_RATE:.1f} ms long, shorter than one analysis window of the "
            f'"{geometry.name}" geometry ({geometry.window_length} samples, {ms:.1f} ms at {PIPELINE_SAMPLE_RATE} Hz).'
        )
    if is_silent(audio.samples):
        raise AudioError(f"{name} is silent (every sample is zero), so it has no spectrogram to reconstruct.")


class SpectralTally:
    """Spectral convergence of a reconstruction against its target and the target's consistency
    (``target_consistency``), accumulated tile by tile.

    The pipeline hands over each block's target magnitude as it is made and measures frames
    as soon as the waveform is final for them, so memory does not grow with the input.
    """

    def __init__(self, geometry: StftGeometry, scale: dsp.ImageScale) -> None:
        self.geometry, self.scale = geometry, scale
        self.err2 = self.ref2 = 0.0
        self.target_consistency_sum = self.cells = 0.0
        self.done = 0
        self._targets: list[tuple[int, int, torch.Tensor]] = []  # (first frame, last + 1, magnitude)

    def add_target(self, start: int, stop: int, magnitude: torch.Tensor) -> None:
        """Target magnitude (bins, stop - start) of frames [start, stop) (the image's, as
        :func:`dsp.image_to_magnitude` gives it); overlaps are fine."""
        self._targets.append((start, stop, magnitude))

    def _target(self, f0: int, f1: int) -> torch.Tensor:
        cols = []
        f = f0
        for start, stop, magnitude in self._targets:
            if start <= f < stop:
                take = min(stop, f1) - f
                cols.append(magnitude[:, f - start: f - start + take])
                f += take
                if f >= f1:
                    break
        return cols[0] if len(cols) == 1 else torch.cat(cols, dim=1)

    def measure(self, y: torch.Tensor, final_frames: int) -> None:
        """Measure frames [done, final_frames) of periodic waveform ``y`` against the target."""
        while self.done < final_frames:
            job.check()
            f0, f1 = self.done, min(final_frames, self.done + METRIC_TILE_FRAMES)
            want = self._target(f0, f1).to(torch.float32)
            got = dsp.stft_magnitude(y, self.geometry, f0, f1)
            self.err2 += float(((want - got) ** 2).sum())
            self.ref2 += float((want**2).sum())
            mag = want.cpu().numpy()
            if mag.shape[-1] >= 3 and mag.max() > 0:
                c = metrics.magnitude_consistency(mag)
                self.target_consistency_sum += c * mag.size
                self.cells += mag.size
            self.done = f1
        self._targets = [item for item in self._targets if item[1] > self.done]


def reconstruct_channel(
    x: torch.Tensor,
    geometry: StftGeometry,
    config: PipelineConfig,
    *,
    transform: ImageTransform | None = None,
    timer: StageTimer | None = None,
    measure: bool = True,
    out: torch.Tensor | None = None,
) -> Generator[Progress, None, tuple[torch.Tensor, SpectralTally | None]]:
    """One channel through image → (transform) → phase → waveform, block by block.

    Args:
        x: float32 waveform (n,) at the pipeline rate on the working device.
        geometry: STFT lattice.
        config: backend, block sizes, image mapping.
        transform: optional image → image function (a codec's encode+decode).
        timer: stage timer.
        measure: tally spectral convergence against the target image and the target's consistency.
        out: float32 zeros of :func:`dsp.padded_length` samples on ``x``'s device to synthesise
            into (the returned reconstruction is then a view of it); default a new buffer.

    Yields:
        Progress in frames.

    Returns:
        (reconstruction (n,), the tally or None).
    """
    timer = timer or StageTimer(x.device)
    # The lattice's periodic buffer is x with zeros either side; it is never made: the
    # STFTs read x at its offset (dsp.stft_magnitude), the synthesis writes a buffer of that length.
    length = dsp.padded_length(x.shape[-1], geometry)
    offset = geometry.window_length // 2
    n_frames = geometry.frames_for(length)

    def magnitude(start: int, stop: int) -> torch.Tensor:
        return dsp.stft_magnitude(x, geometry, start, stop, length=length, offset=offset)

    with timer.stage("analysis"):
        # Pass 1: the clip's peak fixes the image scale (recorded for decoding). Blocks
        # on as many threads as torch would use, each single-threaded.
        spans = [(b0, b1) for b0, b1, _, _ in frame_blocks(n_frames, config.block_frames(geometry), 0)]
        workers = max(1, min(len(spans), torch.get_num_threads())) if x.device.type == "cpu" else 1
        with torch_pool(workers, x.device, "mosapp-peak") as pool:
            peak = max(pool.map(lambda span: float(magnitude(*span).max()), spans))
        scale = dsp.image_scale_for(peak, config.image)
    tally = SpectralTally(geometry, scale) if measure else None

    def magnitude_frames(start: int, stop: int) -> torch.Tensor:
        image = dsp.magnitude_to_image(magnitude(start, stop), scale)
        if transform is not None:
            image = transform(image)
        target = dsp.image_to_magnitude(image, scale)
        if tally is not None:
            tally.add_target(start, stop, target)
        return target

    on_final = None
    if tally is not None:
        def on_final(y: torch.Tensor, frames: int, tally: SpectralTally = tally) -> None:
            with timer.stage("metrics"):
                tally.measure(y, frames)

    y = yield from invert_magnitude(magnitude_frames, n_frames, length, geometry, config,
                                    device=x.device, timer=timer, on_final=on_final, out=out)
    return y[offset: offset + x.shape[-1]], tally


def _measure(
    reference: np.ndarray,
    reconstruction: np.ndarray,
    tallies: list[SpectralTally],
    device: torch.device,
    visqol: bool,
) -> metrics.Metrics:
    """Metrics of a reconstruction (channels, n) against the pipeline's input and the tallies."""
    err2 = sum(t.err2 for t in tallies)
    ref2 = sum(t.ref2 for t in tallies)
    cells = sum(t.cells for t in tallies)
    sc = 10.0 * math.log10(err2 / ref2) if ref2 > 0 and err2 > 0 else float("nan")
    chunk = int(METRIC_CHUNK_S * PIPELINE_SAMPLE_RATE)
    # Channel by channel and chunk by chunk (mel_distance averages channels anyway), the
    # chunks and the band metrics on as many threads as torch would use, each single-threaded.
    spans = [(ch, s) for ch in range(reference.shape[0]) for s in range(0, reference.shape[-1], chunk)
             if reference[ch, s: s + chunk].shape[-1] >= 2048]  # the longest mel window; a shorter tail adds nothing
    workers = max(1, torch.get_num_threads()) if device.type == "cpu" else 1
    in_job = in_this_job()

    @in_job
    def mel(span: tuple[int, int]) -> tuple[float, int]:
        ch, s = span
        a, b = reference[ch, s: s + chunk], reconstruction[ch, s: s + chunk]
        return metrics.mel_distance(a, b, PIPELINE_SAMPLE_RATE, device=device), a.shape[-1]

    with torch_pool(workers, device, "mosapp-metrics") as pool:
        # The band metrics run over the kept waveforms, 512 frames of 4096 samples at a time.
        band_future = pool.submit(in_job(metrics.band_metrics), reference, reconstruction, PIPELINE_SAMPLE_RATE)
        mel_values = list(pool.map(mel, spans))
        band = band_future.result()
    mel_sum = sum(value * weight for value, weight in mel_values)
    mel_weight = sum(weight for _, weight in mel_values)
    return metrics.Metrics(
        **band,
        spectral_convergence_db=sc,
        si_sdr_db=metrics.si_sdr_db(reference, reconstruction),
        mel_distance=mel_sum / mel_weight if mel_weight else None,
        target_consistency=sum(t.target_consistency_sum for t in tallies) / cells if cells else None,
        visqol=metrics.visqol(reference, reconstruction, PIPELINE_SAMPLE_RATE) if visqol else None,
    )


def roundtrip(
    audio: Audio,
    config: PipelineConfig = PipelineConfig(),
    *,
    transform: ImageTransform | None = None,
    compute_metrics: bool = True,
    visqol: bool | None = None,
) -> Generator[Progress, None, RoundTripResult]:
    """Run ``audio`` (read at the pipeline rate) through spectrogram → image → phase → waveform.

    Without ``transform`` this is the "PGHI only" condition: the magnitude is kept (to the
    image mapping's dynamic range) and only the phase is rebuilt.

    Args:
        audio: from :func:`mosapp.core.audio.read_audio` at :data:`PIPELINE_SAMPLE_RATE`.
        config: geometry, backend, device, block sizes.
        transform: optional image → image function (a codec).
        compute_metrics: measure the reconstruction.
        visqol: run ViSQOL (None: only for inputs up to :data:`VISQOL_AUTO_MAX_S`).

    Yields:
        :class:`Progress` events (frames done over all channels).

    Returns:
        :class:`RoundTripResult`.

    Raises:
        AudioError: audio too short for one window, or silent.
        ConfigError: unknown geometry, backend or device.
    """
    geometry = get_geometry(config.geometry)
    get_backend(config.phase)
    device = dsp.resolve_device(config.device)
    if audio.sample_rate != PIPELINE_SAMPLE_RATE:
        raise ValueError(f"audio must be at {PIPELINE_SAMPLE_RATE} Hz, got {audio.sample_rate}")
    check_processable(audio, geometry)
    return_large_blocks_to_the_system()  # before the first block-sized arrays (the peak pass)
    timer = StageTimer(device)
    with timer.stage("analysis"):
        reference = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32)).to(device)
    channels, n = reference.shape
    length = dsp.padded_length(n, geometry)
    n_frames = geometry.frames_for(length)
    # On the CPU each channel is synthesised straight into its row of the result (the
    # lattice's padded length), which is then cropped by a view: no second copy of the output.
    direct = device.type == "cpu"
    padded = np.zeros((channels, length) if direct else (0, 0), dtype=np.float32)
    reconstruction = padded[:, geometry.window_length // 2: geometry.window_length // 2 + n] if direct \
        else np.empty((channels, n), dtype=np.float32)
    tallies: list[SpectralTally] = []
    for ch in range(channels):
        gen = reconstruct_channel(reference[ch], geometry, config, transform=transform, timer=timer,
                                  measure=compute_metrics, out=torch.from_numpy(padded[ch]) if direct else None)
        first = ch * n_frames

        def over_channels(p: Progress, first: int = first) -> Progress:
            return Progress("frames", first + p.done, channels * n_frames, "frames")

        y, tally = yield from relay(gen, over_channels)
        if not direct:
            reconstruction[ch] = y.cpu().numpy()
        del y
        if tally is not None:
            tallies.append(tally)
    result_metrics = metrics.Metrics()
    if compute_metrics:
        yield Progress("metrics", 0, 1)
        with timer.stage("metrics"):
            run_visqol = visqol if visqol is not None else audio.duration_s <= VISQOL_AUTO_MAX_S
            result_metrics = _measure(audio.samples, reconstruction, tallies, device, run_visqol)
        yield Progress("metrics", 1, 1)
    return RoundTripResult(
        reconstruction=reconstruction,
        reference=audio.samples,
        info=audio.info,
        geometry=geometry,
        backend=config.phase,
        device=str(device),
        metrics=result_metrics,
        timings_s=dict(timer.totals),
    )


#: :func:`mosapp.core.job.drive` under the name the library has always exported:
#: ``run_to_end(roundtrip(audio), on_progress)`` → the :class:`RoundTripResult`.
run_to_end = drive
