"""Measure codecs on music: the numbers in the results table and in the model cards.

For each (codec, clip): encode the excerpt, pack it into a real ``.sgc`` container (so
the bitrate is what a file costs, header included), decode, and score the decoded audio
against the excerpt with the metrics of :mod:`mosapp.metrics`:

* ``kbps``: 8 × container bytes / excerpt seconds / 1000;
* ``mel_distance``: DAC-style multi-scale mel distance (lower is better);
* ``spectral_convergence_db``: of the decoded audio's thesis-lattice STFT magnitude
  against the excerpt's (lower is better) — the same lattice for every codec, so
  waveform and spectrogram codecs compare;
* ``si_sdr_db``: scale-invariant SDR (phase-sensitive: low for every phase-rebuilding codec);
* ``visqol``: ViSQOL v3 audio mode at 48 kHz (1–5, higher is better);
* ``consistency``: tifresi's consistency of the decoded audio's log spectrogram;
* ``low_band_distance_db``, ``low_band_correlation``, ``high_band_distance_db``,
  ``high_band_correlation``: :func:`mosapp.metrics.band_metrics` (4096-point Hann STFT; the band
  below and above 1 kHz), which see the low-frequency damage mel distance and ViSQOL miss.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from mosapp import bitstream, dsp, metrics
from mosapp.audio import Audio, AudioInfo, read_audio
from mosapp.codecs import get_codec
from mosapp.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.errors import MosappError

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


def score(reference: np.ndarray, decoded: np.ndarray, *, visqol: bool = True) -> dict[str, float]:
    """Every metric but kbps of ``decoded`` against ``reference`` (both (channels, n) at the pipeline rate)."""
    geometry = get_geometry("thesis")
    ref = torch.from_numpy(np.ascontiguousarray(reference[0], dtype=np.float32))
    dec = torch.from_numpy(np.ascontiguousarray(decoded[0], dtype=np.float32))
    ref_mag = dsp.stft(dsp.pad_for_lattice(ref, geometry)[0], geometry).abs()
    dec_mag = dsp.stft(dsp.pad_for_lattice(dec, geometry)[0], geometry).abs()
    out = {
        "mel_distance": metrics.mel_distance(reference, decoded, PIPELINE_SAMPLE_RATE),
        "spectral_convergence_db": metrics.spectral_convergence_db(ref_mag, dec_mag),
        "si_sdr_db": metrics.si_sdr_db(reference, decoded),
        "consistency": metrics.consistency(metrics.log_spectrogram_for_consistency(dec_mag)),
        **metrics.band_metrics(reference, decoded, PIPELINE_SAMPLE_RATE),
    }
    out["visqol"] = metrics.visqol(reference, decoded, PIPELINE_SAMPLE_RATE) if visqol else float("nan")
    return out


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
        data = bitstream.pack(encoded, clip.info)
        t1 = time.perf_counter()
        decoded_enc, _ = bitstream.unpack(data)
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
