"""The mixing of one audio block: stimulus crossfades, read-position crossfades, the transport
fade and the level ramp, each a named :class:`Ramp` (or :class:`Level`).

One block's output is::

    out[j] = transport[j] * level[j] * sum over read heads h and stimuli i of
             head_h[j] * stimulus_i[j] * data_i[position_h + j]

where every factor is a ramp's gain for frame ``j`` of the block. Stimulus ramps are linear
(the stimuli of a trial are correlated: a linear crossfade keeps their sum flat), read-head
ramps are equal-power (two read positions of one signal are uncorrelated). A ramp at unity or
silent costs nothing: its multiplication or its whole term is skipped.

The mixer reads the ramps and writes the block; it changes no state (advancing the ramps is
the transport's job). It allocates no arrays: the gain vectors go into scratch buffers made
once, here and in the :class:`~mosapp.playback.program.Program`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mosapp.playback.program import CHUNK, Program

#: 1, 2, … CHUNK: frame j of a block is ``j + 1`` frames after the ramp's current step.
_STEPS = np.arange(1, CHUNK + 1, dtype=np.float32)
_STEPS.flags.writeable = False


class Curve(enum.Enum):
    """How a ramp's progress (0..1) becomes a gain."""

    #: gain = progress: for crossfades between correlated signals (the stimuli of a trial).
    LINEAR = "linear"
    #: gain = sin(progress · π/2): for crossfades between uncorrelated signals (two read positions).
    EQUAL_POWER = "equal-power"


@dataclass(frozen=True, slots=True)
class Ramp:
    """A gain that moves between 0 and 1 over ``length`` frames, one step per frame.

    Attributes:
        length: frames from silence to unity (at least 1).
        step: how far along it is, 0 (silent) to ``length`` (unity).
        direction: +1 rising (towards unity), -1 falling (towards silence).
        curve: how progress becomes gain.

    The gain of the j-th frame of the next block (j = 0, 1, …) is
    ``curve(clip(step + direction * (j + 1), 0, length) / length)``: the first frame already
    moves one step, and the ramp holds at either end.
    """

    length: int
    step: int
    direction: int
    curve: Curve = Curve.LINEAR

    @classmethod
    def unity(cls, length: int, curve: Curve = Curve.LINEAR) -> Ramp:
        """At full gain and staying there."""
        return cls(length, length, 1, curve)

    @classmethod
    def silence(cls, length: int, curve: Curve = Curve.LINEAR) -> Ramp:
        """At zero gain and staying there."""
        return cls(length, 0, -1, curve)

    @property
    def rising(self) -> bool:
        return self.direction > 0

    @property
    def at_unity(self) -> bool:
        """At full gain and rising: it multiplies by exactly 1."""
        return self.step == self.length and self.direction > 0

    @property
    def silent(self) -> bool:
        """At zero gain and falling: its term is exactly 0."""
        return self.step == 0 and self.direction < 0

    def fade_in(self) -> Ramp:
        """The same ramp turned towards unity (from where it is)."""
        return Ramp(self.length, self.step, 1, self.curve)

    def fade_out(self) -> Ramp:
        """The same ramp turned towards silence (from where it is)."""
        return Ramp(self.length, self.step, -1, self.curve)

    def advanced(self, frames: int) -> Ramp:
        """The ramp ``frames`` frames later (held at 0 or ``length``)."""
        if self.at_unity or self.silent:  # held: most ramps most of the time
            return self
        k = self.step + self.direction * frames
        return Ramp(self.length, 0 if k < 0 else (self.length if k > self.length else k), self.direction, self.curve)

    def gains(self, out: np.ndarray) -> np.ndarray:
        """Write the gain of each of the next ``len(out)`` frames into ``out`` (float32); returns ``out``."""
        n = out.shape[0]
        np.multiply(_STEPS[:n], self.direction, out=out)
        out += self.step
        np.clip(out, 0, self.length, out=out)
        out /= np.float32(self.length)  # exact 1.0 at the end of a ramp
        if self.curve is Curve.EQUAL_POWER:
            out *= np.float32(math.pi / 2)
            np.sin(out, out=out)
        return out


@dataclass(frozen=True, slots=True)
class Level:
    """The output level: a linear gain going from ``start`` to ``target`` along ``ramp`` (rising).

    Attributes:
        start: the linear gain the ramp started from.
        target: the linear gain it goes to (and stays at once ``ramp`` is at unity).
        ramp: the progress from ``start`` to ``target``.
    """

    start: float
    target: float
    ramp: Ramp

    @classmethod
    def steady(cls, gain: float, ramp_frames: int) -> Level:
        """At ``gain``, not moving."""
        return cls(gain, gain, Ramp.unity(ramp_frames))

    @property
    def settled(self) -> bool:
        """The target is reached: the level is the constant ``target``."""
        return self.ramp.step >= self.ramp.length

    @property
    def current(self) -> float:
        """The gain reached so far."""
        return self.start + (self.target - self.start) * self.ramp.step / self.ramp.length

    def toward(self, gain: float) -> Level:
        """A ramp from the gain reached so far to ``gain``."""
        return Level(self.current, gain, Ramp(self.ramp.length, 0, 1))

    def settle(self) -> Level:
        """Jump to the target (used while nothing is audible)."""
        return Level.steady(self.target, self.ramp.length)

    def advanced(self, frames: int) -> Level:
        """The level ``frames`` frames later."""
        if self.settled:
            return self
        ramp = Ramp(self.ramp.length, min(self.ramp.length, self.ramp.step + frames), 1)
        return Level(self.target if ramp.step == ramp.length else self.start, self.target, ramp)

    def gains(self, out: np.ndarray) -> np.ndarray:
        """Write the gain of each of the next ``len(out)`` frames into ``out`` (not settled); returns ``out``."""
        self.ramp.gains(out)
        out *= np.float32(self.target - self.start)
        out += np.float32(self.start)
        return out


@dataclass(frozen=True, slots=True)
class Head:
    """A read position in the shared timeline (frames) and its equal-power ramp."""

    position: int
    ramp: Ramp

    def advanced(self, frames: int) -> Head:
        """The head ``frames`` frames later: it moves while it sounds, a silent one stays."""
        if self.ramp.silent:
            return self
        return Head(self.position + frames, self.ramp.advanced(frames))


class Mixer:
    """Mixes blocks of up to :data:`~mosapp.playback.program.CHUNK` frames (see the module's description).

    Args:
        heads: how many read heads there are at most (the scratch is made for them).
    """

    def __init__(self, heads: int):
        self._head_scratch = np.zeros((heads, CHUNK), dtype=np.float32)
        self._coef = np.zeros(CHUNK, dtype=np.float32)
        self._transport_gain = np.zeros(CHUNK, dtype=np.float32)
        self._level_gain = np.zeros(CHUNK, dtype=np.float32)

    def mix(self, out: np.ndarray, program: Program, stimuli: Sequence[Ramp], heads: Sequence[Head],
            transport: Ramp, level: Level) -> None:
        """Write one block into ``out`` ``(n, channels)``, ``n <= CHUNK``.

        Args:
            out: the block, overwritten.
            program: the stimuli (and their scratch).
            stimuli: one ramp per stimulus (the selected one rising, the others falling).
            heads: the read heads (one rising, the others fading out).
            transport: the play/pause fade.
            level: the output level.
        """
        n = out.shape[0]
        out.fill(0)
        gains: list[tuple[int, np.ndarray | None]] = []
        for i, ramp in enumerate(stimuli):
            if ramp.silent:
                continue
            gains.append((i, None if ramp.at_unity else ramp.gains(program.gain_scratch[i, :n])))
        tmp = self._coef
        for h, head in enumerate(heads):
            if head.ramp.silent:
                continue
            w = None if head.ramp.at_unity else head.ramp.gains(self._head_scratch[h, :n])
            pos = head.position
            for i, g in gains:
                m = min(n, program.lengths[i] - pos)
                if m <= 0:
                    continue
                src = program.data[i][pos:pos + m]
                if g is None:
                    if w is None:
                        out[:m] += src
                        continue
                    coef = w[:m]
                elif w is None:
                    coef = g[:m]
                else:
                    coef = np.multiply(w[:m], g[:m], out=tmp[:m])
                prod = np.multiply(src, coef[:, None], out=program.frame_scratch[:m])
                out[:m] += prod
        t = None if transport.at_unity else transport.gains(self._transport_gain[:n])
        if level.settled:
            gain = level.target
            if t is None:
                if gain != 1.0:
                    out *= np.float32(gain)
                return
            if gain != 1.0:
                t *= np.float32(gain)
        else:
            level_gain = level.gains(self._level_gain[:n])
            if t is None:
                t = level_gain
            else:
                t *= level_gain
        out *= t[:, None]
