"""Frozen settings of the pipeline: STFT geometries, the log-magnitude image mapping and run options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mosapp.core.errors import ConfigError

#: The rate every stage runs at; audio is resampled to it on the way in and back on the way out.
PIPELINE_SAMPLE_RATE = 44_100
#: FGLA iterations accepted (``--fgla-iterations``, a study's ``pipeline.fgla_iterations``):
#: 1000 already cost about 30x the default 32 and buy nothing audible.
FGLA_ITERATIONS_RANGE = (0, 1000)


@dataclass(frozen=True)
class StftGeometry:
    """A Gaussian-window STFT lattice, the same one tifresi's ``GaussTruncTF`` uses.

    The window is ``g[n] = exp(-pi n^2 / (hop * channels))`` (time-frequency ratio
    ``lambda = hop * channels`` samples^2), truncated where it falls below
    ``min_height`` and stored in a buffer of ``window_length`` samples, a multiple of
    ``channels``; it is normalised to unit l2 norm.

    Attributes:
        name: kebab-case name used on the command line.
        channels: FFT size M (number of frequency channels before the real-FFT fold).
        hop: hop size a in samples.
        min_height: relative height at which the Gaussian is truncated.
    """

    name: str
    channels: int
    hop: int
    min_height: float = 1e-4

    @property
    def bins(self) -> int:
        """Frequency rows of a spectrogram image: ``channels // 2 + 1``."""
        return self.channels // 2 + 1

    @property
    def tf_ratio(self) -> float:
        """lambda = hop * channels, the Gaussian's time-frequency ratio in samples^2."""
        return float(self.hop * self.channels)

    @property
    def true_window_length(self) -> float:
        """Support (samples) of the Gaussian above ``min_height``."""
        return math.sqrt(-4.0 * self.tf_ratio * math.log(self.min_height) / math.pi)

    @property
    def window_length(self) -> int:
        """Window buffer length: the support rounded up to a multiple of ``channels``."""
        return int(math.ceil(self.true_window_length / self.channels) * self.channels)

    @property
    def redundancy(self) -> float:
        return self.channels / self.hop

    def frames_for(self, n_samples: int) -> int:
        """Frames the lattice places on a (circular) signal of ``n_samples`` samples."""
        return n_samples // self.hop

    def seconds_per_frame(self, sample_rate: int = PIPELINE_SAMPLE_RATE) -> float:
        return self.hop / sample_rate

    def hz_per_bin(self, sample_rate: int = PIPELINE_SAMPLE_RATE) -> float:
        return sample_rate / self.channels


GEOMETRIES: dict[str, StftGeometry] = {
    # The seed's settings: 512 channels, hop 64 (257 x 689 pixels per second at 44.1 kHz).
    "thesis": StftGeometry("thesis", channels=512, hop=64),
    # Same pixel count per second, longer window: better phase reconstruction.
    "wide": StftGeometry("wide", channels=1024, hop=128),
}


def get_geometry(name: str | StftGeometry) -> StftGeometry:
    """Look a geometry up by name.

    Raises:
        ConfigError: the name is unknown; the message lists the known ones.
    """
    if isinstance(name, StftGeometry):
        return name
    try:
        return GEOMETRIES[name]
    except KeyError:
        known = ", ".join(sorted(GEOMETRIES))
        raise ConfigError(f'Unknown geometry "{name}"; known geometries: {known}.') from None


@dataclass(frozen=True)
class ImageMapping:
    """How a magnitude spectrogram becomes a grayscale image in [0, 1] and back.

    ``pixel = clip((20 log10(max(|S|, floor)) - top_db) / dynamic_range_db + 1, 0, 1)``
    where ``top_db`` is the clip's peak level in dB (recorded, so decoding restores the
    absolute level). Pixel 1 is the peak; pixel 0 is ``dynamic_range_db`` below it or
    lower. ``floor_db`` is an absolute floor applied before the peak is taken, so an
    almost-silent clip does not blow noise up to full scale.

    Attributes:
        dynamic_range_db: dB span mapped to [0, 1].
        floor_db: absolute magnitude floor in dB (re 1.0 magnitude).
    """

    dynamic_range_db: float = 100.0
    floor_db: float = -160.0


@dataclass(frozen=True)
class PipelineConfig:
    """Everything one round trip needs besides the audio.

    Attributes:
        geometry: STFT lattice name (``thesis`` or ``wide``).
        phase: phase reconstruction backend name.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        mono: mix down to mono (default) or process each channel.
        fgla_iterations: FGLA iterations for ``fgla`` and ``pghi+fgla``.
        block_seconds: audio committed per block; bounds memory on long inputs. A clip up
            to this long runs in one block, exactly like tifresi's whole-signal PGHI; longer
            inputs continue each block's phase from the previous one (seed frames).
        context_frames: frames of overlap either side of a block.
        image: log-magnitude image mapping.
    """

    # Chosen by benchmarks/roundtrip.py section 2 (3 music clips, 20 s each, mean): pghi+fgla
    # has the lowest mel distance of all backends in both geometries (thesis 0.259, wide
    # 0.308; pghi alone 0.454 / 0.471) at 2.5x real time on 2 CPU cores. Mel distance is the
    # lattice-independent measure, and thesis wins it; spectral convergence is measured on
    # each geometry's own lattice, so it does not compare the geometries.
    geometry: str = "thesis"
    phase: str = "pghi+fgla"
    device: str = "auto"
    mono: bool = True
    fgla_iterations: int = 32
    block_seconds: float = 32.0
    context_frames: int = 64
    image: ImageMapping = field(default_factory=ImageMapping)

    def __post_init__(self) -> None:
        lo, hi = FGLA_ITERATIONS_RANGE
        n = self.fgla_iterations
        if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
            raise ConfigError(f"fgla_iterations {n!r} is out of range; give a whole number from {lo} to {hi}.")
        if not (isinstance(self.block_seconds, (int, float)) and math.isfinite(self.block_seconds)
                and 0.0 < self.block_seconds <= 3600.0):
            raise ConfigError(f"block_seconds {self.block_seconds!r} is out of range; give more than 0 and at most "
                              f"3600 seconds.")
        if isinstance(self.context_frames, bool) or not isinstance(self.context_frames, int) \
                or not 0 <= self.context_frames <= 4096:
            raise ConfigError(f"context_frames {self.context_frames!r} is out of range; give 0 to 4096 frames.")

    def block_frames(self, geometry: StftGeometry) -> int:
        """Frames per block for ``geometry``."""
        return max(1, int(math.ceil(self.block_seconds * PIPELINE_SAMPLE_RATE / geometry.hop)))
