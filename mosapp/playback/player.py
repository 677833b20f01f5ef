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
nothing is heard. No exception from the audio layer leaks out.

The player is the control side of four parts::

    Player ── validates, mirrors the state for the getters, posts commands
      ├─ program.Program      the stimuli laid out for the output, and what was heard of each
      ├─ transport.Transport  the command queue; play/pause/seek/select/loop on the audio thread
      │    └─ mixer.Mixer     one block: stimulus and read-head crossfades, fade, level (Ramp)
      ├─ transport.Notifier   on_finished from a helper thread
      └─ device.Output        the PortAudio stream and the reason it is silent

Threads: the control methods (``select``, ``play``, ``seek`` …) may be called from one control
thread (the GUI thread). They never touch the audio state: they post a small command to a
``collections.deque`` (append/popleft are atomic) and update the values the getters return.
The audio callback drains that queue at the start of each block and owns all audio state; it
takes no lock, allocates no arrays (scratch buffers are preallocated; the mixing is a handful of
in-place numpy operations per block) and publishes position and state through plain attributes.
``on_finished`` is called from a helper thread, never from the audio callback.

:meth:`Player.render` is the callback's pure function (frames in, samples out): the tests drive
it directly, with no device, to check switching, fades, loops and accounting sample by sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mosapp.core.errors import ConfigError
from mosapp.playback.device import (
    UNDERRUNS_TO_WIDEN,
    Output,
    OutputDevice,
    initial_margin,
    output_devices,
    wider_margin,
)
from mosapp.playback.program import MAX_CHANNELS, Program
from mosapp.playback.transport import Notifier, Op, Transport

# ``output_devices`` and ``OutputDevice`` are re-exported: callers that import them from here keep working.
__all__ = ["DEFAULT_BLOCKSIZE", "DEFAULT_CROSSFADE_MS", "DEFAULT_LEVEL_RAMP_MS", "DEFAULT_RATE", "MAX_LEVEL_DB",
           "OutputDevice", "Player", "output_devices"]

#: The pipeline's rate; stimuli at another rate are played at theirs (``Player(rate=...)``).
DEFAULT_RATE = 44_100
#: Default crossfade for switching, seeking and loop wraps, in milliseconds.
DEFAULT_CROSSFADE_MS = 5.0
#: Default ramp for level changes, in milliseconds.
DEFAULT_LEVEL_RAMP_MS = 20.0
#: Default audio block: 256 frames at 44.1 kHz is 5.8 ms, the longest a switch waits for a block.
DEFAULT_BLOCKSIZE = 256
#: Loudest level accepted by set_level, in dB.
MAX_LEVEL_DB = 24.0


def _seconds(frames: Sequence[int], rate: int) -> list[float]:
    return [n / rate for n in frames]


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
        if not isinstance(channels, (int, np.integer)) or not 1 <= channels <= MAX_CHANNELS:
            raise ConfigError(f"{channels!r} output channels are not accepted; give 1 to {MAX_CHANNELS}.")
        for label, ms in (("crossfade_ms", crossfade_ms), ("fade_ms", fade_ms), ("level_ramp_ms", level_ramp_ms)):
            if ms is not None and not (isinstance(ms, (int, float)) and 0 < ms <= 1000):
                raise ConfigError(f"{label}={ms!r} is not accepted; give milliseconds in (0, 1000].")
        self.rate = int(rate)
        self._channels_wanted = int(channels)
        self._xfade = max(1, round(self.rate * crossfade_ms / 1000))
        self._fade = max(1, round(self.rate * (crossfade_ms if fade_ms is None else fade_ms) / 1000))
        self._ramp_len = max(1, round(self.rate * level_ramp_ms / 1000))
        self.on_finished = on_finished

        self._output = Output()
        self._adaptive = False
        self._opened_with: tuple[OutputDevice, int, float | str] | None = None
        self._underruns_before = 0  # underruns of the streams opened before this one
        self._xruns_checked = 0  # this stream's underruns at the last keep_margin
        program = Program(buffers, self._channels_wanted, self.rate, names)
        self._transport = Transport(program, crossfade_frames=self._xfade, fade_frames=self._fade,
                                    level_ramp_frames=self._ramp_len)
        self._notifier = Notifier(self._transport)
        # The control side's view (the audio thread's state lives in the transport).
        self._ctl_prog = program
        self._ctl_sel = 0
        self._ctl_loop: tuple[float, float] | None = None
        self._ctl_level_db = 0.0

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
        return _seconds(self._ctl_prog.lengths, self.rate)

    @property
    def selected(self) -> int:
        """Index of the stimulus being heard (the last one selected)."""
        return self._ctl_sel

    @property
    def position_s(self) -> float:
        """The shared position in seconds, as rendered (the playhead; the sound leaves the
        device :attr:`output_latency_s` later)."""
        return self._transport.published_position / self.rate

    @property
    def playing(self) -> bool:
        """True from :meth:`play` until :meth:`pause` or the end of the timeline."""
        return self._transport.published_playing

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
        return _seconds(self._ctl_prog.listened, self.rate)

    @property
    def heard_to_end(self) -> list[bool]:
        """Per stimulus: playback reached its last sample while it was selected."""
        return list(self._ctl_prog.heard_end)

    @property
    def furthest_s(self) -> list[float]:
        """Per stimulus: the furthest point played while it was selected, seconds."""
        return _seconds(self._ctl_prog.furthest, self.rate)

    @property
    def heard_fraction(self) -> list[float]:
        """Per stimulus: the fraction of its 10 ms cells that were played while it was selected."""
        return [float(c.mean()) for c in self._ctl_prog.coverage]

    @property
    def silent_reason(self) -> str | None:
        """None while a stream plays; otherwise one sentence saying why nothing is heard."""
        return self._output.silent_reason

    @property
    def device(self) -> OutputDevice | None:
        """The open output device, or None when silent."""
        return self._output.device

    @property
    def output_latency_s(self) -> float:
        """PortAudio's output latency of the open stream (0 when silent)."""
        return self._output.latency_s

    @property
    def blocksize(self) -> int:
        """Frames per callback of the open stream (0 when silent)."""
        return self._output.blocksize

    @property
    def xruns(self) -> int:
        """Output underflows PortAudio reported since :meth:`open`."""
        return self._output.xruns

    @property
    def command_seq(self) -> int:
        """Number of the last command posted (select, play, seek …)."""
        return self._transport.seq

    @property
    def applied(self) -> tuple[int, float, float]:
        """(number of the last command the audio callback applied, ``time.perf_counter()`` when
        the callback that applied it had rendered its block, that block's delay to the DAC in
        seconds as PortAudio reports it). For latency measurements."""
        return self._output.applied

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
        self._transport.published_playing = True
        if self._ctl_loop is None and self._transport.published_position >= self._ctl_prog.total:
            self._transport.published_position = 0

    def pause(self) -> None:
        """Pause (fading out); the position stays where the fade ended."""
        self._post("pause")
        self._transport.published_playing = False

    def toggle(self) -> None:
        """Play when paused, pause when playing (the space key)."""
        if self._transport.published_playing:
            self.pause()
        else:
            self.play()

    def seek(self, seconds: float) -> None:
        """Move the shared position (clamped to the timeline); crossfaded when sounding."""
        if not isinstance(seconds, (int, float, np.floating, np.integer)) or not math.isfinite(seconds):
            raise ConfigError(f"Cannot seek to {seconds!r}; give a position in seconds.")
        target = min(max(0, round(float(seconds) * self.rate)), self._ctl_prog.total)
        self._post("seek", target)
        self._transport.published_position = target

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
        refused = ConfigError(f"The loop ({start_s!r}, {end_s!r}) is not accepted; give start and end in seconds.")
        if end_s is None:
            raise refused
        try:
            start, end = round(float(start_s) * self.rate), round(float(end_s) * self.rate)
        except (TypeError, ValueError, OverflowError):
            raise refused from None
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
        if not start <= self._transport.published_position < end - self._xfade:
            self._transport.published_position = start

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
        program = Program(buffers, self._ctl_prog.channels, self.rate, names)  # may raise ConfigError
        if self._output.running and self._transport.published_playing:
            self.pause()
        if self._output.running:
            self._wait_silent(0.1)
        self._ctl_prog = program
        self._ctl_sel = 0
        self._ctl_loop = None
        self._transport.published_position = 0
        self._transport.published_playing = False
        self._post("load", program)

    # ------------------------------------------------------------------ device
    def open(self, device: int | str | OutputDevice | None = None, *, blocksize: int | None = None,
             latency: float | str | None = None) -> bool:
        """Open an output stream on ``device`` (index, name or part of one, :class:`OutputDevice`;
        None = the default output). Closes a stream already open.

        ``blocksize`` and ``latency`` None (the default) adapt to the device: a sound server gets
        larger blocks and PortAudio's high latency (:func:`~mosapp.playback.device.initial_margin`),
        and :meth:`keep_margin` makes the block larger when the stream underruns. Given, they are
        kept as they are.

        Returns:
            True when sound will be heard; False when the player stays silent, with
            :attr:`silent_reason` saying why. Never raises for audio problems.
        """
        self._underruns_before += self._output.xruns
        self._xruns_checked = 0
        self.close()
        self._output.xruns = 0
        chosen = self._output.find(device)
        if chosen is None:
            return False
        self._adaptive = blocksize is None
        start_block, start_latency = initial_margin(chosen)
        blocksize = start_block if blocksize is None else blocksize
        latency = (start_latency if self._adaptive else "low") if latency is None else latency
        self._opened_with = (chosen, int(blocksize), latency)
        channels = min(self._channels_wanted, chosen.channels)
        if channels != self._ctl_prog.channels:
            program = self._ctl_prog.with_channels(channels, self.rate)
            self._ctl_prog = program
            self._post("swap", program)
        self._notifier.start(self._listener)
        if self._output.start(chosen, rate=self.rate, channels=channels, blocksize=blocksize, latency=latency,
                              render=self._transport.render_into, rendered=self._rendered):
            return True
        self._notifier.stop()
        self._transport.drain()
        self._transport.publish()
        return False

    @property
    def underruns(self) -> int:
        """Output underruns since the player was made, across every stream it opened (for the
        researcher: a listener is never shown this)."""
        return self._underruns_before + self._output.xruns

    def keep_margin(self) -> bool:
        """Call now and then (a GUI timer does): when the stream underran :data:`UNDERRUNS_TO_WIDEN`
        times since the last call and it adapts (opened without a block size), reopen it with a
        larger block and high latency, keeping the position and playing on. True when it did."""
        xruns = self._output.xruns
        fresh, self._xruns_checked = xruns - self._xruns_checked, xruns
        if fresh < UNDERRUNS_TO_WIDEN or not self._adaptive or self._opened_with is None or not self._output.running:
            return False
        chosen, blocksize, _latency = self._opened_with
        wider = wider_margin(blocksize)
        if wider is None:
            return False
        playing, position = self.playing, self.position_s
        if self.open(chosen, blocksize=wider[0], latency=wider[1]):
            self._adaptive = True
            if playing:
                self.seek(position)
                self.play()
            return True
        return False

    def close(self) -> None:
        """Close the stream (the player stays usable, silent). Safe to call at any time."""
        self._output.close()
        self._notifier.stop()
        self._transport.drain()
        self._transport.stop_sounding()
        self._transport.publish()
        self._notifier.dispatch(self._listener)

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — closing at interpreter exit must never raise
            pass

    # ------------------------------------------------------------------ rendering
    def render(self, frames: int) -> np.ndarray:
        """The next ``frames`` output frames, ``(frames, channels)`` float32: exactly what the
        audio callback writes. For tests and offline use; not while a stream is open."""
        if self._output.running:
            raise RuntimeError("render() cannot be called while an output stream is open; close() it first.")
        out = np.zeros((int(frames), self._transport.program.channels), dtype=np.float32)
        self._transport.render_into(out)
        self._transport.publish()
        self._notifier.dispatch(self._listener)
        return out

    # ------------------------------------------------------------------ plumbing
    def _post(self, op: Op, arg: Any = None) -> None:
        self._transport.post(op, arg)
        if not self._output.running:  # no callback will drain: apply now (the state lives on, silent)
            self._transport.drain()
            self._transport.publish()

    def _rendered(self) -> None:
        """After each block of the stream: publish the state, wake the notifier when it has news."""
        self._transport.publish()
        self._notifier.wake()

    def _listener(self) -> Callable[[], None] | None:
        return self.on_finished

    def _wait_silent(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while self._output.running and time.perf_counter() < deadline and self._transport.busy:
            time.sleep(0.002)
