"""mosapp: compress audio as spectrogram images and measure what listeners hear.

The public names of the core (none of which imports Qt)::

    from mosapp import read_audio, write_audio, PipelineConfig, roundtrip, run_to_end
"""

from mosapp.core.audio import read_audio, write_audio
from mosapp.core.config import GEOMETRIES, PipelineConfig, StftGeometry, get_geometry
from mosapp.core.errors import AudioError, ConfigError, MosappError
from mosapp.core.version import __version__
from mosapp.pipeline import Progress, RoundTripResult, roundtrip, run_to_end

__all__ = [
    "GEOMETRIES",
    "AudioError",
    "ConfigError",
    "MosappError",
    "PipelineConfig",
    "Progress",
    "RoundTripResult",
    "StftGeometry",
    "__version__",
    "get_geometry",
    "read_audio",
    "roundtrip",
    "run_to_end",
    "write_audio",
]
