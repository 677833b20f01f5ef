"""The decoder's level map: a fitted correction of a decoded band image's levels, by row, level and step.

A learned image codec decodes the log spectrogram as something close to the conditional mean of
each pixel: fine structure is smoothed, quiet cells come out a little loud and, once the phase is
rebuilt and the audio analysed again, the result is on average a little quiet (an average of
logarithms is below the logarithm of the average). How much depends on the frequency, on the
cell's level and on how coarsely the stream was quantised. A *level map* undoes that systematic
part: an offset in dB for each (image row, decoded level) at a few latent quantisation steps,
interpolated linearly in row, level and log(step), added to the decoded image before the phase is
rebuilt. It is fitted on training music (never on held-out music) by
:mod:`mosapp.training.calibration` and stored in the weights file (``"level_maps"``), so streams
coded with weights that have none decode exactly as before.

Stored form (plain values, readable with ``torch.load(weights_only=True)``)::

    {"rows": [row, ...],             # image rows the offsets are given at, ascending
     "level_step_db": 10.0,          # the levels are 0, -10, -20, ... dB below the band's peak
     "steps": [step, ...],           # latent quantisation steps the tables were fitted at, ascending
     "offsets_db": [[[dB per level] per row] per step]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch

#: The largest offset (dB) a level map may hold: a correction, not a new spectrogram.
MAX_OFFSET_DB = 12.0
#: The quietest a corrected non-silent pixel may become (pixel 0 means exact silence).
MIN_PIXEL = 1e-6


@dataclass(frozen=True)
class LevelMap:
    """One band image's level map (see the module's docstring)."""

    rows: tuple[float, ...]
    level_step_db: float
    steps: tuple[float, ...]
    offsets_db: np.ndarray  # (steps, rows, levels) float64

    @property
    def levels(self) -> int:
        return int(self.offsets_db.shape[2])

    @staticmethod
    def from_dict(raw: Any, what: str) -> LevelMap:
        """Check and read the stored form.

        Raises:
            ValueError: naming ``what`` and what is wrong (the caller words it as a model error).
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"{what} is not a table")
        try:
            rows = tuple(float(r) for r in raw["rows"])
            level_step = float(raw["level_step_db"])
            steps = tuple(float(s) for s in raw["steps"])
            offsets = np.asarray(raw["offsets_db"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{what} lacks a field or has one that is not numbers ({exc})") from None
        if offsets.ndim != 3 or offsets.shape[:2] != (len(steps), len(rows)) or offsets.shape[2] < 1:
            raise ValueError(f"{what}'s offsets are shaped {offsets.shape}, not (steps, rows, levels) = "
                             f"({len(steps)}, {len(rows)}, levels)")
        if not rows or list(rows) != sorted(set(rows)) or not steps or list(steps) != sorted(set(steps)):
            raise ValueError(f"{what}'s rows and steps must be non-empty and strictly ascending")
        if not (math.isfinite(level_step) and level_step > 0) or min(steps) <= 0 or not all(map(math.isfinite, steps)):
            raise ValueError(f"{what}'s level spacing and steps must be positive numbers")
        if not np.all(np.isfinite(offsets)) or np.abs(offsets).max() > MAX_OFFSET_DB:
            raise ValueError(f"{what}'s offsets must be finite and within +-{MAX_OFFSET_DB:g} dB")
        return LevelMap(rows, level_step, steps, offsets)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "level_step_db": self.level_step_db, "steps": list(self.steps),
                "offsets_db": np.round(self.offsets_db, 3).tolist()}

    def table(self, step: float, n_rows: int) -> np.ndarray:
        """The offsets (dB) at ``step`` for every row of an ``n_rows``-row image: ``(n_rows, levels)``."""
        log_steps = np.log(np.asarray(self.steps))
        at = float(np.clip(math.log(max(step, 1e-9)), log_steps[0], log_steps[-1]))
        k = int(np.searchsorted(log_steps, at, side="right")) - 1
        k = min(max(k, 0), len(self.steps) - 1)
        if k + 1 < len(self.steps):
            w = (at - log_steps[k]) / (log_steps[k + 1] - log_steps[k])
            by_row = (1 - w) * self.offsets_db[k] + w * self.offsets_db[k + 1]
        else:
            by_row = self.offsets_db[k]
        rows = np.arange(n_rows, dtype=np.float64)
        return np.stack([np.interp(rows, self.rows, by_row[:, j]) for j in range(self.levels)], axis=1)

    def apply(self, image: torch.Tensor, step: float, dynamic_range_db: float) -> torch.Tensor:
        """``image`` (rows, frames) in [0, 1] with each pixel moved by its offset; silent pixels (0) stay 0.

        A pixel ``v > 0`` is ``level = (v - 1) * dynamic_range_db`` dB below the band's peak; its offset is
        the row's table (:meth:`table`) interpolated linearly at ``-level / level_step_db`` (clamped to the
        levels given), and it becomes ``max(v + offset / dynamic_range_db, MIN_PIXEL)``. One compiled pass
        over the image (a 30 s high image is 5.3 million pixels)."""
        # In pixel units, with a second level column where there is one, so every pixel interpolates.
        table = self.table(step, image.shape[0]) / dynamic_range_db
        if table.shape[1] == 1:
            table = np.repeat(table, 2, axis=1)
        scale = dynamic_range_db / self.level_step_db if self.levels > 1 else 0.0
        pixels = image.detach().to("cpu", torch.float32).contiguous().numpy()
        out = np.empty_like(pixels)
        _apply(pixels, np.ascontiguousarray(table, dtype=np.float32), np.float32(scale), out)
        return torch.from_numpy(out).to(image.device)


@numba.njit(cache=True, nogil=True)
def _apply(image: np.ndarray, table: np.ndarray, scale: np.float32, out: np.ndarray) -> None:
    """:meth:`LevelMap.apply`'s arithmetic, pixel by pixel in float32: ``table`` (rows, >= 2 levels) holds
    the offsets in pixel units, ``scale`` turns ``1 - v`` into a level index."""
    rows, frames = image.shape
    last = np.float32(table.shape[1] - 1)
    top = table.shape[1] - 2
    floor = np.float32(MIN_PIXEL)
    one = np.float32(1.0)
    for r in range(rows):
        row = table[r]
        for f in range(frames):
            v = image[r, f]
            if v > 0:
                pos = min(max((one - v) * scale, np.float32(0.0)), last)
                i = min(int(pos), top)
                moved = v + row[i] + (row[i + 1] - row[i]) * (pos - np.float32(i))
                out[r, f] = moved if moved > floor else floor
            else:
                out[r, f] = v


def read_level_maps(raw: Any, source: str) -> dict[str, LevelMap]:
    """A weights file's ``"level_maps"`` entry (``{"low": ..., "high": ...}``), or ``{}`` when it has none.

    Raises:
        ValueError: the entry is malformed (naming ``source`` and the band).
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not set(raw) <= {"low", "high"}:
        raise ValueError(f"{source}'s level maps must be a table with \"low\" and/or \"high\"")
    return {band: LevelMap.from_dict(value, f"{source}'s {band}-band level map") for band, value in raw.items()}
