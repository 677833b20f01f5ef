"""What the Inspect view draws, computed without Qt: an original/reconstruction pair of dB
spectrograms from one :class:`Analysis`, reduced to at most :data:`MAX_COLUMNS` columns.

The analysis is chosen for the view, not for the codec: a Hann-window STFT with a window of
1024 … 16384 samples and a selectable hop (the default of the low-frequency mode is 8192 samples,
5.4 Hz bins, which resolves the harmonics below 500 Hz that the codec's 86 Hz lattice bins
cannot), or the codec lattice itself (:meth:`Analysis.lattice`, what the codec saw). For the
two-band codecs (:mod:`mosapp.codecs.twoband`) that is two lattices joined at the crossover
(:meth:`Analysis.two_band`): below it the low band's (the thesis lattice at 5512.5 Hz, i.e. at
44.1 kHz 4096 channels, hop 512: 10.8 Hz bins), above it the thesis lattice (86 Hz bins), drawn on
one 10.8 Hz grid of rows (each high-band bin spans 8 rows). Both panes
always use the same analysis. Rows above :data:`MAX_ROWS` bins are not computed (a 16384-point
window shows 0–5.5 kHz), which bounds memory and time on a 10-minute track.

::

    reference, reconstruction (n,) ─► frames of the analysis (all, or a few per column), float32
        ─► power ─► dB, floored at the original's peak − 100 dB (the image's black)
        ├─► max over each column's frames ─────────────────► original / reconstructed images
        └─► reconstructed − original, per frame ─┬─► signed extreme per column ─► difference image
                                                 └─► mean |.| per bin ──────────► band error curve

Max-pooling keeps short events visible in the overview of a long track; the difference
keeps the per-frame value of largest magnitude for the same reason. Every lattice frame is
analysed unless ``frames_per_column`` asks for a quick overview (a few evenly spaced frames
per column), which is what the view uses when it is handed bare arrays of a long track.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import soxr
import torch

from mosapp.core import bands
from mosapp.core.config import PIPELINE_SAMPLE_RATE, StftGeometry, get_geometry
from mosapp.core.job import drive

#: Columns drawn at most; longer inputs are pooled over blocks of frames.
MAX_COLUMNS = 4000
#: dB below the original's peak that is drawn as black (the image mapping's range).
DISPLAY_RANGE_DB = 100.0
#: Frames analysed per step (bounds memory; the unit of progress and cancellation).
_CHUNK_FRAMES = 8192
#: Power cells (frames x bins) of the original kept between the passes at most (64 MB).
_KEEP_CELLS = 16_000_000
#: Frequency rows computed at most (bins from 0 Hz up): all of them up to a 4096-point window.
MAX_ROWS = 2049
#: Window lengths the view offers, samples.
WINDOW_LENGTHS = (1024, 2048, 4096, 8192, 16384)
#: Overlaps the view offers (hop = window × (1 − overlap)).
OVERLAPS = (0.5, 0.75, 0.875, 0.9375)
#: Samples a quick overview transforms per column at most (:func:`overview_columns`).
_OVERVIEW_SAMPLES = MAX_COLUMNS * 1024


def overview_columns(analysis: Analysis, max_columns: int = MAX_COLUMNS) -> int:
    """Columns of a quick overview (one frame per column) with ``analysis``: :data:`MAX_COLUMNS` up
    to a 1024-sample window (the lattice's buffer), fewer for longer ones (2048: 2000, 8192: 500),
    so its cost does not grow with the window (a pane is about 500 pixels wide anyway)."""
    return max(500, min(max_columns, _OVERVIEW_SAMPLES // max(1, analysis.window_length)))


@dataclass(frozen=True)
class Analysis:
    """The STFT a view draws: a Hann window of ``window_length`` samples hopped by ``hop``, or a
    codec lattice (``geometry``: its Gaussian window, channels and hop).

    It offers the attributes the frame reader needs (``window_length``, ``hop``, ``channels``,
    ``bins``) under the names :class:`~mosapp.core.config.StftGeometry` uses.

    Attributes:
        window_length: window (and, for Hann, FFT) length in samples.
        hop: hop in samples.
        geometry: the lattice, for the "codec lattice" analysis; None for a Hann STFT. For a
            two-band lattice, the high band's.
        max_rows: bins computed at most, from 0 Hz up.
        low_band: the low band's lattice at the full sample rate (two-band codecs); None otherwise.
        crossover_hz: where the low band's rows end and the high band's begin (two-band only).
    """

    window_length: int
    hop: int
    geometry: StftGeometry | None = None
    max_rows: int = MAX_ROWS
    low_band: StftGeometry | None = None
    crossover_hz: float = 0.0

    @classmethod
    def stft(cls, window_length: int = 2048, hop: int | None = None, *, overlap: float | None = None,
             max_rows: int = MAX_ROWS) -> Analysis:
        """A Hann-window STFT; ``hop`` or ``overlap`` (default 75 %) sets the hop."""
        window_length = int(window_length)
        if window_length < 16 or window_length & (window_length - 1):
            raise ValueError(f"the analysis window must be a power of two of at least 16 samples, got {window_length}")
        if hop is None:
            hop = round(window_length * (1.0 - (0.75 if overlap is None else float(overlap))))
        hop = int(hop)
        if not 1 <= hop <= window_length:
            raise ValueError(f"the hop must be between 1 and the window length ({window_length}), got {hop}")
        return cls(window_length, hop, None, int(max_rows))

    @classmethod
    def lattice(cls, geometry: str | StftGeometry = "thesis") -> Analysis:
        """The codec's own lattice (Gaussian window, e.g. thesis: 512 channels, hop 64)."""
        g = get_geometry(geometry)
        return cls(g.window_length, g.hop, g, g.bins)

    @classmethod
    def two_band(cls, geometry: str | StftGeometry = "thesis") -> Analysis:
        """What a two-band codec codes: the low band on ``geometry``'s lattice at the low band's rate
        (at 44.1 kHz: :data:`mosapp.core.bands.DECIMATION` times the channels and the hop) below
        the crossover (:data:`mosapp.core.bands.PASS_HZ`), ``geometry``'s lattice above it."""
        g = get_geometry(geometry)
        d = bands.DECIMATION
        low = StftGeometry(f"{g.name} low band", g.channels * d, g.hop * d, g.min_height)
        return cls(g.window_length, g.hop, g, min(low.bins, MAX_ROWS), low, float(bands.PASS_HZ))

    @property
    def is_lattice(self) -> bool:
        return self.geometry is not None

    @property
    def is_two_band(self) -> bool:
        return self.low_band is not None

    @property
    def margin_samples(self) -> int:
        """Samples a frame's window reaches from its centre at most, both ways (the longer lattice's)."""
        return max(self.window_length, self.low_band.window_length if self.low_band is not None else 0)

    @property
    def channels(self) -> int:
        """FFT size (of the rows drawn: the low band's for a two-band lattice)."""
        if self.low_band is not None:
            return self.low_band.channels
        return self.geometry.channels if self.geometry is not None else self.window_length

    @property
    def bins(self) -> int:
        """Rows computed: the FFT's bins from 0 Hz, at most :attr:`max_rows`."""
        return min(self.channels // 2 + 1, self.max_rows)

    @property
    def overlap(self) -> float:
        return 1.0 - self.hop / self.window_length

    @property
    def short_name(self) -> str:
        """A few words for a pane's title: ``Hann 2048``, ``codec lattice``, ``two-band codec lattice``."""
        if self.low_band is not None:
            return "two-band codec lattice"
        return "codec lattice" if self.geometry is not None else f"Hann {self.window_length}"

    def regions(self, sample_rate: int = PIPELINE_SAMPLE_RATE) -> list[tuple[float, float, str]]:
        """(low Hz, high Hz, what is drawn there) of each lattice a two-band analysis joins; [] otherwise."""
        if self.low_band is None or self.geometry is None:
            return []
        nyquist = sample_rate / 2.0
        return [(0.0, self.crossover_hz, f"low band: {self._lattice_text(self.low_band, sample_rate)}"),
                (self.crossover_hz, nyquist, f"high band: {self._lattice_text(self.geometry, sample_rate)}")]

    @staticmethod
    def _lattice_text(g: StftGeometry, sample_rate: int) -> str:
        return f"{sample_rate / g.channels:.1f} Hz bins, {1000 * g.hop / sample_rate:.2g} ms hop"

    @property
    def name(self) -> str:
        if self.low_band is not None and self.geometry is not None:
            g = self.geometry
            return (f"two-band codec lattice ({g.name} at the low band's rate below {self.crossover_hz:g} Hz, "
                    f"{g.name} above)")
        if self.geometry is not None:
            g = self.geometry
            return f"codec lattice ({g.name}: {g.channels} channels, hop {g.hop})"
        return f"Hann {self.window_length}, hop {self.hop} ({100 * self.overlap:g} % overlap)"

    def resolution(self, sample_rate: int = PIPELINE_SAMPLE_RATE) -> str:
        """The resolutions it gives: bin width in Hz, hop in ms, and the band drawn."""
        if self.regions(sample_rate):
            (_, crossover, low), (_, top, high) = self.regions(sample_rate)
            return f"0–{crossover:g} Hz {low} · {crossover / 1000:g}–{top / 1000:.3g} kHz {high}"
        return (f"{sample_rate / self.channels:.1f} Hz bins · {1000 * self.hop / sample_rate:.1f} ms hop · "
                f"0–{(self.bins - 1) * sample_rate / self.channels / 1000:.3g} kHz")

    def describe(self, sample_rate: int = PIPELINE_SAMPLE_RATE) -> str:
        """The name with the resolutions it gives."""
        return f"{self.name}: {self.resolution(sample_rate)}"


#: What the view draws by default, and by default in its low-frequency mode (>= 4096 samples).
DEFAULT_ANALYSIS = Analysis.stft(2048, 512)
LOW_FREQUENCY_ANALYSIS = Analysis.stft(8192, 1024)


def as_analysis(analysis: Analysis | StftGeometry | str | None, geometry: str | StftGeometry = "thesis") -> Analysis:
    """An :class:`Analysis` from an analysis, a lattice (geometry or its name), or None (``geometry``'s lattice)."""
    if isinstance(analysis, Analysis):
        return analysis
    return Analysis.lattice(geometry if analysis is None else analysis)


@dataclass
class SpectrogramPair:
    """dB images of a reference and its reconstruction, their difference and the per-band error.

    Attributes:
        original_db: float32 (bins, columns), floored at ``floor_db``.
        reconstructed_db: float32 (bins, columns), floored at ``floor_db``.
        difference_db: float32 (bins, columns): reconstructed − original, the value of largest
            magnitude among a column's frames.
        band_error_db: float32 (bins,): mean |reconstructed − original| dB per frequency bin over
            every analysed frame (bins of the analysis: 10.8 Hz wide at 4096 samples).
        analysis: the STFT analysed (a Hann STFT, or a codec lattice).
        sample_rate: Hz.
        frames_per_column: lattice frames a column stands for (1: full resolution).
        frames_analysed_per_column: how many of them were analysed (equal: exact).
        first_frame: the lattice frame (of the padded buffer) of column 0's first frame.
        n_frames: lattice frames whose centre lies in the audio.
        duration_s: the reference's length in seconds.
        top_db: the original's peak in dB (re 1.0 magnitude).
        floor_db: ``top_db`` − :data:`DISPLAY_RANGE_DB`.
    """

    original_db: np.ndarray
    reconstructed_db: np.ndarray
    difference_db: np.ndarray
    band_error_db: np.ndarray
    analysis: Analysis
    sample_rate: int
    frames_per_column: int
    frames_analysed_per_column: int
    first_frame: int
    n_frames: int
    duration_s: float
    top_db: float
    floor_db: float

    @property
    def geometry(self) -> Analysis:
        """The analysis (it has the lattice attributes ``window_length``, ``hop``, ``channels``)."""
        return self.analysis

    @property
    def bins(self) -> int:
        return self.original_db.shape[0]

    @property
    def max_hz(self) -> float:
        """Upper edge of the top row."""
        return (self.bins - 0.5) * self.hz_per_bin

    @property
    def columns(self) -> int:
        return self.original_db.shape[1]

    @property
    def exact(self) -> bool:
        """Whether every lattice frame was analysed (not a sampled overview)."""
        return self.frames_analysed_per_column >= self.frames_per_column

    @property
    def hz_per_bin(self) -> float:
        return self.sample_rate / self.analysis.channels

    @property
    def frequencies_hz(self) -> np.ndarray:
        """Centre frequency of each bin (row)."""
        return np.arange(self.bins) * self.hz_per_bin

    @property
    def seconds_per_frame(self) -> float:
        return self.analysis.hop / self.sample_rate

    @property
    def seconds_per_column(self) -> float:
        return self.frames_per_column * self.seconds_per_frame

    @property
    def left_s(self) -> float:
        """Time of column 0's left edge: its first frame's centre minus half a hop."""
        return self.frame_time_s(self.first_frame) - 0.5 * self.seconds_per_frame

    def frame_time_s(self, frame: int) -> float:
        """Time in the audio of lattice frame ``frame``'s centre."""
        offset = self.analysis.window_length // 2
        return (frame * self.analysis.hop - offset) / self.sample_rate

    def column_at(self, time_s: float) -> int | None:
        """The column drawn at ``time_s``, or None outside the image."""
        c = math.floor((time_s - self.left_s) / self.seconds_per_column)
        return c if 0 <= c < self.columns else None

    def bin_at(self, hz: float) -> int | None:
        """The bin drawn at ``hz`` (rows are centred on their frequency), or None outside."""
        b = math.floor(hz / self.hz_per_bin + 0.5)
        return b if 0 <= b < self.bins else None

    def values_at(self, time_s: float, hz: float) -> tuple[float, float, float] | None:
        """(original, reconstructed, difference) dB drawn at (``time_s``, ``hz``), or None outside."""
        c, b = self.column_at(time_s), self.bin_at(hz)
        if c is None or b is None:
            return None
        return float(self.original_db[b, c]), float(self.reconstructed_db[b, c]), float(self.difference_db[b, c])


def _audio_frames(n_samples: int, geometry: Analysis) -> tuple[int, int]:
    """(first lattice frame, frame count) of the frames whose centre lies in the audio."""
    offset, hop = geometry.window_length // 2, geometry.hop
    first = -(-offset // hop)
    last = (offset + n_samples - 1) // hop
    return first, max(0, last - first + 1)


@lru_cache(maxsize=8)
def _analysis_window_np(geometry: StftGeometry | Analysis) -> np.ndarray:
    if isinstance(geometry, Analysis):
        if geometry.geometry is not None:
            return _analysis_window_np(geometry.geometry)
        n = geometry.window_length  # periodic Hann, centred on sample n // 2 like the lattice's window
        g = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
        return g / np.linalg.norm(g)
    lg = geometry.window_length
    j = np.arange(lg, dtype=np.float64) - lg // 2
    g = np.exp(4.0 * math.log(geometry.min_height) * (j / geometry.true_window_length) ** 2)
    return g / np.linalg.norm(g)


def analysis_window(geometry: StftGeometry | Analysis, device: str | torch.device = "cpu") -> torch.Tensor:
    """The analysis window (linear layout, unit l2 norm): for a lattice equal to ``dsp.windows(geometry)[0]``,
    for a Hann analysis the periodic Hann window.

    Computed here because ``dsp.windows`` also solves for the synthesis window (a few hundred
    ms the first time), which drawing does not need.
    """
    return torch.as_tensor(_analysis_window_np(geometry), dtype=torch.float32, device=device)


class _LatticePower:
    """Power |c|² of chosen frames of one signal, (frames, bins), as :func:`dsp.stft` would give on a lattice.

    Frames are read from a strided view of the audio (no padded copy of a long track): frame
    ``j`` starts at audio sample ``j * hop - window_length`` (the lattice's buffer has half a
    window of zeros in front, and the frame is centred). Only the few frames that reach past
    either end of the audio are assembled from small zero-padded pieces.
    """

    def __init__(self, x: np.ndarray, geometry: Analysis, device: torch.device) -> None:
        self.geometry = geometry
        self.window = analysis_window(geometry, device)
        lg, hop = geometry.window_length, geometry.hop
        audio = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        self.n = audio.shape[-1]
        if lg % hop or self.n < 2 * lg:
            # Short (or an unusual lattice): one padded copy is cheap and simplest.
            audio = torch.nn.functional.pad(audio, (lg, lg))
            self.shift = lg
        else:
            self.shift = 0
            self.head = torch.nn.functional.pad(audio[:lg], (lg, 0))
            self.tail = torch.nn.functional.pad(audio[-lg:], (0, lg))
        self.audio = audio
        self.rows = audio.unfold(-1, lg, hop)  # row r: samples [r * hop, r * hop + lg) of `audio`

    def _power(self, segments: torch.Tensor) -> torch.Tensor:
        g = self.geometry
        q = g.window_length // g.channels
        folded = segments * self.window
        if q > 1:  # a lattice window longer than its FFT: fold it (a Hann STFT's is not)
            folded = folded.reshape(-1, q, g.channels).sum(1)
        spec = torch.fft.rfft(folded, dim=-1)[:, : g.bins]
        return spec.real.square() + spec.imag.square()

    def _edge(self, start: int) -> torch.Tensor:
        """The samples of a frame starting at audio sample ``start`` that reaches past an end."""
        lg = self.geometry.window_length
        if start < 0:
            return self.head[start + lg: start + 2 * lg]
        return self.tail[start - (self.n - lg): start - (self.n - lg) + lg]

    def _starts(self, frames: torch.Tensor) -> torch.Tensor:
        return frames * self.geometry.hop - self.geometry.window_length + self.shift

    def contiguous(self, start: int, stop: int) -> torch.Tensor:
        """Frames [start, stop)."""
        hop, lg = self.geometry.hop, self.geometry.window_length
        first = start * hop - lg + self.shift
        last = (stop - 1) * hop - lg + self.shift
        if self.shift or (first >= 0 and last + lg <= self.n):
            return self._power(self.rows[first // hop: last // hop + 1])
        return self.gather(torch.arange(start, stop, device=self.audio.device))

    def gather(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames at the (1-D) indices ``frames``."""
        starts = self._starts(frames)
        if self.shift:
            return self._power(self.rows[starts // self.geometry.hop])
        inside = (starts >= 0) & (starts + self.geometry.window_length <= self.n)
        segments = torch.empty(frames.shape[0], self.geometry.window_length, dtype=torch.float32,
                               device=self.audio.device)
        segments[inside] = self.rows[starts[inside] // self.geometry.hop]
        for i in torch.nonzero(~inside).flatten().tolist():
            segments[i] = self._edge(int(starts[i]))
        return self._power(segments)


#: Decimate when the frames analysed cover the signal this many times over (then resampling it costs less).
_DECIMATE_WHEN_SAMPLES_PER_SAMPLE = 8


def _decimation(analysis: Analysis, n: int, frames: int, sample_rate: int) -> int:
    """By how much a Hann analysis that draws only its low rows can decimate the signal first:
    the largest power of two d whose decimated band keeps every drawn row inside the resampler's
    clean pass band (``0.9 (N / d) / 2 >= bins``, so no row is dimmed by its anti-alias filter),
    with the hop a multiple of d; 1 for a lattice, and when the frames analysed (a quick
    overview's few) would cost less than resampling the whole signal. A 16384-sample window
    (rows to 5.5 kHz) is analysed at half the rate."""
    if analysis.is_lattice or frames * analysis.window_length < _DECIMATE_WHEN_SAMPLES_PER_SAMPLE * n:
        return 1
    d = 1
    while True:
        e = 2 * d
        if 0.9 * (analysis.window_length // e) / 2 < analysis.bins or analysis.hop % e or sample_rate % e:
            return d
        d = e


def _db(power: torch.Tensor, floor_db: float) -> torch.Tensor:
    return (10.0 * torch.log10(power.clamp_min(1e-30))).clamp_min(floor_db)


def analyse_pair_steps(
    reference: np.ndarray,
    reconstruction: np.ndarray,
    *,
    geometry: str | StftGeometry = "thesis",
    analysis: Analysis | None = None,
    max_columns: int = MAX_COLUMNS,
    frames_per_column: int | None = None,
    sample_rate: int = PIPELINE_SAMPLE_RATE,
    device: str | torch.device = "cpu",
    top_db: float | None = None,
) -> Generator[tuple[int, int], None, SpectrogramPair]:
    """Analyse a pair for display, as a generator of (steps done, steps in all).

    Args:
        reference, reconstruction: float32 (n,) or (channels, n) at ``sample_rate``; the first
            channel is analysed. The reconstruction is cut or zero-padded to the reference's length.
        geometry: the lattice analysed when no ``analysis`` is given.
        analysis: the STFT to draw (:class:`Analysis`: a Hann STFT or a lattice); overrides ``geometry``.
        max_columns: columns at most.
        frames_per_column: frames analysed per column, evenly spaced; None: all of
            them (exact). Fewer give a quick overview of a long track: what falls between the
            analysed frames is not seen, in the images or in the band error.
        sample_rate: Hz.
        device: where the transforms run.
        top_db: the level drawn as the peak (default: the original's peak); the floor is
            :data:`DISPLAY_RANGE_DB` below it. An excerpt passes the whole track's.

    Returns:
        The :class:`SpectrogramPair`.
    """
    chosen = as_analysis(analysis, geometry)
    if chosen.is_two_band:
        return (yield from _two_band_steps(reference, reconstruction, chosen, max_columns=max_columns,
                                           frames_per_column=frames_per_column, sample_rate=sample_rate,
                                           device=device, top_db=top_db))
    device = torch.device(device)
    ref, rec = _first_channels(reference, reconstruction)
    n = ref.shape[-1]
    first, n_frames = _audio_frames(n, chosen)
    if n_frames == 0:
        raise ValueError("the reference is empty")
    pool = max(1, math.ceil(n_frames / max(1, max_columns)))
    d = _decimation(chosen, n, n_frames if frames_per_column is None else
                    math.ceil(n_frames / pool) * min(pool, max(1, int(frames_per_column))), sample_rate)
    if d > 1:
        # Only the rows below sample_rate / (2 d) are drawn: analyse the signals decimated by d
        # (the same bins and frame times; d times fewer samples per window).
        gain = np.float32(math.sqrt(d))  # |X|^2 of a window d times shorter is d times smaller
        low = [np.ascontiguousarray(soxr.resample(z, sample_rate, sample_rate // d, quality="HQ") * gain,
                                    dtype=np.float32) for z in (ref, rec)]
        inner = Analysis.stft(chosen.window_length // d, chosen.hop // d, max_rows=chosen.bins)
        part = yield from analyse_pair_steps(low[0], low[1], analysis=inner, max_columns=max_columns,
                                             frames_per_column=frames_per_column, sample_rate=sample_rate // d,
                                             device=device, top_db=top_db)
        return replace(part, analysis=chosen, sample_rate=sample_rate, duration_s=n / sample_rate)
    take = pool if frames_per_column is None else max(1, min(pool, int(frames_per_column)))
    plan = _ColumnPlan(first, n_frames, pool, take, chosen.bins, device)
    ref_power = _LatticePower(ref, chosen, device)
    rec_power = _LatticePower(rec, chosen, device)
    total = 3 * len(plan.chunks)  # pass 1 and the two halves of pass 2
    done = 0
    original = _OriginalPass(plan)
    for _ in original.run(ref_power):
        done += 1
        yield done, total
    if top_db is None:
        top_db = float(10.0 * torch.log10(original.power.max().clamp_min(1e-30)))
    floor_db = top_db - DISPLAY_RANGE_DB
    second = _ReconstructionPass(plan, floor_db)
    for _ in second.run(rec_power, ref_power, original.kept):
        done += 1
        yield done, total
    as_image = lambda t: np.ascontiguousarray(t.T.cpu().numpy(), dtype=np.float32)  # noqa: E731
    return SpectrogramPair(
        original_db=as_image(_db(original.power, floor_db)),
        reconstructed_db=as_image(_db(second.power, floor_db)),
        difference_db=as_image(second.difference()),
        band_error_db=(second.abs_sum / max(second.analysed, 1)).to(torch.float32).cpu().numpy(),
        analysis=chosen,
        sample_rate=sample_rate,
        frames_per_column=pool,
        frames_analysed_per_column=take,
        first_frame=first,
        n_frames=n_frames,
        duration_s=n / sample_rate,
        top_db=top_db,
        floor_db=floor_db,
    )


def _first_channels(reference: np.ndarray, reconstruction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first channel of each as float32 (n,), the reconstruction cut or zero-padded to the reference's length."""
    ref = np.asarray(reference, dtype=np.float32)
    rec = np.asarray(reconstruction, dtype=np.float32)
    ref = ref[0] if ref.ndim == 2 else ref
    rec = rec[0] if rec.ndim == 2 else rec
    n = ref.shape[-1]
    if rec.shape[-1] != n:
        rec = rec[:n] if rec.shape[-1] > n else np.pad(rec, (0, n - rec.shape[-1]))
    return ref, rec


@dataclass(frozen=True)
class _ColumnPlan:
    """Which lattice frames each drawn column pools: column c's are all of
    [c·pool, min((c+1)·pool, n_frames)) (relative to ``first``), or ``take`` evenly spaced ones.

    Attributes:
        first: the lattice frame of the first analysed frame.
        n_frames: lattice frames in all.
        pool: frames per column.
        take: frames analysed per column (``pool``: every one, exact).
        bins: frequency rows.
        device: where the transforms run.
    """

    first: int
    n_frames: int
    pool: int
    take: int
    bins: int
    device: torch.device

    @property
    def columns(self) -> int:
        return math.ceil(self.n_frames / self.pool)

    @property
    def exact(self) -> bool:
        return self.take >= self.pool

    @property
    def chunks(self) -> list[tuple[int, int]]:
        """Columns [c0, c1) analysed per step (each at most :data:`_CHUNK_FRAMES` frames)."""
        per_chunk = max(1, _CHUNK_FRAMES // self.take)
        return [(c0, min(self.columns, c0 + per_chunk)) for c0 in range(0, self.columns, per_chunk)]

    def power(self, source: _LatticePower, c0: int, c1: int) -> torch.Tensor:
        """The power of the analysed frames of columns [c0, c1), in column order: a contiguous
        span of lattice frames when every frame is analysed, else the chosen ones gathered."""
        if self.exact:
            return source.contiguous(self.first + c0 * self.pool, self.first + min(c1 * self.pool, self.n_frames))
        starts = torch.arange(c0, c1, device=self.device) * self.pool
        sizes = torch.clamp(starts + self.pool, max=self.n_frames) - starts
        i = torch.arange(self.take, device=self.device)
        return source.gather(
            self.first + (starts[:, None] + ((2 * i[None, :] + 1) * sizes[:, None]) // (2 * self.take)).reshape(-1))

    def pool_max(self, values: torch.Tensor, c0: int, c1: int, fill: float) -> torch.Tensor:
        """Max over each column's frames: ``values`` holds ``take`` rows per column in order
        (the last column of the input may have fewer, padded with ``fill``)."""
        k = c1 - c0
        short = k * self.take - values.shape[0]
        if short:
            values = torch.cat([values, values.new_full((short, self.bins), fill)])
        return values.reshape(k, self.take, self.bins).amax(1)

    def empty(self) -> torch.Tensor:
        return torch.empty(self.columns, self.bins, dtype=torch.float32, device=self.device)


class _OriginalPass:
    """Pass 1: the original's pooled power (whose peak fixes the floor); its frames are kept for
    pass 2 when they fit in memory (:data:`_KEEP_CELLS`) instead of analysed again."""

    def __init__(self, plan: _ColumnPlan) -> None:
        self.plan = plan
        self.power = plan.empty()
        frames = plan.n_frames if plan.exact else plan.columns * plan.take
        self.kept: list[torch.Tensor] | None = [] if frames * plan.bins <= _KEEP_CELLS else None

    def run(self, ref_power: _LatticePower) -> Generator[None, None, None]:
        """One step per chunk."""
        for c0, c1 in self.plan.chunks:
            p_ref = self.plan.power(ref_power, c0, c1)
            if self.kept is not None:
                self.kept.append(p_ref)
            self.power[c0:c1] = self.plan.pool_max(p_ref, c0, c1, 0.0)
            yield


class _ReconstructionPass:
    """Pass 2: the reconstruction's pooled power, and the per-frame dB difference against the
    original (its signed extreme per column, and its mean magnitude per bin)."""

    def __init__(self, plan: _ColumnPlan, floor_db: float) -> None:
        self.plan, self.floor_db = plan, floor_db
        self.power = plan.empty()
        self.diff_max = plan.empty()
        self.diff_min = plan.empty()
        self.abs_sum = torch.zeros(plan.bins, dtype=torch.float64, device=plan.device)
        self.analysed = 0

    def run(self, rec_power: _LatticePower, ref_power: _LatticePower,
            kept: list[torch.Tensor] | None) -> Generator[None, None, None]:
        """Two steps per chunk (the reconstruction's power, then the difference)."""
        plan = self.plan
        for k, (c0, c1) in enumerate(plan.chunks):
            p_rec = plan.power(rec_power, c0, c1)
            self.power[c0:c1] = plan.pool_max(p_rec, c0, c1, 0.0)
            yield
            p_ref = kept[k] if kept is not None else plan.power(ref_power, c0, c1)
            diff = _db(p_rec, self.floor_db) - _db(p_ref, self.floor_db)
            self.diff_max[c0:c1] = plan.pool_max(diff, c0, c1, -math.inf)
            self.diff_min[c0:c1] = -plan.pool_max(-diff, c0, c1, -math.inf)
            self.abs_sum += diff.abs().sum(0, dtype=torch.float64)
            self.analysed += diff.shape[0]
            yield

    def difference(self) -> torch.Tensor:
        """Per column and bin, the frame difference of largest magnitude (signed)."""
        return torch.where(self.diff_min.abs() > self.diff_max.abs(), self.diff_min, self.diff_max)


def _two_band_steps(reference: np.ndarray, reconstruction: np.ndarray, chosen: Analysis, *, max_columns: int,
                    frames_per_column: int | None, sample_rate: int, device: str | torch.device,
                    top_db: float | None) -> Generator[tuple[int, int], None, SpectrogramPair]:
    """A two-band lattice's pair: each band's lattice analysed on its own, joined on the low band's rows.

    Rows below the crossover are the low band lattice's bins; each row above shows the high band
    bin it falls in. Columns are the high band lattice's (the finer in time); each shows the low
    band column that covers its time. Both bands are drawn against one peak, the higher of theirs
    (one floor, so their differences compare).
    """
    assert chosen.low_band is not None and chosen.geometry is not None
    high_analysis = Analysis.lattice(chosen.geometry)
    low_rows = min(chosen.bins, math.ceil(chosen.crossover_hz * chosen.low_band.channels / sample_rate) + 1)
    low_analysis = Analysis(chosen.low_band.window_length, chosen.low_band.hop, chosen.low_band, low_rows)

    def scaled(steps: Generator[tuple[int, int], None, SpectrogramPair], part: int
               ) -> Generator[tuple[int, int], None, SpectrogramPair]:
        try:
            while True:
                done, total = next(steps)
                yield part * 1000 + (1000 * done) // max(total, 1), 4000
        except StopIteration as stop:
            return stop.value

    def both(top: float | None, first_part: int) -> Generator[tuple[int, int], None, tuple[SpectrogramPair, SpectrogramPair]]:
        """The low band's pair, then the high band's against the same peak (so one floor)."""
        low = yield from scaled(analyse_pair_steps(reference, reconstruction, analysis=low_analysis,
                                                   max_columns=max_columns, frames_per_column=frames_per_column,
                                                   sample_rate=sample_rate, device=device, top_db=top), first_part)
        high = yield from scaled(analyse_pair_steps(reference, reconstruction, analysis=high_analysis,
                                                    max_columns=max_columns, frames_per_column=frames_per_column,
                                                    sample_rate=sample_rate, device=device, top_db=low.top_db),
                                 first_part + 1)
        return low, high

    low, high = yield from both(top_db, 0)
    top = low.top_db
    if top_db is None and high.original_db.size and float(high.original_db.max()) > top:
        # The high band is the louder: both again against its peak (rare in music).
        low, high = yield from both(float(high.original_db.max()), 2)
        top = low.top_db
    floor = top - DISPLAY_RANGE_DB
    rows = np.arange(chosen.bins)
    df = sample_rate / chosen.channels
    below = rows * df < chosen.crossover_hz
    high_rows = np.minimum(np.rint(rows * df / high.hz_per_bin).astype(np.intp), high.bins - 1)
    low_rows_of = np.minimum(rows, low.bins - 1)
    times = high.left_s + (np.arange(high.columns) + 0.5) * high.seconds_per_column
    # A high band column centred on a low band column's edge takes the later one, the same in an
    # excerpt as in the whole track (the 1e-6 keeps rounding from deciding).
    low_columns = np.clip(np.floor((times - low.left_s) / low.seconds_per_column + 1e-6).astype(np.intp), 0,
                          low.columns - 1)

    def joined(hi: np.ndarray, lo: np.ndarray, floored: bool) -> np.ndarray:
        out = np.empty((chosen.bins, high.columns), dtype=np.float32)
        out[~below] = hi[high_rows[~below]]
        out[below] = lo[low_rows_of[below]][:, low_columns]
        return np.maximum(out, np.float32(floor)) if floored else out

    band_error = np.where(below, low.band_error_db[low_rows_of], high.band_error_db[high_rows]).astype(np.float32)
    return replace(high, original_db=joined(high.original_db, low.original_db, True),
                   reconstructed_db=joined(high.reconstructed_db, low.reconstructed_db, True),
                   difference_db=joined(high.difference_db, low.difference_db, False),
                   band_error_db=band_error, analysis=chosen, top_db=top, floor_db=floor)


def analyse_excerpt_steps(
    reference: np.ndarray,
    reconstruction: np.ndarray,
    start_s: float,
    end_s: float,
    *,
    top_db: float,
    geometry: str | StftGeometry = "thesis",
    analysis: Analysis | None = None,
    sample_rate: int = PIPELINE_SAMPLE_RATE,
    device: str | torch.device = "cpu",
) -> Generator[tuple[int, int], None, SpectrogramPair]:
    """Every frame (of ``analysis``, else of ``geometry``'s lattice) centred in [start_s, end_s) of a
    track, at full resolution.

    The detail the view draws over a max-pooled overview when zoomed in: the frames equal the
    whole track's analysis (each is computed from a piece of the track that holds its whole
    window), and the pair is placed in the track's time (its ``first_frame`` is the track's
    lattice frame). Arguments as :func:`analyse_pair_steps`; ``top_db`` is the whole track's.
    """
    chosen = as_analysis(analysis, geometry)
    hop, lg = chosen.hop, chosen.margin_samples
    # A two-band lattice's excerpt starts on the low band's hop too, so its frames are the track's.
    grid = chosen.low_band.hop if chosen.low_band is not None else hop
    ref = np.asarray(reference, dtype=np.float32)
    rec = np.asarray(reconstruction, dtype=np.float32)
    ref = ref[0] if ref.ndim == 2 else ref
    rec = rec[0] if rec.ndim == 2 else rec
    n = ref.shape[-1]
    first, n_frames = _audio_frames(n, chosen)
    # Audio frame k (lattice frame first + k) is centred on audio sample k * hop.
    k0 = max(0, math.floor(start_s * sample_rate / hop))
    k1 = min(n_frames, max(k0 + 1, math.ceil(end_s * sample_rate / hop)))
    s0 = max(0, (k0 * hop - lg) // grid * grid)  # a whole window before, on the hop grid
    s1 = min(n, (k1 - 1) * hop + lg)
    rec = rec[:n] if rec.shape[-1] >= n else np.pad(rec, (0, n - rec.shape[-1]))
    part = yield from analyse_pair_steps(ref[s0:s1], rec[s0:s1], analysis=chosen, max_columns=s1 - s0,
                                         sample_rate=sample_rate, device=device, top_db=top_db)
    c0, c1 = k0 - s0 // hop, k1 - s0 // hop
    return replace(
        part,
        original_db=np.ascontiguousarray(part.original_db[:, c0:c1]),
        reconstructed_db=np.ascontiguousarray(part.reconstructed_db[:, c0:c1]),
        difference_db=np.ascontiguousarray(part.difference_db[:, c0:c1]),
        first_frame=first + k0,
        n_frames=c1 - c0,
        duration_s=n / sample_rate,
    )


def analyse_pair(reference: np.ndarray, reconstruction: np.ndarray, **options) -> SpectrogramPair:
    """:func:`analyse_pair_steps` run to the end (same arguments)."""
    return drive(analyse_pair_steps(reference, reconstruction, **options))


def analyse_excerpt(reference: np.ndarray, reconstruction: np.ndarray, start_s: float, end_s: float,
                    **options) -> SpectrogramPair:
    """:func:`analyse_excerpt_steps` run to the end (same arguments)."""
    return drive(analyse_excerpt_steps(reference, reconstruction, start_s, end_s, **options))


__all__ = ["Analysis", "DEFAULT_ANALYSIS", "DISPLAY_RANGE_DB", "LOW_FREQUENCY_ANALYSIS", "MAX_COLUMNS", "MAX_ROWS",
           "OVERLAPS", "SpectrogramPair", "overview_columns", "WINDOW_LENGTHS", "analyse_excerpt", "analyse_excerpt_steps", "analyse_pair",
           "analyse_pair_steps", "analysis_window", "as_analysis"]
