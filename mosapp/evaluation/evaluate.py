"""Measure codecs on music: the numbers in the results table and in the model cards.

For each (codec, clip): encode the excerpt, pack it into a real ``.sgc`` container (so
the bitrate is what a file costs, header included), decode, and score the decoded audio
against the excerpt with the metrics of :mod:`mosapp.core.metrics`:

* ``kbps``: 8 × container bytes / excerpt seconds / 1000;
* ``mel_distance``: DAC-style multi-scale mel distance (lower is better);
* ``spectral_convergence_db``: of the decoded audio's thesis-lattice STFT magnitude
  against the excerpt's (lower is better) — the same lattice for every codec, so
  waveform and spectrogram codecs compare;
* ``si_sdr_db``: scale-invariant SDR (phase-sensitive: low for every phase-rebuilding codec);
* ``visqol``: ViSQOL v3 audio mode at 48 kHz (1–5, higher is better);
* ``consistency``: tifresi's consistency of the decoded audio's log spectrogram;
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
from mosapp.core import dsp, job, metrics
from mosapp.core.audio import Audio, AudioInfo, read_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.core.errors import MosappError
from mosapp.core.job import Progress, drive, relay

T = TypeVar("T")

METRIC_NAMES = ("kbps", "mel_distance", "spectral_convergence_db", "si_sdr_db", "visqol", "consistency",
                *metrics.BAND_METRIC_NAMES)


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
    """(spectral convergence dB, consistency) on the thesis lattice, tile by tile.

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
    out["spectral_convergence_db"], out["consistency"] = yield from counted(_spectral_steps(reference, decoded))
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
    core = {k: out[k] for k in ("mel_distance", "spectral_convergence_db", "si_sdr_db", "consistency")}
    return {**core, **band, "visqol": out["visqol"]}


def score(reference: np.ndarray, decoded: np.ndarray, *, visqol: bool = True) -> dict[str, float]:
    """Every metric but kbps of ``decoded`` against ``reference`` (both (channels, n) at the pipeline rate).

    Spectral convergence and consistency are of the first channel on the thesis lattice;
    mel distance and SI-SDR of every channel. Computed a tile at a time (:func:`score_steps`)."""
    return drive(score_steps(reference, decoded, visqol=visqol))


def evaluate_codec(name: str, clips: Iterable[Audio], config: PipelineConfig = PipelineConfig(), *,
                   visqol: bool = True, on_clip: Callable[[ClipScore], None] | None = None,
                   keep_decoded: bool = False) -> list[ClipScore]:
    """Encode → .sgc bytes → decode → score for every clip (``keep_decoded``: keep the audio too)."""
    codec = get_codec(name)
    availability = codec.availability()
    if not availability.ok:
        raise MosappError(availability.reason)
    results = []
    for clip in clips:
        t0 = time.perf_counter()
        encoded = codec.encode(clip.samples, config)
        data = container.pack(encoded, clip.info)
        t1 = time.perf_counter()
        decoded_enc, _ = container.unpack(data)
        decoded = codec.decode(decoded_enc, config)
        t2 = time.perf_counter()
        r = ClipScore(name, str(clip.info.path), clip.duration_s, encode_s=t1 - t0, decode_s=t2 - t1)
        r.scores = {"kbps": 8.0 * len(data) / clip.duration_s / 1000.0, **score(clip.samples, decoded, visqol=visqol)}
        if keep_decoded:
            r.decoded = np.ascontiguousarray(decoded, dtype=np.float32)
        results.append(r)
        if on_clip:
            on_clip(r)
    return results


def mean_scores(results: list[ClipScore]) -> dict[str, float]:
    """Mean over clips of every metric (NaN where no clip has it)."""
    return mean_of([r.scores for r in results])


def mean_of(rows: list[dict]) -> dict[str, float]:
    """Mean over ``rows`` (per-clip score dicts) of every :data:`METRIC_NAMES` entry; NaNs and
    missing keys (e.g. results saved before a metric existed) are skipped; NaN if none has it."""
    out = {}
    for k in METRIC_NAMES:
        values = [float(r[k]) for r in rows if r.get(k) is not None and not np.isnan(float(r[k]))]
        out[k] = float(np.mean(values)) if values else float("nan")
    return out
