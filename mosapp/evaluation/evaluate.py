"""Measure codecs on music: the numbers in the results table, the model cards, the app and a study's stimuli.

:func:`measure_steps` is the one way a codec is measured on a clip: encode, pack into a real
``.sgc`` container (so the bitrate is what a file costs, header included), unpack, decode
(block by block for a spectrogram codec, reporting progress), optionally align, and score the
decoded audio against the clip with the metrics of :mod:`mosapp.core.metrics` (whose registry
defines every name below). :func:`evaluate_codec` (the codec table), the app's Inspect job
(:mod:`mosapp.views.jobs`) and a study's rendering (:mod:`mosapp.study.prepare`) call it.

The codec table's figures (:data:`METRIC_NAMES`):

* ``file_kbps``: 8 × container bytes / excerpt seconds / 1000 (``kbps`` before);
* ``mel_distance``: DAC-style multi-scale mel distance (lower is better);
* ``spectral_convergence_db``: of the decoded audio's thesis-lattice STFT magnitude
  against the excerpt's (lower is better) — the same lattice for every codec, so
  waveform and spectrogram codecs compare;
* ``si_sdr_db``: scale-invariant SDR (phase-sensitive: low for every phase-rebuilding codec);
* ``visqol``: ViSQOL v3 audio mode at 48 kHz (1–5, higher is better);
* ``decoded_consistency``: tifresi's consistency of the decoded audio's thesis-lattice log
  spectrogram (``consistency`` before);
* ``low_band_distance_db``, ``low_band_correlation``, ``high_band_distance_db``,
  ``high_band_correlation``: :func:`mosapp.core.metrics.band_metrics` (4096-point Hann STFT; the band
  below and above 1 kHz), which see the low-frequency damage mel distance and ViSQOL miss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from mosapp.codecs import container, get_codec
from mosapp.codecs.base import Codec, Encoded
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.core import dsp, job, metrics
from mosapp.core.audio import Audio, AudioInfo, read_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.core.errors import MosappError
from mosapp.core.job import Progress, drive, relay
from mosapp.pipeline import VISQOL_AUTO_MAX_S

T = TypeVar("T")

#: The codec table's figures, in its order: the file bitrate and every metric of decoded audio.
METRIC_NAMES: tuple[str, ...] = ("file_kbps", *metrics.SIGNAL_METRIC_NAMES)
#: Names that results saved before the registry used (``benchmarks/results``, model cards): read as the new ones.
LEGACY_NAMES: dict[str, str] = {"kbps": "file_kbps", "consistency": "decoded_consistency"}


def renamed(row: dict) -> dict:
    """``row`` (saved per-clip scores) with every :data:`LEGACY_NAMES` key under its new name
    (a row that has both keeps the new one)."""
    out = {}
    for key, value in row.items():
        new = LEGACY_NAMES.get(key, key)
        if new == key or new not in row:
            out[new] = value
    return out


@dataclass
class ClipScore:
    codec: str
    clip: str
    seconds: float
    scores: dict[str, float] = field(default_factory=dict)
    encode_s: float = 0.0
    decode_s: float = 0.0
    #: The decoded audio (channels, n), kept only when asked (``evaluate_codec(keep_decoded=True)``).
    decoded: np.ndarray | None = None


def excerpt(path: str, start_s: float, seconds: float) -> Audio:
    """``seconds`` of mono audio from ``start_s`` (earlier if the file is short) at the pipeline rate."""
    audio = read_audio(path)
    n = int(seconds * PIPELINE_SAMPLE_RATE)
    s = int(start_s * PIPELINE_SAMPLE_RATE)
    total = audio.samples.shape[1]
    if total <= n:
        s = 0
    elif s + n > total:
        s = total - n
    samples = np.ascontiguousarray(audio.samples[:, s: s + n])
    info = AudioInfo(path=path, sample_rate=PIPELINE_SAMPLE_RATE, channels=1, frames=samples.shape[1],
                     subtype="PCM_16", format="WAV")
    return Audio(samples=samples, sample_rate=PIPELINE_SAMPLE_RATE, info=info)


#: Thesis-lattice frames per tile of the spectral metrics (about 6 s of audio).
SCORE_TILE_FRAMES = 4096
#: Audio per chunk of the mel distance's STFTs.
SCORE_MEL_CHUNK_S = 10.0


def _mel_chunks(n: int, sample_rate: int) -> list[tuple[int, int, int]]:
    """(window length, mel bands, frames per chunk) per chunk of :func:`_mel_distance_steps`, in order."""
    chunk_samples = int(SCORE_MEL_CHUNK_S * sample_rate)
    out = []
    for w, m in zip(metrics.MEL_WINDOW_LENGTHS, metrics.MEL_N_MELS):
        hop = w // 4
        n_frames = 1 + (n + 2 * (w // 2) - w) // hop
        step = max(1, chunk_samples // hop)
        out += [(w, m, step)] * math.ceil(n_frames / step)
    return out


def _mel_distance_steps(reference: np.ndarray, decoded: np.ndarray, sample_rate: int
                        ) -> Generator[str, None, float]:
    """:func:`mosapp.core.metrics.mel_distance` (same frames, same filters), a chunk of audio at a time.

    ``torch.stft(center=True)`` frames a reflect-padded signal; padding once and framing
    slices of it with ``center=False`` gives exactly those frames. The mean over bands and
    frames is accumulated in float64 (the whole-track version takes a float32 mean).
    """
    n = reference.shape[-1]
    c = reference.shape[0]
    both = torch.from_numpy(np.concatenate([np.asarray(reference, np.float32).reshape(c, n),
                                            np.asarray(decoded, np.float32).reshape(c, n)]))
    chunk_samples = int(SCORE_MEL_CHUNK_S * sample_rate)
    total = torch.zeros(c, dtype=torch.float64)
    with torch.no_grad():
        for w, m in zip(metrics.MEL_WINDOW_LENGTHS, metrics.MEL_N_MELS):
            hop = w // 4
            window = torch.hann_window(w, periodic=True, dtype=torch.float32)
            padded = torch.nn.functional.pad(both[:, None, :], (w // 2, w // 2), mode="reflect")[:, 0]
            n_frames = 1 + (padded.shape[-1] - w) // hop
            filters = torch.from_numpy(metrics._mel_filters(int(sample_rate), w, m).copy())
            step = max(1, chunk_samples // hop)
            acc = torch.zeros(c, dtype=torch.float64)
            for f0 in range(0, n_frames, step):
                yield "mel distance"
                f1 = min(n_frames, f0 + step)
                segment = padded[:, f0 * hop: (f1 - 1) * hop + w]
                spec = torch.stft(segment, n_fft=w, hop_length=hop, window=window, center=False,
                                  return_complex=True).abs()
                log_mel = torch.log10(torch.matmul(filters, spec).clamp(min=metrics.MEL_CLAMP_EPS))
                acc += (log_mel[:c] - log_mel[c:]).abs().sum(dim=(1, 2), dtype=torch.float64)
            total += acc / (m * n_frames)
    return float(total.mean().item())


def _spectral_tiles(n: int) -> int:
    geometry = get_geometry("thesis")
    return math.ceil(geometry.frames_for(dsp.padded_length(n, geometry)) / SCORE_TILE_FRAMES)


def _spectral_steps(reference: np.ndarray, decoded: np.ndarray) -> Generator[str, None, tuple[float, float]]:
    """(spectral convergence dB, decoded consistency) on the thesis lattice, tile by tile.

    The same values as :func:`mosapp.core.metrics.spectral_convergence_db` of the two STFT
    magnitudes and :func:`mosapp.core.metrics.consistency` of the decoded one's log spectrogram
    (tifresi's floor at peak × 1e-5), from sums accumulated in float64: the norms' squares,
    and the sums and cross sums of the two derivatives that Pearson's correlation needs.
    """
    geometry = get_geometry("thesis")
    ref = dsp.pad_for_lattice(torch.from_numpy(np.ascontiguousarray(reference[0], dtype=np.float32)), geometry)[0]
    dec = dsp.pad_for_lattice(torch.from_numpy(np.ascontiguousarray(decoded[0], dtype=np.float32)), geometry)[0]
    n_frames = geometry.frames_for(ref.shape[-1])
    tiles = list(range(0, n_frames, SCORE_TILE_FRAMES))
    dec_mag = torch.empty(geometry.bins, n_frames, dtype=torch.float32)
    ref_sq = err_sq = 0.0
    for t0 in tiles:
        yield "spectral convergence"
        t1 = min(n_frames, t0 + SCORE_TILE_FRAMES)
        r = dsp.stft(ref, geometry, t0, t1).abs()
        e = dsp.stft(dec, geometry, t0, t1).abs()
        dec_mag[:, t0:t1] = e
        r64 = r.to(torch.float64)
        ref_sq += float((r64 * r64).sum())
        d = r64 - e.to(torch.float64)
        err_sq += float((d * d).sum())
    if ref_sq == 0.0:
        sc = math.nan
    elif err_sq == 0.0:
        sc = -math.inf
    else:
        sc = 20.0 * math.log10(math.sqrt(err_sq) / math.sqrt(ref_sq))

    bins = geometry.bins
    if n_frames < 3 or bins < 3:
        return sc, math.nan
    peak = float(dec_mag.max())
    minimum = peak * metrics.CONSISTENCY_RELATIVE_FLOOR
    if minimum <= 0.0:
        minimum = float(np.finfo(np.float64).tiny)
    sums = np.zeros(5)  # a, b, a², b², ab
    count = 0
    for t0 in tiles:
        yield "consistency"
        lo, hi = max(1, t0), min(n_frames - 1, t0 + SCORE_TILE_FRAMES)
        if hi <= lo:
            continue
        mag = dec_mag[:, lo - 1: hi + 1].numpy().astype(np.float64)
        # The operations of metrics.log_spectrogram_for_consistency and metrics.consistency.
        log_spec = np.log(10 ** ((10.0 * np.log10(np.clip(mag, a_min=minimum, a_max=None))) / 10))
        centre = log_spec[1:-1, 1:-1]
        a = np.abs(log_spec[1:-1, :-2] - 2 * centre + log_spec[1:-1, 2:] + np.pi / 4)
        b = np.abs(log_spec[:-2, 1:-1] - 2 * centre + log_spec[2:, 1:-1] + np.pi / 4)
        sums += (a.sum(), b.sum(), (a * a).sum(), (b * b).sum(), (a * b).sum())
        count += a.size
    sa, sb, saa, sbb, sab = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sab - sa * sb / count
        var = (saa - sa * sa / count) * (sbb - sb * sb / count)
        consistency = float(np.float64(cov) / np.sqrt(np.float64(var))) if var > 0 else math.nan
    return sc, consistency


def score_steps(reference: np.ndarray, decoded: np.ndarray, *, visqol: bool = True
                ) -> Generator[Progress, None, dict[str, float]]:
    """:func:`score` as a generator: yields :class:`~mosapp.core.job.Progress` (stage
    ``"metrics"``, unit ``"chunks"`` of the whole measurement, ``detail`` the metric in
    progress) between chunks of work, so a 10-minute track can be stopped within a fraction of
    a second, and returns the scores."""
    n = reference.shape[-1]
    total = len(_mel_chunks(n, PIPELINE_SAMPLE_RATE)) + 2 * _spectral_tiles(n) + 2 + int(visqol)
    done = 0

    def step(metric: str) -> Progress:
        nonlocal done
        p = Progress("metrics", min(done, total - 1), total, "chunks", metric)
        done += 1
        return p

    def counted(gen: Generator[str, None, T]) -> Generator[Progress, None, T]:
        return relay(gen, step)

    out: dict[str, float] = {}
    out["mel_distance"] = yield from counted(_mel_distance_steps(reference, decoded, PIPELINE_SAMPLE_RATE))
    out["spectral_convergence_db"], out["decoded_consistency"] = yield from counted(_spectral_steps(reference, decoded))
    yield step("SI-SDR")
    out["si_sdr_db"] = metrics.si_sdr_db(reference, decoded)
    yield step("band metrics")
    band = metrics.band_metrics(reference, decoded, PIPELINE_SAMPLE_RATE)  # checks the job's flag per chunk
    if visqol:
        yield step("ViSQOL")
        # One library call of up to ~25 s (120 s of audio): waited for in slices, so a
        # cancel is not held up by it.
        out["visqol"] = job.call(metrics.visqol, reference, decoded, PIPELINE_SAMPLE_RATE)
    else:
        out["visqol"] = float("nan")
    core = {k: out[k] for k in ("mel_distance", "spectral_convergence_db", "si_sdr_db", "decoded_consistency")}
    return {**core, **band, "visqol": out["visqol"]}


def score(reference: np.ndarray, decoded: np.ndarray, *, visqol: bool = True) -> dict[str, float]:
    """Every metric of decoded audio (:data:`mosapp.core.metrics.SIGNAL_METRIC_NAMES`) of ``decoded``
    against ``reference`` (both (channels, n) at the pipeline rate).

    :func:`mosapp.core.metrics.score`'s figures (spectral convergence and decoded consistency of the
    first channel on the thesis lattice; mel distance and SI-SDR of every channel), computed a
    tile at a time (:func:`score_steps`), so equal to them to float rounding."""
    return drive(score_steps(reference, decoded, visqol=visqol))


def estimate_delay(reference: np.ndarray, estimate: np.ndarray, max_lag: int) -> int:
    """Samples by which ``estimate`` lags ``reference`` (negative: leads), 0 when unclear.

    Cross-correlation of the mono mixes over ``±max_lag``; a lag is taken only where its
    normalised correlation is at least 0.5 and clearly above the correlation at lag 0
    (phase-reconstructing codecs correlate weakly everywhere and are aligned by design).
    """
    r = np.asarray(reference, dtype=np.float64).mean(axis=0)
    e = np.asarray(estimate, dtype=np.float64).mean(axis=0)
    n = min(r.size, e.size)
    r, e = r[:n] - r[:n].mean(), e[:n] - e[:n].mean()
    norm = math.sqrt(float(np.dot(r, r)) * float(np.dot(e, e)))
    if n == 0 or norm == 0.0:
        return 0
    size = 1 << int(math.ceil(math.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(e, size) * np.conj(np.fft.rfft(r, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xc[: max_lag + 1], xc[size - max_lag:]]) / norm
    best = int(np.argmax(values))
    if values[best] >= 0.5 and values[best] > 1.2 * max(values[0], 0.0):
        return int(lags[best])
    return 0


def align_and_trim(decoded: np.ndarray, delay: int, n: int) -> np.ndarray:
    """Undo ``delay`` and crop or zero-pad to exactly ``n`` samples per channel."""
    out = np.zeros((decoded.shape[0], n), dtype=np.float32)
    src = decoded[:, delay:] if delay >= 0 else np.concatenate(
        [np.zeros((decoded.shape[0], -delay), dtype=np.float32), decoded], axis=1)
    m = min(n, src.shape[1])
    out[:, :m] = src[:, :m]
    return out


#: How :func:`measure_steps` scores: ``(reference, decoded)`` → a generator of progress returning the scores.
Scorer = Callable[[np.ndarray, np.ndarray], Generator[Progress, None, dict[str, float]]]


@dataclass
class Measurement:
    """A codec measured on a clip (:func:`measure_steps`).

    Attributes:
        codec: its registry name.
        decoded: float32 (channels, n): the codec's output (aligned to the clip when asked).
        encoded: what the encoder made.
        seconds: the clip's length.
        file_bytes: size of the ``.sgc`` container (None when the codec ran in memory).
        scores: by metric name (:data:`mosapp.core.metrics.METRICS`); ``visqol`` NaN when not run.
        notes: why a score is missing, by metric name.
        delay_samples: the codec delay undone (with ``max_delay_samples``).
        timings_s: seconds of "encode" (with packing), "decode" (with unpacking), "metrics".
    """

    codec: str
    decoded: np.ndarray
    encoded: Encoded
    seconds: float
    file_bytes: int | None
    scores: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)
    delay_samples: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def file_kbps(self) -> float:
        """:data:`mosapp.core.metrics.METRICS` ``file_kbps`` (NaN when the codec ran in memory)."""
        return math.nan if self.file_bytes is None else metrics.kbps(self.file_bytes, self.seconds)

    @property
    def payload_kbps(self) -> float:
        """:data:`mosapp.core.metrics.METRICS` ``payload_kbps``."""
        return float(self.encoded.payload_kbps)


def _as_measuring(p: Progress) -> Progress:
    return Progress("metrics", p.done, p.total, unit="chunks", detail=f"{p.detail}: chunk {p.done + 1:,} of {p.total:,}")


def chunked_scores(reference: np.ndarray, decoded: np.ndarray) -> Generator[Progress, None, dict[str, float]]:
    """The default scorer of :func:`measure_steps`: :func:`score_steps` but ViSQOL (which
    :func:`measure_steps` runs itself), as "metrics" progress."""
    scores = yield from relay(score_steps(reference, decoded, visqol=False), _as_measuring)
    del scores["visqol"]
    return scores


def measure_steps(codec: Codec | str, samples: np.ndarray, config: PipelineConfig = PipelineConfig(), *,
                  info: AudioInfo | None = None, container_file: bool = True, visqol: bool | None = None,
                  visqol_errors: bool = False, scorer: Scorer = chunked_scores,
                  max_delay_samples: int | None = None) -> Generator[Progress, None, Measurement]:
    """Measure ``codec`` on ``samples`` (float32 (channels, n) at the pipeline rate); yields
    :class:`~mosapp.core.job.Progress` of the stages "encode", "decode" (frames, for a spectrogram
    codec) and "metrics", returns the :class:`Measurement`.

    Args:
        codec: a codec or its registry name.
        samples: the clip.
        config: pipeline settings (geometry, phase backend, device).
        info: the clip's format, written into the container (default: a mono WAV at the pipeline rate).
        container_file: pack into a ``.sgc`` container and decode what is unpacked from it (the
            file bitrate needs it); False: decode the encoder's output in memory.
        visqol: run ViSQOL; None: only up to :data:`mosapp.pipeline.VISQOL_AUTO_MAX_S` seconds.
        visqol_errors: let a ViSQOL failure raise (default: NaN and a note).
        scorer: how the metrics are computed (default :func:`chunked_scores`); ViSQOL is run as
            ``visqol`` says unless the scorer's scores have it.
        max_delay_samples: undo a codec delay of up to this many samples (:func:`estimate_delay`)
            and trim the output to the clip's length before scoring.

    Raises:
        MosappError: the codec cannot run here (its reason), or a codec's own error.
    """
    codec = get_codec(codec) if isinstance(codec, str) else codec
    availability = codec.availability()
    if not availability.ok:
        raise MosappError(availability.reason)
    n = samples.shape[-1]
    seconds = n / PIPELINE_SAMPLE_RATE
    timings: dict[str, float] = {}

    yield Progress("encode", 0, 1, detail=codec.name)
    t = time.perf_counter()
    encoded = codec.encode(samples, config)
    data = None
    if container_file:
        info = info or AudioInfo(path=None, sample_rate=PIPELINE_SAMPLE_RATE, channels=samples.shape[0], frames=n,
                                 subtype="PCM_16", format="WAV")
        data = container.pack(encoded, info)
    timings["encode"] = time.perf_counter() - t
    yield Progress("encode", 1, 1, detail=codec.name)

    yield Progress("decode", 0, 1, detail=codec.name)
    t = time.perf_counter()
    stream = container.unpack(data, name=f"the {codec.name} stream")[0] if data is not None else encoded
    if isinstance(codec, SpectrogramCodec):
        # Reports and can stop between phase blocks; the same samples as codec.decode.
        def as_decode(p: Progress) -> Progress:
            return Progress("decode", p.done, p.total, unit="frames",
                            detail=f"phase {config.phase}: frame {p.done:,} of {p.total:,}")

        decoded = yield from relay(codec.decode_steps(stream, config), as_decode)
    else:
        decoded = codec.decode(stream, config)
    decoded = np.ascontiguousarray(decoded, dtype=np.float32)
    if decoded.ndim == 1:
        decoded = decoded[None, :]
    timings["decode"] = time.perf_counter() - t
    yield Progress("decode", 1, 1, detail=codec.name)

    delay = 0
    if max_delay_samples is not None:
        delay = estimate_delay(samples, decoded, max_delay_samples)
        decoded = align_and_trim(decoded, delay, n)
    t = time.perf_counter()
    scores = yield from scorer(samples, decoded)
    notes: dict[str, str] = {}
    run_visqol = visqol if visqol is not None else seconds <= VISQOL_AUTO_MAX_S
    if "visqol" not in scores:  # (else the scorer's own)
        scores["visqol"] = math.nan
        if run_visqol:
            yield Progress("metrics", 1, 1, detail="ViSQOL")
            try:
                # One long library call: waited for in slices, so a cancel does not wait for it.
                scores["visqol"] = job.call(metrics.visqol, samples, decoded, PIPELINE_SAMPLE_RATE)
            except Exception as exc:
                if visqol_errors:
                    raise
                notes["visqol"] = str(exc)
        else:
            notes["visqol"] = f"not run: the clip is longer than {VISQOL_AUTO_MAX_S:.0f} s (ViSQOL: on runs it)"
    timings["metrics"] = time.perf_counter() - t
    return Measurement(codec=codec.name, decoded=decoded, encoded=encoded, seconds=seconds,
                       file_bytes=None if data is None else len(data), scores=scores, notes=notes,
                       delay_samples=delay, timings_s=timings)


def evaluate_codec(name: str, clips: Iterable[Audio], config: PipelineConfig = PipelineConfig(), *,
                   visqol: bool = True, on_clip: Callable[[ClipScore], None] | None = None,
                   keep_decoded: bool = False) -> list[ClipScore]:
    """:func:`measure_steps` for every clip: the :data:`METRIC_NAMES` scores (``keep_decoded``: keep the audio too)."""
    codec = get_codec(name)
    results = []
    for clip in clips:
        m = drive(measure_steps(codec, clip.samples, config, info=clip.info, visqol=visqol, visqol_errors=True))
        r = ClipScore(name, str(clip.info.path), clip.duration_s, encode_s=m.timings_s["encode"],
                      decode_s=m.timings_s["decode"])
        r.scores = {"file_kbps": metrics.kbps(m.file_bytes or 0, clip.duration_s), **m.scores}
        if keep_decoded:
            r.decoded = m.decoded
        results.append(r)
        if on_clip:
            on_clip(r)
    return results


def mean_scores(results: list[ClipScore]) -> dict[str, float]:
    """Mean over clips of every metric (NaN where no clip has it)."""
    return mean_of([r.scores for r in results])


def mean_of(rows: list[dict]) -> dict[str, float]:
    """Mean over ``rows`` (per-clip score dicts) of every :data:`METRIC_NAMES` entry; NaNs and
    missing keys (e.g. results saved before a metric existed) are skipped; NaN if none has it.
    Rows saved under :data:`LEGACY_NAMES` count under the new names."""
    rows = [renamed(r) for r in rows]
    out = {}
    for k in METRIC_NAMES:
        values = [float(r[k]) for r in rows if r.get(k) is not None and not np.isnan(float(r[k]))]
        out[k] = float(np.mean(values)) if values else float("nan")
    return out
