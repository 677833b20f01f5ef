"""Audio playback through PortAudio (``sounddevice``), Qt-free: one shared position for a
trial's preloaded stimuli, click-free switching, and a reason whenever nothing is heard.

Callers use :class:`Player` and :func:`output_devices`; the parts (``device``, ``program``,
``mixer``, ``transport``) are described in :mod:`mosapp.playback.player`.
"""

from mosapp.playback.device import OutputDevice, output_devices
from mosapp.playback.mixer import Curve, Level, Ramp
from mosapp.playback.player import (
    DEFAULT_BLOCKSIZE,
    DEFAULT_CROSSFADE_MS,
    DEFAULT_LEVEL_RAMP_MS,
    DEFAULT_RATE,
    MAX_LEVEL_DB,
    Player,
)

__all__ = [
    "DEFAULT_BLOCKSIZE",
    "DEFAULT_CROSSFADE_MS",
    "DEFAULT_LEVEL_RAMP_MS",
    "DEFAULT_RATE",
    "MAX_LEVEL_DB",
    "Curve",
    "Level",
    "OutputDevice",
    "Player",
    "Ramp",
    "output_devices",
]
