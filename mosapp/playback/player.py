"""The playback engine: preloaded stimuli, one shared position, instant click-free switching.

A :class:`Player` owns the N stimuli of one trial (the original and its reconstructions, or a
listening test's reference and sample), preloaded as float32 frames. They share one playback
position; :meth:`Player.select` switches between them at that position, and the audio callback
crossfades from the old stimulus to the new one over ``crossfade_ms`` (5 ms by default), so a
switch is heard within one audio block and never clicks. The same holds for play/pause (a short
fade), seeking and loop wraps (a crossfade between the old and the new read position) and level
changes (a gain ramp). Per stimulus the player counts what was actually heard: play counts,
listening time, the furthest point, the fraction covered and whether it was heard to its end
(a listening test lets the listener rate only after that).

The output is a sounddevice (PortAudio) stream with a callback::

    player = Player([reference, sample], rate=44_100)      # float32 (channels, n) or (n,)
    player.open()              # default device; False (and player.silent_reason) when silent
    player.play(); player.select(1); player.seek(2.5); player.set_loop(1.0, 3.0)
    player.set_level(-6.0); player.position_s; player.heard_to_end; player.close()

When no output can be opened (the sounddevice package or the PortAudio library is missing, no
output device exists, the device is out of range or refuses the stream) :meth:`Player.open`
returns False and the player keeps working silently: every method still works and changes the
state, the position does not advance, and :attr:`Player.silent_reason` says in one sentence why
nothing is heard. No exception from the audio layer leaks out of this module.

Threads: the control methods (``select``, ``play``, ``seek`` …) may be called from one control
thread (the GUI thread). They never touch the audio state: they append a small tuple to a
``collections.deque`` (append/popleft are atomic) and update the values the getters return.
The audio callback drains that queue at the start of each block and owns all audio state; it
takes no lock, allocates no arrays (scratch buffers are preallocated; the mixing is a handful of
in-place numpy operations per block) and publishes position and state through plain attributes.
``on_finished`` is called from a helper thread, never from the audio callback.

:meth:`Player.render` is the callback's pure function (frames in, samples out): the tests drive
it directly, with no device, to check switching, fades, loops and accounting sample by sample.

Nothing here imports Qt; sounddevice is imported only when a device is listed or opened (PortAudio
reads the ALSA configuration then). :func:`write_virtual_alsa_config` writes an ALSA
configuration with a device that needs no sound card, for tests, benchmarks and headless CI.
"""

from __future__ import annotations

import logging
import math
import shlex
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mosapp.core.errors import ConfigError

log = logging.getLogger(__name__)

#: The pipeline's rate; stimuli at another rate are played at theirs (``Player(rate=...)``).
DEFAULT_RATE = 44_100
#: Default crossfade for switching, seeking and loop wraps, in milliseconds.
DEFAULT_CROSSFADE_MS = 5.0
#: Default ramp for level changes, in milliseconds.
DEFAULT_LEVEL_RAMP_MS = 20.0
#: Default audio block: 256 frames at 44.1 kHz is 5.8 ms, the longest a switch waits for a block.
DEFAULT_BLOCKSIZE = 256
#: The callback renders at most this many frames per step; scratch buffers are this long.
_CHUNK = 4096
#: Read positions that can sound at once (the current one and up to three fading out).
_HEADS = 4
#: Granularity of the "fraction heard" coverage, in seconds.
_COVERAGE_CELL_S = 0.01
#: Most channels a stimulus or the output may have.
_MAX_CHANNELS = 8
#: Loudest level accepted by set_level, in dB.
MAX_LEVEL_DB = 24.0

_SILENT = "Playback is silent"


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


def _import_sounddevice() -> tuple[Any, str | None]:
    """(the sounddevice module, None), or (None, why it cannot be used) without raising."""
    try:
        import sounddevice as sd
    except ImportError:
        return None, "the sounddevice package is not installed (pip install sounddevice)"
    except OSError:
        return None, "the PortAudio library is not installed (apt-get install libportaudio2)"
    except Exception as exc:  # PortAudio failing to initialise, for one
        return None, f"PortAudio could not be initialised ({_clean(exc)})"
    return sd, None


def _clean(exc: BaseException) -> str:
    """An exception's message on one line, without a trailing full stop (it goes inside a sentence)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")


def output_devices() -> list[OutputDevice]:
    """The output devices PortAudio sees; an empty list when there are none or PortAudio is missing.

    Never raises. PortAudio takes its device list when sounddevice is first imported, so a
    device plugged in later appears after a restart of the app.
    """
    sd, _ = _import_sounddevice()
    if sd is None:
        return []
    try:
        hostapis = sd.query_hostapis()
        try:
            default_out = int(sd.default.device[1])
        except Exception:
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
    except Exception:
        return []


def _as_frames(buffer: Any, channels: int, index: int, frames_first: bool = False) -> np.ndarray:
    """A stimulus as C-contiguous float32 frames ``(n, channels)``.

    1-D arrays are mono; 2-D arrays are ``(channels, n)`` as mosapp passes audio around, or
    ``(n, channels)`` when the first axis is clearly the longer one. Mono is copied to every
    output channel; more channels than the output has are mixed down (to mono) or cut.
    """
    arr = np.asarray(buffer, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim == 2 and frames_first:
        pass
    elif arr.ndim == 2:
        if arr.shape[0] <= _MAX_CHANNELS and arr.shape[0] <= arr.shape[1]:
            arr = arr.T
        elif arr.shape[1] > _MAX_CHANNELS:
            raise ConfigError(f"Stimulus {index} has shape {arr.shape}; give (channels, n) with at most "
                              f"{_MAX_CHANNELS} channels, or (n,) for mono.")
    else:
        raise ConfigError(f"Stimulus {index} has {arr.ndim} dimensions; give (channels, n) or (n,).")
    if arr.shape[0] == 0:
        raise ConfigError(f"Stimulus {index} is empty; every stimulus needs at least one sample.")
    if not np.isfinite(arr).all():
        raise ConfigError(f"Stimulus {index} contains NaN or infinite samples; only finite audio can be played.")
    have = arr.shape[1]
    if have != channels:
        if have == 1:
            arr = np.repeat(arr, channels, axis=1)
        elif channels == 1:
            arr = arr.mean(axis=1, keepdims=True)
        elif have > channels:
            arr = arr[:, :channels]
        else:
            arr = np.concatenate([arr, np.zeros((arr.shape[0], channels - have), np.float32)], axis=1)
    return np.ascontiguousarray(arr, dtype=np.float32)


class _Program:
    """One trial's preloaded stimuli and what has been heard of each (written by the audio thread)."""

    def __init__(self, buffers: Sequence[Any], channels: int, rate: int, names: Sequence[str] | None,
                 frames_first: bool = False):
        if len(buffers) == 0:
            raise ConfigError("The player needs at least one stimulus to play.")
        self.data = [_as_frames(b, channels, i, frames_first) for i, b in enumerate(buffers)]
        self.channels = channels
        self.count = len(self.data)
        self.lengths = [int(d.shape[0]) for d in self.data]
        self.total = max(self.lengths)
        if names is None:
            names = [str(i) for i in range(self.count)]
        if len(names) != self.count:
            raise ConfigError(f"{len(names)} names were given for {self.count} stimuli; give one name per stimulus.")
        self.names = [str(n) for n in names]
        self.cell = max(1, round(rate * _COVERAGE_CELL_S))
        self.coverage = [np.zeros(-(-n // self.cell), dtype=bool) for n in self.lengths]
        self.listened = [0] * self.count
        self.counts = [0] * self.count
        self.heard_end = [False] * self.count
        self.furthest = [0] * self.count
        # Per-stimulus gain ramps of one block, preallocated here (not in the callback).
        self.gain_scratch = np.zeros((self.count, _CHUNK), dtype=np.float32)
        self.frame_scratch = np.zeros((_CHUNK, channels), dtype=np.float32)

    def with_channels(self, channels: int, rate: int) -> _Program:
        """The same stimuli laid out for another channel count (keeps the statistics)."""
        other = _Program(self.data, channels, rate, self.names, frames_first=True)
        other.coverage, other.listened, other.counts = self.coverage, self.listened, self.counts
        other.heard_end, other.furthest = self.heard_end, self.furthest
        return other


class Player:
    """Plays N preloaded stimuli from one shared position; see the module's description.

    Args:
        buffers: the stimuli, float32 ``(channels, n)`` or ``(n,)``; lengths may differ (a
            shorter one is silent past its end; the shared timeline is the longest).
        rate: their sample rate in Hz (the stream runs at it).
        channels: output channels (2: mono stimuli are played on both).
        crossfade_ms: crossfade for switching, seeking and loop wraps.
        fade_ms: fade for play and pause (default: ``crossfade_ms``).
        level_ramp_ms: ramp for level changes.
        names: a name per stimulus (for messages and the GUI); default "0", "1" …
        on_finished: called (with no argument, from a helper thread when a stream is open) when
            playback reaches the end of the timeline without a loop.

    Raises:
        ConfigError: no stimuli, an empty or non-finite stimulus, an unusable shape or setting.
    """

    def __init__(self, buffers: Sequence[Any], rate: int = DEFAULT_RATE, *, channels: int = 2,
                 crossfade_ms: float = DEFAULT_CROSSFADE_MS, fade_ms: float | None = None,
                 level_ramp_ms: float = DEFAULT_LEVEL_RAMP_MS, names: Sequence[str] | None = None,
                 on_finished: Callable[[], None] | None = None):
        if not isinstance(rate, (int, np.integer)) or not 1_000 <= rate <= 768_000:
            raise ConfigError(f"The sample rate {rate!r} is not accepted; give a whole number of Hz from 1000 to 768000.")
        if not isinstance(channels, (int, np.integer)) or not 1 <= channels <= _MAX_CHANNELS:
            raise ConfigError(f"{channels!r} output channels are not accepted; give 1 to {_MAX_CHANNELS}.")
        for label, ms in (("crossfade_ms", crossfade_ms), ("fade_ms", fade_ms), ("level_ramp_ms", level_ramp_ms)):
            if ms is not None and not (isinstance(ms, (int, float)) and 0 < ms <= 1000):
                raise ConfigError(f"{label}={ms!r} is not accepted; give milliseconds in (0, 1000].")
        self.rate = int(rate)
        self._channels_wanted = int(channels)
        self._xfade = max(1, round(self.rate * crossfade_ms / 1000))
        self._fade = max(1, round(self.rate * (crossfade_ms if fade_ms is None else fade_ms) / 1000))
        self._ramp_len = max(1, round(self.rate * level_ramp_ms / 1000))
        self.on_finished = on_finished

        # Scratch for the callback (allocated once).
        self._steps = np.arange(1, _CHUNK + 1, dtype=np.float32)
        self._head_scratch = np.zeros((_HEADS, _CHUNK), dtype=np.float32)
        self._coef = np.zeros(_CHUNK, dtype=np.float32)
        self._tgain = np.zeros(_CHUNK, dtype=np.float32)
        self._lgain = np.zeros(_CHUNK, dtype=np.float32)

        # Control side.
        self._cmds: deque = deque()
        self._seq = 0
        self._stream = None
        self._running = False
        self._closing = False
        self._device: OutputDevice | None = None
        self._reason = f"{_SILENT}: no output device has been opened yet."
        self._failure: str | None = None
        self._latency = 0.0
        self._blocksize = 0
        self._xruns = 0
        self._wake = threading.Event()
        self._notifier: threading.Thread | None = None
        self._stop_notifier = False
        self._finished_count = 0
        self._finished_seen = 0
        self._applied: tuple[int, float, float] = (0, 0.0, 0.0)

        program = _Program(buffers, self._channels_wanted, self.rate, names)
        self._reset_audio_state(program)
        self._ctl_prog = program
        self._ctl_sel = 0
        self._ctl_loop: tuple[float, float] | None = None
        self._ctl_level_db = 0.0
        self._pub_pos = 0
        self._pub_playing = False

    # ------------------------------------------------------------------ audio-thread state
    def _reset_audio_state(self, program: _Program) -> None:
        """Everything the callback owns, for a freshly loaded program (paused at 0, stimulus 0)."""
        self._prog = program
        self._sel = 0
        self._bk = [self._xfade if i == 0 else 0 for i in range(program.count)]  # stimulus gain, 0..xfade
        self._bd = [1 if i == 0 else -1 for i in range(program.count)]          # its direction
        self._hpos = [0] * _HEADS                                               # read positions
        self._hk = [self._xfade] + [0] * (_HEADS - 1)                           # their gain, 0..xfade
        self._hd = [1] + [-1] * (_HEADS - 1)
        self._main = 0
        self._tk = 0            # transport gain, 0..fade
        self._td = -1           # +1 playing, -1 paused
        if not hasattr(self, "_gto"):
            self._gfrom = self._gto = 1.0
            self._gk = self._ramp_len
        self._loop: tuple[int, int, int] | None = None  # (start, wrap point, end) in samples
        self._count_pending = False

    # ------------------------------------------------------------------ properties
    @property
    def count(self) -> int:
        """How many stimuli are loaded."""
        return self._ctl_prog.count

    @property
    def names(self) -> list[str]:
        return list(self._ctl_prog.names)

    @property
    def channels(self) -> int:
        """Output channels (the stream's)."""
        return self._ctl_prog.channels

    @property
    def duration_s(self) -> float:
        """Length of the shared timeline (the longest stimulus), seconds."""
        return self._ctl_prog.total / self.rate

    @property
    def durations_s(self) -> list[float]:
        return [n / self.rate for n in self._ctl_prog.lengths]

    @property
    def selected(self) -> int:
        """Index of the stimulus being heard (the last one selected)."""
        return self._ctl_sel

    @property
    def position_s(self) -> float:
        """The shared position in seconds, as rendered (the playhead; the sound leaves the
        device :attr:`output_latency_s` later)."""
        return self._pub_pos / self.rate

    @property
    def playing(self) -> bool:
        """True from :meth:`play` until :meth:`pause` or the end of the timeline."""
        return self._pub_playing

    @property
    def loop(self) -> tuple[float, float] | None:
        """The loop region (start_s, end_s), or None."""
        return self._ctl_loop

    @property
    def level_db(self) -> float:
        return self._ctl_level_db

    @property
    def crossfade_ms(self) -> float:
        return 1000 * self._xfade / self.rate

    @property
    def play_counts(self) -> list[int]:
        """Per stimulus: how many times it started sounding (play, or switched to while playing)."""
        return list(self._ctl_prog.counts)

    @property
    def listened_s(self) -> list[float]:
        """Per stimulus: seconds of it that were played while it was selected."""
        return [n / self.rate for n in self._ctl_prog.listened]

    @property
    def heard_to_end(self) -> list[bool]:
        """Per stimulus: playback reached its last sample while it was selected."""
        return list(self._ctl_prog.heard_end)

    @property
    def furthest_s(self) -> list[float]:
        """Per stimulus: the furthest point played while it was selected, seconds."""
        return [n / self.rate for n in self._ctl_prog.furthest]

    @property
    def heard_fraction(self) -> list[float]:
        """Per stimulus: the fraction of its 10 ms cells that were played while it was selected."""
        return [float(c.mean()) for c in self._ctl_prog.coverage]

    @property
    def silent_reason(self) -> str | None:
        """None while a stream plays; otherwise one sentence saying why nothing is heard."""
        if self._failure is not None:
            return self._failure
        if self._running:
            return None
        return self._reason

    @property
    def device(self) -> OutputDevice | None:
        """The open output device, or None when silent."""
        return self._device if self._running else None

    @property
    def output_latency_s(self) -> float:
        """PortAudio's output latency of the open stream (0 when silent)."""
        return self._latency if self._running else 0.0

    @property
    def blocksize(self) -> int:
        """Frames per callback of the open stream (0 when silent)."""
        return self._blocksize if self._running else 0

    @property
    def xruns(self) -> int:
        """Output underflows PortAudio reported since :meth:`open`."""
        return self._xruns

    @property
    def command_seq(self) -> int:
        """Number of the last command posted (select, play, seek …)."""
        return self._seq

    @property
    def applied(self) -> tuple[int, float, float]:
        """(number of the last command the audio callback applied, ``time.perf_counter()`` when
        the callback that applied it had rendered its block, that block's delay to the DAC in
        seconds as PortAudio reports it). For latency measurements."""
        return self._applied

    # ------------------------------------------------------------------ control methods
    def select(self, index: int) -> None:
        """Switch to stimulus ``index`` at the current position (crossfaded in the next block)."""
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool) or not 0 <= index < self.count:
            raise ConfigError(f"Stimulus {index!r} does not exist; give 0 to {self.count - 1}.")
        self._ctl_sel = int(index)
        self._post("select", int(index))

    def play(self) -> None:
        """Start or resume (fading in); at the end of the timeline, start again from the beginning."""
        self._post("play")
        self._pub_playing = True
        if self._ctl_loop is None and self._pub_pos >= self._ctl_prog.total:
            self._pub_pos = 0

    def pause(self) -> None:
        """Pause (fading out); the position stays where the fade ended."""
        self._post("pause")
        self._pub_playing = False

    def toggle(self) -> None:
        """Play when paused, pause when playing (the space key)."""
        if self._pub_playing:
            self.pause()
        else:
            self.play()

    def seek(self, seconds: float) -> None:
        """Move the shared position (clamped to the timeline); crossfaded when sounding."""
        if not isinstance(seconds, (int, float, np.floating, np.integer)) or not math.isfinite(seconds):
            raise ConfigError(f"Cannot seek to {seconds!r}; give a position in seconds.")
        target = min(max(0, round(float(seconds) * self.rate)), self._ctl_prog.total)
        self._post("seek", target)
        self._pub_pos = target

    def set_loop(self, start_s: float | None, end_s: float | None = None) -> None:
        """Loop ``[start_s, end_s)`` (``set_loop(None)`` clears it).

        The last ``crossfade_ms`` of the region crossfade into its start, so a pass lasts
        ``end - start - crossfade`` and nothing after ``end_s`` is heard. A region shorter than
        four crossfades is widened to that. When the position is outside the region it moves
        to the region's start.

        Raises:
            ConfigError: the region is not inside the timeline or ends before it starts.
        """
        if start_s is None:
            self.clear_loop()
            return
        total = self._ctl_prog.total
        try:
            start, end = round(float(start_s) * self.rate), round(float(end_s) * self.rate)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"The loop ({start_s!r}, {end_s!r}) is not accepted; give start and end in seconds.") from None
        if not (0 <= start < end <= total):
            raise ConfigError(f"The loop {start_s!r}–{end_s!r} s is not accepted; give 0 <= start < end <= "
                              f"{total / self.rate:.3f} s.")
        shortest = 4 * self._xfade
        if end - start < shortest:
            end = min(total, start + shortest)
            start = max(0, end - shortest)
            if end - start < shortest:
                raise ConfigError(f"The timeline is too short ({total / self.rate * 1000:.1f} ms) to loop; a loop "
                                  f"needs {shortest / self.rate * 1000:.1f} ms.")
        self._ctl_loop = (start / self.rate, end / self.rate)
        self._post("loop", (start, end))
        if not start <= self._pub_pos < end - self._xfade:
            self._pub_pos = start

    def clear_loop(self) -> None:
        """Stop looping; playback goes on to the end of the timeline."""
        self._ctl_loop = None
        self._post("loop", None)

    def set_level(self, db: float) -> None:
        """Output level in dB (0 = as recorded, ``-inf`` = muted), reached over ``level_ramp_ms``."""
        try:
            db = float(db)
        except (TypeError, ValueError):
            raise ConfigError(f"The level {db!r} is not accepted; give dB, at most {MAX_LEVEL_DB:g}.") from None
        if math.isnan(db) or db > MAX_LEVEL_DB:
            raise ConfigError(f"The level {db!r} dB is not accepted; give dB, at most {MAX_LEVEL_DB:g}.")
        self._ctl_level_db = db
        self._post("level", 0.0 if db == -math.inf else 10.0 ** (db / 20.0))

    def load(self, buffers: Sequence[Any], names: Sequence[str] | None = None) -> None:
        """Replace the stimuli (the next trial): paused at 0 with stimulus 0 selected, no loop,
        fresh statistics. When sounding, it fades out first (waits at most ~0.1 s)."""
        program = _Program(buffers, self._ctl_prog.channels, self.rate, names)  # may raise ConfigError
        if self._running and self._pub_playing:
            self.pause()
        if self._running:
            self._wait_silent(0.1)
        self._ctl_prog = program
        self._ctl_sel = 0
        self._ctl_loop = None
        self._pub_pos = 0
        self._pub_playing = False
        self._post("load", program)

    # ------------------------------------------------------------------ device
    def open(self, device: int | str | OutputDevice | None = None, *, blocksize: int = DEFAULT_BLOCKSIZE,
             latency: float | str = "low") -> bool:
        """Open an output stream on ``device`` (index, name or part of one, :class:`OutputDevice`;
        None = the default output). Closes a stream already open.

        Returns:
            True when sound will be heard; False when the player stays silent, with
            :attr:`silent_reason` saying why. Never raises for audio problems.
        """
        self.close()
        self._failure = None
        sd, why = _import_sounddevice()
        if sd is None:
            self._reason = f"{_SILENT}: {why}."
            return False
        devices = output_devices()
        if not devices:
            self._reason = f"{_SILENT}: no audio output device was found."
            return False
        chosen, why = _choose_device(devices, device)
        if chosen is None:
            self._reason = f"{_SILENT}: {why}."
            return False
        channels = min(self._channels_wanted, chosen.channels)
        if channels != self._ctl_prog.channels:
            program = self._ctl_prog.with_channels(channels, self.rate)
            self._ctl_prog = program
            self._post("swap", program)
        stream = None
        try:
            stream = sd.OutputStream(samplerate=self.rate, blocksize=int(blocksize), device=chosen.index,
                                     channels=channels, dtype="float32", latency=latency,
                                     callback=self._callback, finished_callback=self._stream_finished)
            self._blocksize = int(blocksize) or 0
            self._latency = float(stream.latency)
            self._xruns = 0
            self._running = True
            self._closing = False
            self._stream = stream
            self._start_notifier()
            stream.start()
        except Exception as exc:
            self._running = False
            self._stream = None
            self._stop_notifier_thread()
            if stream is not None:
                try:
                    stream.close(ignore_errors=True)
                except Exception:
                    pass
            self._reason = f"{_SILENT}: the output device \"{chosen.name}\" could not be opened ({_clean(exc)})."
            self._drain()
            self._publish()
            return False
        self._device = chosen
        return True

    def close(self) -> None:
        """Close the stream (the player stays usable, silent). Safe to call at any time."""
        stream, self._stream = self._stream, None
        if stream is not None:
            self._closing = True
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:
                pass
            self._running = False
            self._reason = f"{_SILENT}: the output stream was closed."
            self._device = None
        self._running = False
        self._stop_notifier_thread()
        self._drain()
        if self._tk > 0 or self._td > 0:  # the stream stopped mid-sound: paused where it was
            self._td, self._tk = -1, 0
            self._settle()
        self._publish()
        self._dispatch()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ rendering
    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` output frames, ``(frames, channels)`` float32: exactly what the
        audio callback writes. For tests and offline use; not while a stream is open."""
        if self._running:
            raise RuntimeError("render() cannot be called while an output stream is open; close() it first.")
        out = np.zeros((int(frames), self._prog.channels), dtype=np.float32)
        self._render_into(out)
        self._publish()
        self._dispatch()
        return out

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self._xruns += 1
        if self._failure is not None:
            outdata.fill(0)
            return
        try:
            applied = self._render_into(outdata)
            if applied:
                ready = time.perf_counter()
                try:
                    dac = float(time_info.outputBufferDacTime - time_info.currentTime)
                except Exception:
                    dac = 0.0
                self._applied = (applied, ready, dac)
            self._publish()
            if self._finished_count != self._finished_seen:
                self._wake.set()
        except Exception as exc:  # a bug: go quiet and say so rather than kill the stream
            outdata.fill(0)
            self._failure = f"Playback stopped because of an internal error ({_clean(exc)})."
            self._running = False  # from now on the control thread applies commands itself
            log.exception("playback callback failed")

    def _render_into(self, out: np.ndarray) -> int:
        """Drain the commands, then fill ``out`` (frames, channels). Returns the last command applied (0: none)."""
        applied = self._drain()
        frames = out.shape[0]
        done = 0
        while done < frames:
            n = min(_CHUNK, frames - done)
            self._render_chunk(out[done:done + n])
            done += n
        return applied

    def _render_chunk(self, out: np.ndarray) -> None:
        n = out.shape[0]
        done = 0
        prog = self._prog
        while done < n:
            if self._tk == 0 and self._td < 0:  # paused and faded out
                out[done:].fill(0)
                return
            pos = self._hpos[self._main]
            limit = n - done
            if self._loop is not None:
                start, wrap, end = self._loop
                if pos >= wrap:
                    if self._td > 0 and self._tk > 0:
                        self._account(pos, end - pos)  # the tail, heard as it fades out
                    self._jump(start)
                    pos = start
                limit = min(limit, wrap - pos)
            else:
                if pos >= prog.total:
                    self._finish()
                    out[done:].fill(0)
                    return
                limit = min(limit, prog.total - pos)
            if self._td < 0:
                limit = min(limit, self._tk)  # the fade-out ends on a segment boundary
            self._mix(out[done:done + limit], limit)
            if self._td > 0:
                self._account(pos, limit)
            self._advance(limit)
            if self._tk == 0 and self._td < 0:
                self._settle()
            done += limit

    def _ramp(self, k: int, d: int, length: int, n: int, out: np.ndarray) -> None:
        """out[j] = clip(k + d*(j+1), 0, length) / length for j < n (the gain of each sample)."""
        np.multiply(self._steps[:n], d, out=out)
        out += k
        np.clip(out, 0, length, out=out)
        out /= np.float32(length)  # exact 1.0 at the end of a ramp

    def _mix(self, out: np.ndarray, n: int) -> None:
        """Sum of (read position × stimulus) contributions with their ramps, times transport and level."""
        prog = self._prog
        xf = self._xfade
        out.fill(0)
        gains = []
        for i in range(prog.count):
            k, d = self._bk[i], self._bd[i]
            if k == 0 and d < 0:
                continue
            if k == xf and d > 0:
                gains.append((i, None))
            else:
                g = prog.gain_scratch[i, :n]
                self._ramp(k, d, xf, n, g)  # linear: the stimuli of a trial are correlated
                gains.append((i, g))
        tmp = self._coef
        for h in range(_HEADS):
            k, d = self._hk[h], self._hd[h]
            if k == 0 and d < 0:
                continue
            if k == xf and d > 0:
                w = None
            else:
                w = self._head_scratch[h, :n]
                self._ramp(k, d, xf, n, w)
                w *= np.float32(math.pi / 2)
                np.sin(w, out=w)  # equal power: two read positions are uncorrelated
            pos = self._hpos[h]
            for i, g in gains:
                m = min(n, prog.lengths[i] - pos)
                if m <= 0:
                    continue
                src = prog.data[i][pos:pos + m]
                if w is None and g is None:
                    out[:m] += src
                    continue
                if w is None:
                    coef = g[:m]
                elif g is None:
                    coef = w[:m]
                else:
                    coef = np.multiply(w[:m], g[:m], out=tmp[:m])
                prod = np.multiply(src, coef[:, None], out=prog.frame_scratch[:m])
                out[:m] += prod
        # Transport fade and level ramp.
        t = None
        if not (self._tk == self._fade and self._td > 0):
            t = self._tgain[:n]
            self._ramp(self._tk, self._td, self._fade, n, t)
        if self._gk >= self._ramp_len:
            lv = self._gto
            if t is None:
                if lv != 1.0:
                    out *= np.float32(lv)
                return
            if lv != 1.0:
                t *= np.float32(lv)
        else:
            lv_vec = self._lgain[:n]
            self._ramp(self._gk, 1, self._ramp_len, n, lv_vec)
            lv_vec *= np.float32(self._gto - self._gfrom)
            lv_vec += np.float32(self._gfrom)
            if t is None:
                t = lv_vec
            else:
                t *= lv_vec
        out *= t[:, None]

    def _advance(self, n: int) -> None:
        xf = self._xfade
        for i in range(self._prog.count):
            k = self._bk[i] + self._bd[i] * n
            self._bk[i] = 0 if k < 0 else (xf if k > xf else k)
        for h in range(_HEADS):
            k0, d = self._hk[h], self._hd[h]
            if k0 == 0 and d < 0:
                continue
            self._hpos[h] += n
            k = k0 + d * n
            self._hk[h] = 0 if k < 0 else (xf if k > xf else k)
        k = self._tk + self._td * n
        self._tk = 0 if k < 0 else (self._fade if k > self._fade else k)
        if self._gk < self._ramp_len:
            self._gk = min(self._ramp_len, self._gk + n)
            if self._gk == self._ramp_len:
                self._gfrom = self._gto

    def _account(self, pos: int, n: int) -> None:
        """Statistics of the selected stimulus for ``n`` frames played from ``pos``."""
        prog = self._prog
        sel = self._sel
        if self._count_pending:
            prog.counts[sel] += 1
            self._count_pending = False
        length = prog.lengths[sel]
        if pos >= length:
            return
        end = min(pos + n, length)
        prog.listened[sel] += end - pos
        prog.coverage[sel][pos // prog.cell:(end - 1) // prog.cell + 1] = True
        if end > prog.furthest[sel]:
            prog.furthest[sel] = end
        if end >= length:
            prog.heard_end[sel] = True

    def _jump(self, target: int) -> None:
        """Move the read position to ``target``: a crossfade from the old position when sounding."""
        main = self._main
        if self._tk == 0:
            self._hpos[main] = target
            return
        free = [h for h in range(_HEADS) if h != main and self._hk[h] == 0]
        if free:
            new = free[0]
        else:  # every slot busy (seeks faster than crossfades): reuse the quietest
            new = min((h for h in range(_HEADS) if h != main), key=lambda h: self._hk[h])
        self._hd[main] = -1
        self._hpos[new] = target
        self._hk[new] = 0
        self._hd[new] = 1
        self._main = new

    def _settle(self) -> None:
        """Faded out: drop fading read positions and finish the ramps (nothing is audible)."""
        xf = self._xfade
        for h in range(_HEADS):
            if h != self._main:
                self._hk[h], self._hd[h] = 0, -1
        self._hk[self._main], self._hd[self._main] = xf, 1
        for i in range(self._prog.count):
            self._bk[i] = xf if i == self._sel else 0
            self._bd[i] = 1 if i == self._sel else -1
        self._gk = self._ramp_len
        self._gfrom = self._gto

    def _finish(self) -> None:
        """The end of the timeline without a loop: stop there and notify."""
        self._td = -1
        self._tk = 0
        self._settle()
        self._count_pending = False
        self._finished_count += 1

    # ------------------------------------------------------------------ commands
    def _post(self, op: str, arg: Any = None) -> None:
        self._seq += 1
        self._cmds.append((self._seq, op, arg))
        if not self._running:  # no callback will drain: apply now (the state lives on, silent)
            self._drain()
            self._publish()

    def _drain(self) -> int:
        """Apply the queued commands (audio thread, or the control thread when no stream runs)."""
        last = 0
        cmds = self._cmds
        while True:
            try:
                seq, op, arg = cmds.popleft()
            except IndexError:
                return last
            last = seq
            self._apply(op, arg)

    def _apply(self, op: str, arg: Any) -> None:
        silent = self._tk == 0
        if op == "select":
            if arg != self._sel and arg < self._prog.count:
                self._bd[self._sel] = -1
                self._bd[arg] = 1
                self._sel = arg
                if silent:
                    self._settle()
                if self._td > 0:
                    self._count_pending = True
        elif op == "play":
            if self._td < 0:
                if self._loop is None and self._hpos[self._main] >= self._prog.total:
                    self._jump(0)
                self._td = 1
                self._count_pending = True
        elif op == "pause":
            self._td = -1
            self._count_pending = False
        elif op == "seek":
            self._jump(min(max(0, arg), self._prog.total))
        elif op == "loop":
            if arg is None:
                self._loop = None
            else:
                start, end = arg
                self._loop = (start, end - self._xfade, end)
                pos = self._hpos[self._main]
                if not start <= pos < end - self._xfade:
                    self._jump(start)
        elif op == "level":
            if silent:
                self._gfrom = self._gto = arg
                self._gk = self._ramp_len
            else:
                current = self._gfrom + (self._gto - self._gfrom) * self._gk / self._ramp_len
                self._gfrom, self._gto, self._gk = current, arg, 0
        elif op == "load":
            self._reset_audio_state(arg)
        elif op == "swap":  # same stimuli, another channel layout (no stream is running)
            self._prog = arg

    def _publish(self) -> None:
        """Make the audio state visible to the getters (skipped while newer commands wait)."""
        if self._cmds:
            return
        self._pub_pos = self._hpos[self._main]
        self._pub_playing = self._td > 0

    # ------------------------------------------------------------------ notifications
    def _dispatch(self) -> None:
        while self._finished_seen < self._finished_count:
            self._finished_seen += 1
            callback = self.on_finished
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("on_finished failed")

    def _start_notifier(self) -> None:
        if self._notifier is not None and self._notifier.is_alive():
            return
        self._stop_notifier = False
        self._wake.clear()
        self._notifier = threading.Thread(target=self._notify_loop, name="mosapp-playback-events", daemon=True)
        self._notifier.start()

    def _notify_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop_notifier:
                return
            self._dispatch()

    def _stop_notifier_thread(self) -> None:
        thread = self._notifier
        if thread is None:
            return
        self._stop_notifier = True
        self._wake.set()
        if thread is not threading.current_thread():
            thread.join(timeout=1.0)
        self._notifier = None

    def _stream_finished(self) -> None:
        """PortAudio says the stream ended; unless we closed it, it died (device unplugged …)."""
        if not self._closing:
            self._running = False
            self._reason = f"{_SILENT}: the output stream stopped unexpectedly (was the device disconnected?)."

    def _wait_silent(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while self._running and time.perf_counter() < deadline and (self._cmds or self._tk > 0):
            time.sleep(0.002)


def _choose_device(devices: list[OutputDevice], wanted: Any) -> tuple[OutputDevice | None, str]:
    """The output device meant by ``wanted`` (None, index, name, part of a name, OutputDevice)."""
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


# ---------------------------------------------------------------------- headless ALSA output
_PACER = '''"""Reads raw audio from stdin at {rate} frames per second and drops it: a sound card's pace."""
import fcntl, os, sys, time
rate, frame_bytes = int(sys.argv[1]), int(sys.argv[2])
fd = sys.stdin.fileno()
try:
    fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ: one page, so the writer moves in small steps
except OSError:
    pass
start, frames = time.perf_counter(), 0.0
while True:
    data = os.read(fd, 64 * frame_bytes)
    if not data:
        break
    frames += len(data) / frame_bytes
    wait = start + frames / rate - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
'''


def write_virtual_alsa_config(directory: str | Path, *, rate: int = DEFAULT_RATE, paced: bool = True) -> Path:
    """Write an ALSA configuration (``.asoundrc``) whose default output needs no sound card.

    Run a process with ``HOME=directory`` (PortAudio reads ``~/.asoundrc`` when sounddevice is
    imported) and its default output device is:

    * ``paced=False``: ALSA's ``null`` device, exactly ``pcm.!default { type null }``. It
      discards audio as fast as it comes: the callback runs back to back, far faster than real time.
    * ``paced=True``: the ``null`` device behind ALSA's ``file`` plugin, whose pipe is read by a
      small process at ``rate`` frames per second. The pipe's back-pressure paces the stream
      like a sound card: the callback runs once per block, the position advances in real time.
      (The samples go as 8-channel float64, 64 bytes a frame, so the one-page pipe holds 64
      frames and the stream moves in 1.5 ms steps.)

    Returns:
        The path of the ``.asoundrc`` written.
    """
    home = Path(directory)
    home.mkdir(parents=True, exist_ok=True)
    asoundrc = home / ".asoundrc"
    if not paced:
        asoundrc.write_text("pcm.!default {\n    type null\n}\n")
        return asoundrc
    pacer = home / "mosapp-alsa-pacer.py"
    pacer.write_text(_PACER.format(rate=int(rate)))
    command = f"|{shlex.quote(sys.executable)} {shlex.quote(str(pacer))} {int(rate)} 64"
    command = command.replace("\\", "\\\\").replace('"', '\\"')
    asoundrc.write_text(
        "# A paced null output for tests and benchmarks (mosapp.playback.player.write_virtual_alsa_config).\n"
        "pcm.mosapp_paced {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        f'    file "{command}"\n'
        '    format "raw"\n'
        "}\n"
        "pcm.!default {\n"
        "    type plug\n"
        f'    slave {{ pcm "mosapp_paced"; format FLOAT64_LE; rate {int(rate)}; channels 8 }}\n'
        "}\n"
    )
    return asoundrc
