"""The two-band representation: a perfect-reconstruction crossover, a decimated low band.

In the thesis lattice (86 Hz bins, 1.45 ms hop) the band below 1 kHz is 12 of 257 rows
and its harmonics are unresolved (they beat). The two-band representation gives it a
lattice of its own::

    x_low  = h * x                     zero-phase FIR low-pass (pass ≤ 1000 Hz, stop ≥ 1350 Hz)
    x_high = x - x_low                 so x_low + x_high == x exactly
    low    = x_low[::8]                5512.5 Hz; the stop band is far below its Nyquist (2756 Hz)

``low`` is analysed on the thesis lattice *at the decimated rate* (512 channels, hop 64:
10.8 Hz bins, 11.6 ms hop) and only its first :data:`LOW_ROWS` rows (0–1378 Hz, the pass
and transition band) are an image; ``x_high`` is analysed on the thesis lattice at 44.1
kHz. Decoding rebuilds each band's phase on its own lattice, then::

    y = 8 · h_i * upsample8(low_hat)  +  (x_high_hat - h_c * x_high_hat)

``h_i`` (pass ≤ 1400 Hz, stop ≥ 4100 Hz) interpolates without touching the low band;
``h_c`` (pass ≤ 650 Hz, stop ≥ 1000 Hz) removes what the high band's reconstruction
leaks below the crossover, where ``x_high`` has nothing. Both are transparent where their
band lives, so coding nothing but the phase loses nothing in the crossover:
``merge(*split(x)) == x`` to float precision.

The low image is 128 × 86 = 11 k pixels per second against 177 k for the thesis image,
so an image codec can spend a generous share of its bits on the band that holds the
music's pitch.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mosapp.core.config import PIPELINE_SAMPLE_RATE

#: Decimation factor of the low band.
DECIMATION = 8
#: Sample rate of the low band, Hz.
LOW_SAMPLE_RATE = PIPELINE_SAMPLE_RATE / DECIMATION
#: Crossover low-pass: pass band edge and stop band edge, Hz.
PASS_HZ = 1000.0
STOP_HZ = 1350.0
#: Stop band attenuation of the crossover low-pass, dB.
STOP_DB = 90.0
#: Rows of the low image: bins 0..127 of the low lattice (0 to 1378 Hz, above STOP_HZ).
LOW_ROWS = 128
#: Rows of the high image below this bin (947 Hz) are set to black: x_high has nothing there.
HIGH_FIRST_ROW = 11


#: Interpolation filter of the low band and clean-up filter of the high band: (pass, stop) Hz.
INTERPOLATION_HZ = (1400.0, 4100.0)
CLEANUP_HZ = (650.0, 1000.0)


@lru_cache(maxsize=4)
def lowpass_taps(pass_hz: float = PASS_HZ, stop_hz: float = STOP_HZ) -> np.ndarray:
    """A linear-phase Kaiser FIR low-pass (odd length, unit DC gain, :data:`STOP_DB` stop band), float64.

    Applied centred (:func:`_filter`), so it is zero-phase. The default is the crossover.
    """
    from scipy.signal import firwin, kaiserord  # noqa: PLC0415 — scipy.signal takes ~0.7 s to import; only the band split needs it

    nyq = PIPELINE_SAMPLE_RATE / 2.0
    numtaps, beta = kaiserord(STOP_DB, (stop_hz - pass_hz) / nyq)
    numtaps |= 1
    taps = firwin(numtaps, (pass_hz + stop_hz) / 2.0, window=("kaiser", beta), fs=PIPELINE_SAMPLE_RATE)
    taps.setflags(write=False)
    return taps


def _filter(x: np.ndarray, gain: float = 1.0, band: tuple[float, float] = (PASS_HZ, STOP_HZ)) -> np.ndarray:
    """Zero-phase low-pass of ``x`` (..., n) → same shape, float32 (zeros outside the signal)."""
    from scipy.signal import oaconvolve  # noqa: PLC0415 — scipy.signal takes ~0.7 s to import; only the band split needs it

    taps = lowpass_taps(*band) * gain
    y = oaconvolve(np.asarray(x, dtype=np.float64), taps[(None,) * (np.ndim(x) - 1)], mode="same", axes=-1)
    return y.astype(np.float32)


#: The low band extends this many samples (pipeline rate) beyond either end of the signal, so
#: the low-pass output is kept whole (its ringing past the ends included) and stays band-limited.
MARGIN = 46 * DECIMATION


def low_length(n: int) -> int:
    """Samples of the decimated low band of an ``n``-sample signal (margins included)."""
    return (n + 2 * MARGIN + DECIMATION - 1) // DECIMATION


def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (n,) at the pipeline rate → (low band decimated to :data:`LOW_SAMPLE_RATE`,
    :func:`low_length` samples starting :data:`MARGIN` samples before ``x``; high band, n samples)."""
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[-1]
    x_low = _filter(np.pad(x, (MARGIN, MARGIN)))
    return np.ascontiguousarray(x_low[::DECIMATION]), x - x_low[MARGIN: MARGIN + n]


def upsample_low(low: np.ndarray, n: int) -> np.ndarray:
    """The decimated low band back at the pipeline rate (``n`` samples, margins removed):
    zero-stuffing, then the interpolation low-pass (gain 8)."""
    stuffed = np.zeros(low.shape[:-1] + (low.shape[-1] * DECIMATION,), dtype=np.float32)
    stuffed[..., ::DECIMATION] = low
    return _filter(stuffed, gain=float(DECIMATION), band=INTERPOLATION_HZ)[..., MARGIN: MARGIN + n]


def merge(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Recombine a decoded low band (decimated) and high band (pipeline rate, length n)."""
    high = np.asarray(high, dtype=np.float32)
    return upsample_low(low, high.shape[-1]) + (high - _filter(high, band=CLEANUP_HZ))
