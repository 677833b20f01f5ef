"""What a listener's sitting shares across test types: progress, the checks of what a listener gives, its end.

:class:`mosapp.study.engine.ListeningSession` (DCR/ACR) and
:class:`mosapp.study.items.ItemSession` (MUSHRA/CCR) are :class:`Sitting` subclasses: one
listener, one ``sessions`` row, closed once (its end time recorded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mosapp.study.errors import StudyError
from mosapp.study.store import SessionRow, Store, utcnow

if TYPE_CHECKING:
    from typing_extensions import Self


class StudyHost(Protocol):
    """What a sitting needs of its study (:class:`mosapp.study.engine.StudyEngine` is one)."""

    @property
    def store(self) -> Store: ...

    def audio_for(self, audio_file: str) -> np.ndarray:
        """A stimulus's audio, float32 ``(channels, n)``, a read-only buffer of its own."""
        ...


@dataclass(frozen=True)
class Progress:
    """A listener's progress through their plan."""

    rated: int
    total: int
    training_rated: int
    training_total: int

    @property
    def finished(self) -> bool:
        return self.rated + self.training_rated >= self.total + self.training_total

    @property
    def next_index(self) -> int:
        """Index of the next trial (== total trials when finished)."""
        return self.rated + self.training_rated


def check_whole(value: object, low: int, high: int, what: str) -> int:
    """``value`` as a whole number in ``low..high``, or a one-sentence :class:`StudyError`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number from {low} to {high}.")
    f = float(value)
    if not math.isfinite(f) or f != int(f) or not low <= int(f) <= high:
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number from {low} to {high}.")
    return int(f)


def check_count(value: Any, what: str) -> int:
    """``value`` as a whole number, 0 or more (a play count), or a one-sentence :class:`StudyError`."""
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number, 0 or more.") from None
    if v < 0 or v != value:
        raise StudyError(f"The {what} {value!r} is not accepted; give a whole number, 0 or more.")
    return v


def check_seconds(value: Any, what: str) -> float:
    """``value`` as seconds, a finite number 0 or more, or a one-sentence :class:`StudyError`."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise StudyError(f"{what} {value!r} is not accepted; give seconds as a number, 0 or more.") from None
    if not math.isfinite(v) or v < 0:
        raise StudyError(f"{what} {value!r} is not accepted; give seconds as a number, 0 or more.")
    return v


class Sitting:
    """One sitting of one listener; obtain one from :meth:`StudyEngine.start_or_resume`."""

    def __init__(self, engine: StudyHost, code: str, listener_id: int, session_id: int) -> None:
        self._engine = engine
        self.listener_code = code
        self._listener_id = listener_id
        self._session_id = session_id
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """End the sitting (records its end time). Ratings are already committed."""
        if self._closed:
            return
        self._closed = True
        with self._engine.store.write() as s:
            sitting = s.get(SessionRow, self._session_id)
            if sitting is not None and sitting.ended_at is None:
                sitting.ended_at = utcnow()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Progress", "Sitting", "StudyHost", "check_count", "check_seconds", "check_whole"]
