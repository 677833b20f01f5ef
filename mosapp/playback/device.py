"""Output devices and the PortAudio stream (``sounddevice``), and why nothing is heard when
there is none.

:func:`output_devices` lists the outputs; :class:`Output` opens a callback stream on one and
keeps, when it cannot, one sentence saying why the player is silent (:attr:`Output.silent_reason`).
No exception from the audio layer leaks out of this module: a missing package or library, no
device, a device out of range or one that refuses the stream all end in a reason.

sounddevice is imported only when a device is listed or opened: PortAudio reads the ALSA
configuration (``~/.asoundrc``) then, and a machine without PortAudio must still run the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: How every reason for silence starts.
SILENT = "Playback is silent"


@dataclass(frozen=True)
class OutputDevice:
    """An output device as PortAudio lists it.

    Attributes:
        index: PortAudio's device index (what :meth:`Player.open` takes).
        name: the device's name.
        hostapi: the host API (ALSA, PulseAudio, JACK, Core Audio, WASAPI …).
        channels: most output channels.
        default_samplerate: the device's preferred rate in Hz.
        is_default: the system's default output device.
    """

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate: float
    is_default: bool


def import_sounddevice() -> tuple[Any, str | None]:
    """(the sounddevice module, None), or (None, why it cannot be used) without raising."""
    try:
        import sounddevice as sd  # noqa: PLC0415 — PortAudio may be missing, and it reads ~/.asoundrc when imported
    except ImportError:
        return None, "the sounddevice package is not installed (pip install sounddevice)"
    except OSError:
        return None, "the PortAudio library is not installed (apt-get install libportaudio2)"
    except Exception as exc:  # noqa: BLE001 — PortAudio failing to initialise raises its own types
        return None, f"PortAudio could not be initialised ({describe(exc)})"
    return sd, None


def describe(exc: BaseException) -> str:
    """An exception's message on one line, without a trailing full stop (it goes inside a sentence)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")


def output_devices() -> list[OutputDevice]:
    """The output devices PortAudio sees; an empty list when there are none or PortAudio is missing.

    Never raises. PortAudio takes its device list when sounddevice is first imported, so a
    device plugged in later appears after a restart of the app.
    """
    sd, _ = import_sounddevice()
    if sd is None:
        return []
    try:
        hostapis = sd.query_hostapis()
        try:
            default_out = int(sd.default.device[1])
        except Exception:  # noqa: BLE001 — a host without a default device: any PortAudio error
            default_out = -1
        devices = []
        for index, dev in enumerate(sd.query_devices()):
            if int(dev["max_output_channels"]) <= 0:
                continue
            api = hostapis[dev["hostapi"]]
            is_default = index == default_out or (default_out < 0 and index == api.get("default_output_device", -1))
            devices.append(OutputDevice(index=index, name=str(dev["name"]), hostapi=str(api["name"]),
                                        channels=int(dev["max_output_channels"]),
                                        default_samplerate=float(dev["default_samplerate"]),
                                        is_default=bool(is_default)))
        return devices
    except Exception:  # noqa: BLE001 — listing devices must never stop the app
        return []


def choose_device(devices: list[OutputDevice], wanted: Any) -> tuple[OutputDevice | None, str]:
    """The output device meant by ``wanted`` (None: the default, an index, a name, part of a
    name, an :class:`OutputDevice`), or (None, why none is) — ``devices`` is not empty."""
    listing = ", ".join(f"{d.index} \"{d.name}\"" for d in devices)
    if wanted is None:
        for d in devices:
            if d.is_default:
                return d, ""
        return devices[0], ""
    if isinstance(wanted, OutputDevice):
        wanted = wanted.index
    if isinstance(wanted, (int, np.integer)) and not isinstance(wanted, bool):
        for d in devices:
            if d.index == int(wanted):
                return d, ""
        return None, f"there is no output device {int(wanted)} (output devices: {listing})"
    if isinstance(wanted, str):
        exact = [d for d in devices if d.name == wanted]
        if exact:
            return exact[0], ""
        part = [d for d in devices if wanted.lower() in d.name.lower()]
        if len(part) == 1:
            return part[0], ""
        if not part:
            return None, f"there is no output device named \"{wanted}\" (output devices: {listing})"
        return None, f"\"{wanted}\" names {len(part)} output devices; give one of: {listing}"
    return None, f"{wanted!r} does not name an output device; give an index or a name"


#: Frames per block on a sound card reached directly: PortAudio's "low" latency keeps switching immediate.
HARDWARE_BLOCK = 256
#: Frames per block through a sound server (PulseAudio, PipeWire, JACK, ALSA's default and its
#: plugins): the server schedules and buffers on its own, and on a busy machine 256-frame blocks
#: underran (3 s of audio took 13-30 s), so these start larger, with PortAudio's "high" latency.
SERVER_BLOCK = 1024
#: The largest block :func:`wider_margin` goes to (93 ms at 44.1 kHz: switching stays well under 0.2 s).
MAX_BLOCK = 4096
#: Underruns within one check (:meth:`mosapp.playback.Player.keep_margin`) that make the block larger.
UNDERRUNS_TO_WIDEN = 2
_SOUND_SERVERS = ("pulse", "pipewire", "jack", "default", "sysdefault", "dmix", "plug")


def is_sound_server(device: OutputDevice) -> bool:
    """Whether ``device`` goes through a sound server or an ALSA plugin (not straight to a card)."""
    text = f"{device.hostapi} {device.name}".lower()
    return any(word in text for word in _SOUND_SERVERS)


def initial_margin(device: OutputDevice) -> tuple[int, str]:
    """(block size in frames, PortAudio latency) a stream on ``device`` starts with."""
    return (SERVER_BLOCK, "high") if is_sound_server(device) else (HARDWARE_BLOCK, "low")


def wider_margin(blocksize: int) -> tuple[int, str] | None:
    """The next (block size, latency) after underruns at ``blocksize``: twice the block (at least
    512 frames) with "high" latency; None at :data:`MAX_BLOCK`."""
    if blocksize >= MAX_BLOCK:
        return None
    return min(MAX_BLOCK, max(512, 2 * blocksize)), "high"


#: Fills one output block ``(frames, channels)``; returns the number of the last command it applied (0: none).
Render = Callable[[np.ndarray], int]


class Output:
    """One PortAudio callback stream at a time, and why there is none.

    The stream's callback calls ``render`` for each block, notes when a block applied a
    command (:attr:`applied`), then calls ``rendered``. An exception there is a bug: the
    stream goes quiet and :attr:`silent_reason` says so, rather than PortAudio killing it.
    """

    def __init__(self) -> None:
        self._stream: Any = None
        #: A stream is open and its callback renders (False again after a failure in it).
        self.running = False
        self._closing = False
        self._device: OutputDevice | None = None
        self._reason = f"{SILENT}: no output device has been opened yet."
        self._failure: str | None = None
        self._latency = 0.0
        self._blocksize = 0
        #: Output underflows PortAudio reported since the stream was opened.
        self.xruns = 0
        #: (last command applied by a callback, ``time.perf_counter()`` when its block was
        #: rendered, that block's delay to the DAC in seconds).
        self.applied: tuple[int, float, float] = (0, 0.0, 0.0)
        self._render: Render | None = None
        self._rendered: Callable[[], None] | None = None

    @property
    def silent_reason(self) -> str | None:
        """None while a stream plays; otherwise one sentence saying why nothing is heard."""
        if self._failure is not None:
            return self._failure
        if self.running:
            return None
        return self._reason

    @property
    def device(self) -> OutputDevice | None:
        """The open output device, or None when silent."""
        return self._device if self.running else None

    @property
    def latency_s(self) -> float:
        """PortAudio's output latency of the open stream (0 when silent)."""
        return self._latency if self.running else 0.0

    @property
    def blocksize(self) -> int:
        """Frames per callback of the open stream (0 when silent)."""
        return self._blocksize if self.running else 0

    def find(self, wanted: Any) -> OutputDevice | None:
        """The device to open for ``wanted`` (see :func:`choose_device`); None, with
        :attr:`silent_reason` saying why, when there is none. Forgets an earlier failure."""
        self._failure = None
        sd, why = import_sounddevice()
        if sd is None:
            self._reason = f"{SILENT}: {why}."
            return None
        devices = output_devices()
        if not devices:
            self._reason = f"{SILENT}: no audio output device was found."
            return None
        chosen, why = choose_device(devices, wanted)
        if chosen is None:
            self._reason = f"{SILENT}: {why}."
        return chosen

    def start(self, chosen: OutputDevice, *, rate: int, channels: int, blocksize: int, latency: float | str,
              render: Render, rendered: Callable[[], None]) -> bool:
        """Open and start a float32 stream on ``chosen`` (found by :meth:`find`).

        Returns:
            True when it runs; False, with :attr:`silent_reason` saying why, when the device
            refused it.
        """
        sd, why = import_sounddevice()
        if sd is None:
            self._reason = f"{SILENT}: {why}."
            return False
        self._render, self._rendered = render, rendered
        stream = None
        try:
            stream = sd.OutputStream(samplerate=rate, blocksize=int(blocksize), device=chosen.index,
                                     channels=channels, dtype="float32", latency=latency,
                                     callback=self._callback, finished_callback=self._stream_finished)
            self._blocksize = int(blocksize) or 0
            self._latency = float(stream.latency)
            self.xruns = 0
            self.running = True
            self._closing = False
            self._stream = stream
            stream.start()
        except Exception as exc:  # noqa: BLE001 — any PortAudio failure becomes the silent-playback reason
            self.running = False
            self._stream = None
            if stream is not None:
                try:
                    stream.close(ignore_errors=True)
                except Exception:  # noqa: BLE001 — closing a stream that failed to open
                    pass
            self._reason = f"{SILENT}: the output device \"{chosen.name}\" could not be opened ({describe(exc)})."
            return False
        self._device = chosen
        return True

    def close(self) -> None:
        """Close the stream, if one is open. Safe to call at any time."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._closing = True
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 — stopping a stream whose device is gone
                pass
            self.running = False
            self._reason = f"{SILENT}: the output stream was closed."
            self._device = None
        self.running = False

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.xruns += 1
        if self._failure is not None or self._render is None or self._rendered is None:
            outdata.fill(0)
            return
        try:
            applied = self._render(outdata)
            if applied:
                ready = time.perf_counter()
                try:
                    dac = float(time_info.outputBufferDacTime - time_info.currentTime)
                except Exception:  # noqa: BLE001 — the audio callback must never raise
                    dac = 0.0
                self.applied = (applied, ready, dac)
            self._rendered()
        except Exception as exc:  # a bug: go quiet and say so rather than kill the stream
            outdata.fill(0)
            self._failure = f"Playback stopped because of an internal error ({describe(exc)})."
            self.running = False  # from now on the control thread applies commands itself
            log.exception("playback callback failed")

    def _stream_finished(self) -> None:
        """PortAudio says the stream ended; unless we closed it, it died (device unplugged …)."""
        if not self._closing:
            self.running = False
            self._reason = f"{SILENT}: the output stream stopped unexpectedly (was the device disconnected?)."
