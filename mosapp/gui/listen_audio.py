"""The Listen view's player and audio output: made when the first session starts, one buffer set per trial.

The view asks for the player when a listener starts (the output is opened then, on the device the
start page names, unless the view was made with ``open_audio=False``, as the tests make it) and
loads each trial's streams into it (:func:`mosapp.study.listening.streams`). Underruns widen the
output's block (``Player.keep_margin``) and are told to the researcher through :attr:`ListenAudio.note`,
never to the listener.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.playback import Player
from mosapp.study.listening import Streams


class ListenAudio(QObject):
    """The player of a Listen view (see the module).

    Signals:
        note(str): for the researcher: playback underruns, the block size and latency.
    """

    note = Signal(str)

    def __init__(self, parent: QObject, *, open_audio: bool) -> None:
        super().__init__(parent)
        self.open_audio = open_audio
        self.player: Player | None = None
        #: The output's name as recorded with a sitting ("none (silent)" without one).
        self.device_name = ""
        self._opened = False
        self._underruns_noted = 0

    def ensure(self, device: Any) -> Player:
        """The player, made (and its output opened on ``device``, a PortAudio index or None) the first time."""
        if self.player is None:
            self.player = Player([np.zeros((1, PIPELINE_SAMPLE_RATE // 10), np.float32)], rate=PIPELINE_SAMPLE_RATE,
                                 names=["silence"])
        if self.open_audio and not self._opened:
            self._opened = True
            self.player.open(device)
        output = self.player.device
        self.device_name = output.name if output is not None else "none (silent)"
        return self.player

    def load(self, streams: Streams, device: Any) -> Player:
        """Load a trial's streams (stream 0 selected)."""
        player = self.ensure(device)
        player.load(list(streams.buffers), names=list(streams.names))
        player.select(0)
        return player

    def keep_margin(self) -> None:
        """Widen the output's block after underruns, and tell the researcher (not the listener) how many."""
        player = self.player
        if player is None:
            return
        widened = player.keep_margin()
        if widened or player.underruns != self._underruns_noted:
            self._underruns_noted = player.underruns
            self.note.emit(
                f"Playback: {player.underruns} underrun(s) this session on {self.device_name}; block "
                f"{player.blocksize} frames, {1000 * player.output_latency_s:.0f} ms latency"
                + (" (raised after underruns)." if widened or player.blocksize > 1024 else "."))

    def pause(self) -> None:
        if self.player is not None and self.player.playing:
            self.player.pause()

    def close(self) -> None:
        if self.player is not None:
            self.player.close()


__all__ = ["ListenAudio"]
