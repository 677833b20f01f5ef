"""The transport: the command queue, play/pause/seek/select/loop applied on the audio thread,
the shared position and what is heard of each stimulus, and the thread that says "finished".

Threads: the control thread only :meth:`Transport.post` s commands (a ``collections.deque``:
append/popleft are atomic) and reads the published snapshot (:attr:`Transport.published_position`,
:attr:`Transport.published_playing`). The audio callback calls :meth:`Transport.render_into`,
which drains the queue at the start of each block; everything else here belongs to it. When no
stream runs, the control thread drains the queue itself (see ``mosapp.playback.player``).

The shared position is a read head (:class:`~mosapp.playback.mixer.Head`). A seek or a loop
wrap while sounding starts a new head at the target and fades the old one out, so up to
:data:`HEADS` positions sound at once; switching stimulus turns one stimulus ramp down and
another up at the same position.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from mosapp.playback.mixer import Curve, Head, Level, Mixer, Ramp
from mosapp.playback.program import CHUNK, Program

log = logging.getLogger(__name__)

#: Read positions that can sound at once (the current one and up to three fading out).
HEADS = 4

#: What a command does: switch stimulus, start/stop, move, set or clear the loop, set the level,
#: load a new trial, or swap in the same stimuli in another channel layout (no stream running).
Op = Literal["select", "play", "pause", "seek", "loop", "level", "load", "swap"]


class Transport:
    """The audio-thread state of one player and the queue of commands that change it.

    Args:
        program: the stimuli to start with (paused at 0, stimulus 0 selected).
        crossfade_frames: length of the switch, seek and loop-wrap crossfades.
        fade_frames: length of the play/pause fade.
        level_ramp_frames: length of a level change.
    """

    def __init__(self, program: Program, *, crossfade_frames: int, fade_frames: int, level_ramp_frames: int):
        self.crossfade_frames = crossfade_frames
        self.fade_frames = fade_frames
        self._mixer = Mixer(HEADS)
        self._commands: deque[tuple[int, Op, Any]] = deque()
        #: Number of the last command posted.
        self.seq = 0
        #: How many times playback reached the end of the timeline (the notifier counts the calls).
        self.finished_count = 0
        #: The output level survives :meth:`load`.
        self.level = Level.steady(1.0, level_ramp_frames)
        #: What the getters show: the position (frames) and whether it plays, as last rendered.
        self.published_position = 0
        self.published_playing = False
        self._load(program)

    def _load(self, program: Program) -> None:
        """Everything the callback owns, for a freshly loaded program (paused at 0, stimulus 0)."""
        xf = self.crossfade_frames
        self.program = program
        self.selected = 0
        #: One linear ramp per stimulus: the selected one rising, the others falling.
        self.stimuli = [Ramp.unity(xf) if i == 0 else Ramp.silence(xf) for i in range(program.count)]
        #: The read heads; ``heads[main]`` is the position being played.
        self.heads = [Head(0, Ramp.unity(xf, Curve.EQUAL_POWER))] + \
            [Head(0, Ramp.silence(xf, Curve.EQUAL_POWER)) for _ in range(HEADS - 1)]
        self.main = 0
        #: The play/pause fade: rising while playing.
        self.fade = Ramp.silence(self.fade_frames)
        self.loop: tuple[int, int, int] | None = None  # (start, wrap point, end) in frames
        self._count_pending = False

    # ------------------------------------------------------------------ the command queue
    def post(self, op: Op, arg: Any = None) -> None:
        """Queue a command (control thread); the next block applies it."""
        self.seq += 1
        self._commands.append((self.seq, op, arg))

    @property
    def busy(self) -> bool:
        """Commands wait, or something is audible."""
        return bool(self._commands) or self.fade.step > 0

    def drain(self) -> int:
        """Apply the queued commands (audio thread, or the control thread when no stream runs).

        Returns:
            The number of the last command applied (0: none).
        """
        last = 0
        commands = self._commands
        while True:
            try:
                seq, op, arg = commands.popleft()
            except IndexError:
                return last
            last = seq
            self._apply(op, arg)

    def _apply(self, op: Op, arg: Any) -> None:
        silent = self.fade.step == 0
        if op == "select":
            self._select(arg, silent)
        elif op == "play":
            self._play()
        elif op == "pause":
            self.fade = self.fade.fade_out()
            self._count_pending = False
        elif op == "seek":
            self._jump(min(max(0, arg), self.program.total))
        elif op == "loop":
            self._set_loop(arg)
        elif op == "level":
            self.level = Level.steady(arg, self.level.ramp.length) if silent else self.level.toward(arg)
        elif op == "load":
            self._load(arg)
        elif op == "swap":
            self.program = arg

    def _select(self, index: int, silent: bool) -> None:
        """Cross-fade from the selected stimulus to ``index`` (at once when nothing is heard)."""
        if index != self.selected and index < self.program.count:
            self.stimuli[self.selected] = self.stimuli[self.selected].fade_out()
            self.stimuli[index] = self.stimuli[index].fade_in()
            self.selected = index
            if silent:
                self.settle()
            if self.fade.rising:
                self._count_pending = True

    def _play(self) -> None:
        """Fade in (from the start again when the end was reached without a loop)."""
        if not self.fade.rising:
            if self.loop is None and self.heads[self.main].position >= self.program.total:
                self._jump(0)
            self.fade = self.fade.fade_in()
            self._count_pending = True

    def _set_loop(self, span: tuple[int, int] | None) -> None:
        """Loop ``(start, end)`` (jumping into it when the head is outside), or no loop (``None``)."""
        if span is None:
            self.loop = None
            return
        start, end = span
        self.loop = (start, end - self.crossfade_frames, end)
        pos = self.heads[self.main].position
        if not start <= pos < end - self.crossfade_frames:
            self._jump(start)

    def publish(self) -> None:
        """Make the audio state visible to the getters (skipped while newer commands wait)."""
        if self._commands:
            return
        self.published_position = self.heads[self.main].position
        self.published_playing = self.fade.rising

    # ------------------------------------------------------------------ rendering
    def render_into(self, out: np.ndarray) -> int:
        """Drain the commands, then fill ``out`` ``(frames, channels)``.

        Returns:
            The number of the last command applied (0: none).
        """
        applied = self.drain()
        frames = out.shape[0]
        done = 0
        while done < frames:
            n = min(CHUNK, frames - done)
            self._render_chunk(out[done:done + n])
            done += n
        return applied

    def _render_chunk(self, out: np.ndarray) -> None:
        n = out.shape[0]
        done = 0
        prog = self.program
        while done < n:
            if self.fade.silent:  # paused and faded out
                out[done:].fill(0)
                return
            pos = self.heads[self.main].position
            limit = n - done
            if self.loop is not None:
                start, wrap, end = self.loop
                if pos >= wrap:
                    if self.fade.rising and self.fade.step > 0:
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
            if not self.fade.rising:
                limit = min(limit, self.fade.step)  # the fade-out ends on a segment boundary
            self._mixer.mix(out[done:done + limit], prog, self.stimuli, self.heads, self.fade, self.level)
            if self.fade.rising:
                self._account(pos, limit)
            self._advance(limit)
            if self.fade.step == 0 and not self.fade.rising:
                self.settle()
            done += limit

    def _advance(self, n: int) -> None:
        stimuli, heads = self.stimuli, self.heads
        for i, ramp in enumerate(stimuli):
            stimuli[i] = ramp.advanced(n)
        for h, head in enumerate(heads):
            heads[h] = head.advanced(n)
        self.fade = self.fade.advanced(n)
        self.level = self.level.advanced(n)

    def _account(self, pos: int, n: int) -> None:
        """What the selected stimulus was heard for: ``n`` frames played from ``pos``."""
        if self._count_pending:
            self.program.count_play(self.selected)
            self._count_pending = False
        self.program.record_heard(self.selected, pos, n)

    def _jump(self, target: int) -> None:
        """Move the read position to ``target``: a crossfade from the old position when sounding."""
        main = self.main
        heads = self.heads
        if self.fade.step == 0:
            heads[main] = Head(target, heads[main].ramp)
            return
        others = [h for h in range(HEADS) if h != main]
        free = [h for h in others if heads[h].ramp.step == 0]
        # Every slot busy (seeks faster than crossfades): reuse the quietest.
        new = free[0] if free else min(others, key=lambda h: heads[h].ramp.step)
        heads[main] = Head(heads[main].position, heads[main].ramp.fade_out())
        heads[new] = Head(target, Ramp(self.crossfade_frames, 0, 1, Curve.EQUAL_POWER))
        self.main = new

    def settle(self) -> None:
        """Faded out: drop fading read positions and finish the ramps (nothing is audible)."""
        xf = self.crossfade_frames
        heads = self.heads
        for h in range(HEADS):
            ramp = Ramp.unity(xf, Curve.EQUAL_POWER) if h == self.main else Ramp.silence(xf, Curve.EQUAL_POWER)
            heads[h] = Head(heads[h].position, ramp)
        self.stimuli = [Ramp.unity(xf) if i == self.selected else Ramp.silence(xf) for i in range(self.program.count)]
        self.level = self.level.settle()

    def stop_sounding(self) -> None:
        """The stream stopped mid-sound: paused where it was, nothing fading."""
        if self.fade.step > 0 or self.fade.rising:
            self.fade = Ramp.silence(self.fade_frames)
            self.settle()

    def _finish(self) -> None:
        """The end of the timeline without a loop: stop there and count it for the notifier."""
        self.fade = Ramp.silence(self.fade_frames)
        self.settle()
        self._count_pending = False
        self.finished_count += 1


#: Returns the callable to call when playback reaches the end (looked up at each end, so it can
#: be replaced at any time), or None.
Listener = Callable[[], Callable[[], None] | None]


class Notifier:
    """Announces each end of the timeline once: from a helper thread while a stream runs (never
    from the audio callback), or from :meth:`dispatch` on the control thread.

    Args:
        transport: whose :attr:`Transport.finished_count` is followed.
    """

    def __init__(self, transport: Transport):
        self._transport = transport
        self._seen = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop = False

    def dispatch(self, listener: Listener) -> None:
        """Call the listener's callable for every end not yet announced (exceptions are logged)."""
        while self._seen < self._transport.finished_count:
            self._seen += 1
            callback = listener()
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("on_finished failed")

    def wake(self) -> None:
        """From the audio callback: wake the thread when there is something to announce."""
        if self._transport.finished_count != self._seen:
            self._wake.set()

    def start(self, listener: Listener) -> None:
        """Start the helper thread (no-op when it runs); it holds ``listener`` until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = False
        self._wake.clear()
        self._thread = threading.Thread(target=self._loop, args=(listener,), name="mosapp-playback-events",
                                        daemon=True)
        self._thread.start()

    def _loop(self, listener: Listener) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            self.dispatch(listener)

    def stop(self) -> None:
        """Stop the helper thread (waits up to 1 s unless called from it)."""
        thread = self._thread
        if thread is None:
            return
        self._stop = True
        self._wake.set()
        if thread is not threading.current_thread():
            thread.join(timeout=1.0)
        self._thread = None
