"""The Inspect view's work as a plain generator (no Qt): read → encode → .sgc bytes → decode →
metrics → display images, yielding progress between steps so a worker can report and cancel.

::

    AudioSource ─► read_audio (44.1 kHz, mono) ─► codec.encode ─► container.pack (file_kbps) ─► unpack
        ─► decode (block by block for spectrogram codecs) ─► evaluate.score_steps (+ ViSQOL)
        ─► spectrogram_data.analyse_pair ─► InspectResult

Encoding to scoring is :func:`mosapp.evaluation.evaluate.measure_steps`, the function behind the results
table's numbers (:func:`mosapp.evaluation.evaluate.evaluate_codec`), so what the window shows is what the table
would say.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mosapp.codecs import get_codec
from mosapp.codecs.base import Codec
from mosapp.core import dsp, job
from mosapp.core.audio import Audio, AudioInfo, read_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.core.errors import AudioError, ModelError
from mosapp.core.job import Progress, relay
from mosapp.evaluation import evaluate
from mosapp.phase import get_backend
from mosapp.pipeline import check_processable
from mosapp.views.spectrogram_data import (
    DEFAULT_ANALYSIS,
    Analysis,
    SpectrogramPair,
    analyse_pair,
    analyse_pair_steps,
    overview_columns,
)

#: Stages in order, with their share of the progress bar (a rough share of the time they take).
STAGE_WEIGHTS: dict[str, float] = {"read": 0.05, "encode": 0.2, "decode": 0.5, "metrics": 0.15, "display": 0.1}
STAGE_LABELS: dict[str, str] = {
    "read": "Reading audio", "encode": "Encoding", "decode": "Decoding", "metrics": "Measuring",
    "display": "Drawing spectrograms",
}


@dataclass(frozen=True)
class AudioSource:
    """Where the audio comes from: a file, or an excerpt of one (a study clip).

    Attributes:
        path: the audio file.
        start_s: excerpt start in seconds, or None for the whole file.
        length_s: excerpt length in seconds (with ``start_s``).
        label: what the window calls it (default: the file name).
    """

    path: str
    start_s: float | None = None
    length_s: float | None = None
    label: str = ""

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        name = Path(self.path).name
        if self.start_s is not None:
            name += f" @ {self.start_s:g} s"
        return name


@dataclass(frozen=True)
class InspectRequest:
    """One run of the Inspect view.

    Attributes:
        source: the audio.
        codec: registry name (``pghi-only``, ``opus-12`` …).
        config: geometry, phase backend, device (mono is always used).
        visqol: run ViSQOL; None: only up to :data:`mosapp.pipeline.VISQOL_AUTO_MAX_S` seconds.
        analysis: the STFT the spectrograms are drawn from (None: :data:`DEFAULT_ANALYSIS`).
    """

    source: AudioSource
    codec: str
    config: PipelineConfig = PipelineConfig()
    visqol: bool | None = None
    analysis: Analysis | None = None


def job_fraction(p: Progress) -> float:
    """The whole job's share done when stage ``p.stage`` is ``p.done`` of ``p.total`` done
    (the stages' :data:`STAGE_WEIGHTS` in order)."""
    before = 0.0
    for name, weight in STAGE_WEIGHTS.items():
        if name == p.stage:
            return min(1.0, before + weight * (p.done / p.total if p.total else 1.0))
        before += weight
    return before


def stage_text(p: Progress) -> str:
    """The stage's words for the window: ``Encoding — sgc-12``."""
    label = STAGE_LABELS.get(p.stage, p.stage)
    return f"{label} — {p.detail}" if p.detail else label


@dataclass(frozen=True)
class OriginalPreview:
    """Yielded once the audio is read: what the window shows while the codec runs.

    Attributes:
        source: the audio it is.
        reference: float32 (1, n) at the pipeline rate (while ``complete`` is False, the buffer
            the file is still being read into).
        display: an overview of the original (``original_db``; the other images are the same
            and are not to be shown).
    """

    source: AudioSource
    reference: np.ndarray
    display: SpectrogramPair
    complete: bool = True


#: A file at least this long is shown while it is read (:class:`_GrowingPreview`).
PREVIEW_MIN_SECONDS = 30.0
#: Columns of the first picture of a long file (the view's overview has a few thousand).
FIRST_PREVIEW_COLUMNS = 400
#: How often the growing original is redrawn while a long file is read.
PREVIEW_INTERVAL_S = 1.0


def _overview(samples: np.ndarray, analysis: Analysis | None, columns: int | None = None) -> SpectrogramPair:
    """A quick overview of the original (one frame per drawn column) with ``analysis`` (default: the view's),
    in at most ``columns`` columns (default: as many as the view draws)."""
    analysis = analysis or DEFAULT_ANALYSIS
    most = overview_columns(analysis)
    return analyse_pair(samples, samples, frames_per_column=1, analysis=analysis,
                        max_columns=min(most, columns) if columns else most)


def preview(source: AudioSource, analysis: Analysis | None = None) -> Generator[Progress, None, OriginalPreview]:
    """Read ``source`` and analyse an overview of it (one frame per drawn column, with ``analysis``),
    for showing a file the moment it is opened; yields like :func:`inspect`.

    Raises:
        AudioError: unreadable file (one sentence).
    """
    yield Progress("read", 0, 1, detail=source.name)
    audio = read_source(source, on_block=_GrowingPreview(source, analysis))
    yield Progress("read", 1, 1, detail=source.name)
    return OriginalPreview(source, audio.samples, _overview(audio.samples, analysis))


@dataclass
class InspectResult:
    """What the Inspect view shows.

    Attributes:
        request: what ran.
        reference: float32 (1, n) at :data:`PIPELINE_SAMPLE_RATE`: what was encoded.
        decoded: float32 (1, n): the codec's output, sample-aligned with ``reference``.
        file_bytes: size of the ``.sgc`` container.
        file_kbps: 8 × ``file_bytes`` / seconds / 1000 (:data:`mosapp.core.metrics.METRICS`).
        scores: by :data:`mosapp.core.metrics.SIGNAL_METRIC_NAMES` (``visqol`` NaN when not run).
        notes: why a score is missing, by metric name.
        display: the spectrogram images.
        device: the device that ran.
        timings_s: seconds per stage.
    """

    request: InspectRequest
    reference: np.ndarray
    decoded: np.ndarray
    file_bytes: int
    file_kbps: float
    scores: dict[str, float]
    notes: dict[str, str]
    display: SpectrogramPair
    device: str
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return PIPELINE_SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return self.reference.shape[-1] / PIPELINE_SAMPLE_RATE


class _GrowingPreview:
    """Shows a long file while it is read: every :data:`PREVIEW_INTERVAL_S` (and after the
    first block) the original read so far, zero-padded to the length the header promises, is
    analysed as an overview and handed to the worker (:func:`mosapp.core.job.publish`), so its
    columns fill in from the left on the final time axis. Only for a whole file at the
    pipeline rate (no resampling to wait for); otherwise the preview comes after reading."""

    def __init__(self, source: AudioSource, analysis: Analysis | None = None) -> None:
        self.source = source
        self.analysis = analysis
        self.buffer: np.ndarray | None = None
        self.last = 0.0
        self.active = source.start_s is None and job.current() is not None

    def __call__(self, block: np.ndarray, first: int, rate: int, promised: int) -> None:
        if not self.active or rate != PIPELINE_SAMPLE_RATE or promised <= 0:
            return
        if self.buffer is None:
            if promised < PREVIEW_MIN_SECONDS * rate:
                self.active = False
                return
            self.buffer = np.zeros(promised, dtype=np.float32)
        end = min(promised, first + block.shape[-1])
        self.buffer[first:end] = block[0, : end - first]
        if first == 0 or time.perf_counter() - self.last >= PREVIEW_INTERVAL_S:
            x = self.buffer[None, :]
            # The first picture in few columns (a fifth of the work: it is what the researcher
            # waits for); the next ones, with more of the file read, in the view's columns.
            columns = FIRST_PREVIEW_COLUMNS if first == 0 else None
            job.publish(OriginalPreview(self.source, x, _overview(x, self.analysis, columns), complete=False))
            self.last = time.perf_counter()  # the interval counts from here: reading goes first


def read_source(source: AudioSource, *, on_block: Callable | None = None) -> Audio:
    """The source's audio, mono at the pipeline rate (an excerpt when asked).

    Raises:
        AudioError: unreadable file, or an excerpt past the file's end.
    """
    audio = read_audio(source.path, sample_rate=PIPELINE_SAMPLE_RATE, mono=True, on_block=on_block)
    if source.start_s is None:
        return audio
    start = int(round(source.start_s * PIPELINE_SAMPLE_RATE))
    n = audio.samples.shape[1] - start if source.length_s is None else int(round(source.length_s * PIPELINE_SAMPLE_RATE))
    if start < 0 or n <= 0 or start + n > audio.samples.shape[1]:
        raise AudioError(
            f"{source.path} is {audio.duration_s:.2f} s long; the excerpt {source.start_s:g} s + "
            f"{source.length_s or 0:g} s does not fit in it."
        )
    samples = np.ascontiguousarray(audio.samples[:, start: start + n])
    info = AudioInfo(path=source.path, sample_rate=PIPELINE_SAMPLE_RATE, channels=1, frames=n,
                     subtype=audio.info.subtype, format=audio.info.format)
    return Audio(samples=samples, sample_rate=PIPELINE_SAMPLE_RATE, info=info)


def check_request(request: InspectRequest) -> Codec:
    """Check every name before any file is read; returns the codec.

    Raises:
        ConfigError: unknown codec, geometry, backend or device.
        ModelError: the codec cannot run here (its reason).
    """
    codec = get_codec(request.codec)
    get_geometry(request.config.geometry)
    get_backend(request.config.phase)
    dsp.resolve_device(request.config.device)
    availability = codec.availability()
    if not availability.ok:
        raise ModelError(availability.reason)
    return codec


def _as_drawing(chunks: tuple[int, int]) -> Progress:
    done, total = chunks
    return Progress("display", done, total, unit="chunks", detail=f"chunk {done:,} of {total:,}")


def inspect(request: InspectRequest) -> Generator[Progress | OriginalPreview, None, InspectResult]:
    """Run ``request``; yields :class:`~mosapp.core.job.Progress` of the stages (and one :class:`OriginalPreview` once the
    audio is read), returns the :class:`InspectResult`.

    Closing the generator between steps stops the job (the worker's cancel).

    Raises:
        MosappError: a sentence for the window (bad file, unknown name, unavailable codec …).
    """
    config = request.config
    timings: dict[str, float] = {}
    codec = check_request(request)
    device = dsp.resolve_device(config.device)

    yield Progress("read", 0, 1, detail=request.source.name)
    t = time.perf_counter()
    audio = read_source(request.source, on_block=_GrowingPreview(request.source, request.analysis))
    check_processable(audio, get_geometry(config.geometry))
    reference = audio.samples
    timings["read"] = time.perf_counter() - t
    yield Progress("read", 1, 1, detail=request.source.name)
    yield OriginalPreview(request.source, reference, _overview(reference, request.analysis))

    measured = yield from evaluate.measure_steps(codec, reference, config, info=audio.info, visqol=request.visqol)
    timings.update(measured.timings_s)
    yield Progress("metrics", 1, 1)

    t = time.perf_counter()
    display = yield from relay(analyse_pair_steps(reference, measured.decoded, analysis=request.analysis or DEFAULT_ANALYSIS),
                               _as_drawing)
    timings["display"] = time.perf_counter() - t

    return InspectResult(
        request=request,
        reference=reference,
        decoded=measured.decoded,
        file_bytes=measured.file_bytes or 0,
        file_kbps=measured.file_kbps,
        scores=measured.scores,
        notes=measured.notes,
        display=display,
        device=str(device),
        timings_s=timings,
    )


__all__ = ["AudioSource", "InspectRequest", "InspectResult", "OriginalPreview", "STAGE_WEIGHTS", "check_request",
           "inspect", "job_fraction", "stage_text", "preview", "read_source"]
