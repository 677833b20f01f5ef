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
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from mosapp.core import dsp, metrics
from mosapp.core.audio import Audio, AudioInfo, is_silent, restore_format
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, StftGeometry, get_geometry
from mosapp.core.errors import AudioError
from mosapp.core.job import Progress, drive, relay
from mosapp.phase import get_backend
from mosapp.phase.invert import StageTimer, frame_blocks, invert_magnitude

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
        output: float32 (channels, frames) in the input file's rate, length and channels.
        reconstruction: float32 (channels, n) at the pipeline rate (what metrics compare).
        reference: float32 (channels, n) at the pipeline rate (what entered the pipeline).
        info: the input's format.
        geometry, backend, device: what ran.
        metrics: objective measures of the reconstruction.
        timings_s: seconds per stage.
    """

    output: np.ndarray
    reconstruction: np.ndarray
    reference: np.ndarray
    info: AudioInfo
    geometry: StftGeometry
    backend: str
    device: str
    metrics: metrics.Metrics
    timings_s: dict[str, float] = field(default_factory=dict)

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

    The pipeline hands over each block's target image as it is made and measures frames
    as soon as the waveform is final for them, so memory does not grow with the input.
    """

    def __init__(self, geometry: StftGeometry, scale: dsp.ImageScale) -> None:
        self.geometry, self.scale = geometry, scale
        self.err2 = self.ref2 = 0.0
        self.target_consistency_sum = self.cells = 0.0
        self.done = 0
        self._images: list[tuple[int, int, torch.Tensor]] = []  # (first frame, last + 1, image)

    def add_target(self, start: int, stop: int, image: torch.Tensor) -> None:
        """Target image (bins, stop - start) of frames [start, stop); overlaps are fine."""
        self._images.append((start, stop, image))

    def _target(self, f0: int, f1: int) -> torch.Tensor:
        cols = []
        f = f0
        for start, stop, image in self._images:
            if start <= f < stop:
                take = min(stop, f1) - f
                cols.append(image[:, f - start: f - start + take])
                f += take
                if f >= f1:
                    break
        return torch.cat(cols, dim=1)

    def measure(self, y: torch.Tensor, final_frames: int) -> None:
        """Measure frames [done, final_frames) of periodic waveform ``y`` against the target."""
        while self.done < final_frames:
            f0, f1 = self.done, min(final_frames, self.done + METRIC_TILE_FRAMES)
            want = dsp.image_to_magnitude(self._target(f0, f1).to(torch.float32), self.scale)
            got = dsp.stft(y, self.geometry, f0, f1).abs()
            self.err2 += float(((want - got) ** 2).sum())
            self.ref2 += float((want**2).sum())
            mag = want.cpu().numpy()
            if mag.shape[-1] >= 3 and mag.max() > 0:
                c = metrics.magnitude_consistency(mag)
                self.target_consistency_sum += c * mag.size
                self.cells += mag.size
            self.done = f1
        self._images = [item for item in self._images if item[1] > self.done]


def reconstruct_channel(
    x: torch.Tensor,
    geometry: StftGeometry,
    config: PipelineConfig,
    *,
    transform: ImageTransform | None = None,
    timer: StageTimer | None = None,
    measure: bool = True,
) -> Generator[Progress, None, tuple[torch.Tensor, SpectralTally | None]]:
    """One channel through image → (transform) → phase → waveform, block by block.

    Args:
        x: float32 waveform (n,) at the pipeline rate on the working device.
        geometry: STFT lattice.
        config: backend, block sizes, image mapping.
        transform: optional image → image function (a codec's encode+decode).
        timer: stage timer.
        measure: tally spectral convergence against the target image and the target's consistency.

    Yields:
        Progress in frames.

    Returns:
        (reconstruction (n,), the tally or None).
    """
    timer = timer or StageTimer(x.device)
    with timer.stage("analysis"):
        xp, offset = dsp.pad_for_lattice(x, geometry)
        n_frames = geometry.frames_for(xp.shape[-1])
        # Pass 1: the clip's peak fixes the image scale (recorded for decoding).
        peak = 0.0
        for b0, b1, _, _ in frame_blocks(n_frames, config.block_frames(geometry), 0):
            peak = max(peak, float(dsp.stft(xp, geometry, b0, b1).abs().max()))
        scale = dsp.image_scale_for(peak, config.image)
    tally = SpectralTally(geometry, scale) if measure else None

    def magnitude_frames(start: int, stop: int) -> torch.Tensor:
        image = dsp.magnitude_to_image(dsp.stft(xp, geometry, start, stop).abs(), scale)
        if transform is not None:
            image = transform(image)
        if tally is not None:
            tally.add_target(start, stop, image)
        return dsp.image_to_magnitude(image, scale)

    on_final = None
    if tally is not None:
        def on_final(y: torch.Tensor, frames: int, tally: SpectralTally = tally) -> None:
            with timer.stage("metrics"):
                tally.measure(y, frames)

    y = yield from invert_magnitude(magnitude_frames, n_frames, xp.shape[-1], geometry, config,
                                    device=x.device, timer=timer, on_final=on_final)
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
    mel_sum = mel_weight = 0.0
    # Channel by channel and chunk by chunk (mel_distance averages channels anyway).
    for ch in range(reference.shape[0]):
        for s in range(0, reference.shape[-1], chunk):
            a, b = reference[ch, s: s + chunk], reconstruction[ch, s: s + chunk]
            if a.shape[-1] < 2048:  # the longest mel window; a shorter tail adds nothing measurable
                continue
            mel_sum += metrics.mel_distance(a, b, PIPELINE_SAMPLE_RATE, device=device) * a.shape[-1]
            mel_weight += a.shape[-1]
    # The band metrics run over the kept waveforms, 512 frames of 4096 samples at a time.
    band = metrics.band_metrics(reference, reconstruction, PIPELINE_SAMPLE_RATE)
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
    timer = StageTimer(device)
    with timer.stage("analysis"):
        reference = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32)).to(device)
    channels, n = reference.shape
    n_frames = geometry.frames_for(dsp.padded_length(n, geometry))
    reconstruction = np.empty((channels, n), dtype=np.float32)
    tallies: list[SpectralTally] = []
    for ch in range(channels):
        gen = reconstruct_channel(reference[ch], geometry, config, transform=transform, timer=timer,
                                  measure=compute_metrics)
        first = ch * n_frames

        def over_channels(p: Progress, first: int = first) -> Progress:
            return Progress("frames", first + p.done, channels * n_frames, "frames")

        y, tally = yield from relay(gen, over_channels)
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
    with timer.stage("output"):
        output = restore_format(reconstruction, PIPELINE_SAMPLE_RATE, audio.info)
    return RoundTripResult(
        output=output,
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
