"""``<out>/log.csv``: one :class:`LogRow` per logged step of ``mosapp train``, by name.

The file is a CSV whose header names the columns (:data:`LOG_COLUMNS`, then
:data:`LOW_LOG_COLUMNS` for the two-band representation); floats are written with 6
significant digits. The committed logs in ``assets/models/*.log.csv`` are such files and read
back with :func:`read_log`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TextIO


@dataclass(frozen=True)
class LogRow:
    """One logged training step.

    Attributes:
        step: steps done.
        seconds: training time so far (over resumptions).
        loss, aux_loss: the loss (:data:`mosapp.training.losses.LOSS_FORMULA`) and the entropy
            bottleneck's auxiliary loss of the step.
        bpp, kbps: the rate of the (high or thesis) image, bits per pixel; the total rate, kbit/s.
        psnr_db, ms_ssim, mel_l1, sc_linear: quality of the (high or thesis) image's batch.
        consistency, consistency_original: tifresi's consistency of a decoded patch and of the original.
        lr: the learning rate of the step.
        kbps_low, psnr_low_db, sc_low: the low band's rate and quality (two-band only; None otherwise).
    """

    step: int
    seconds: float
    loss: float
    bpp: float
    kbps: float
    psnr_db: float
    ms_ssim: float
    mel_l1: float
    consistency: float
    consistency_original: float
    aux_loss: float
    lr: float
    sc_linear: float
    kbps_low: float | None = None
    psnr_low_db: float | None = None
    sc_low: float | None = None

    @property
    def two_band(self) -> bool:
        return self.kbps_low is not None

    def cells(self) -> list[int | str]:
        """The row as written: the step as an integer, every other figure to 6 significant digits."""
        names = LOG_COLUMNS + (LOW_LOG_COLUMNS if self.two_band else [])
        return [_cell(getattr(self, n)) for n in names]

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> LogRow:
        """A row of a log read by :class:`csv.DictReader` (the low band's columns optional)."""
        values = {n: float(row[n]) for n in LOG_COLUMNS if n != "step"}
        low = {n: float(row[n]) for n in LOW_LOG_COLUMNS if row.get(n) not in (None, "")}
        return cls(step=int(row["step"]), **values, **low)


def _cell(value: object) -> int | str:
    if isinstance(value, float):
        return f"{value:.6g}"
    assert isinstance(value, int)
    return value


#: The columns every log has, in order.
LOG_COLUMNS = [f.name for f in fields(LogRow) if f.default is not None]
#: Added for the two-band representation: the low band's rate and quality (the rest is the high band's).
LOW_LOG_COLUMNS = [f.name for f in fields(LogRow) if f.default is None]


class LogWriter:
    """Appends :class:`LogRow` s to a log, flushed row by row (a stopped run keeps what it logged)."""

    def __init__(self, path: Path, *, new: bool, two_band: bool) -> None:
        self._file: TextIO = open(path, "w" if new else "a", newline="")
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(LOG_COLUMNS + (LOW_LOG_COLUMNS if two_band else []))

    def write(self, row: LogRow) -> None:
        self._writer.writerow(row.cells())
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_log(path: Path) -> list[LogRow]:
    """Every row of the log in ``path``."""
    with open(path, newline="") as f:
        return [LogRow.from_csv(r) for r in csv.DictReader(f)]


__all__ = ["LOG_COLUMNS", "LOW_LOG_COLUMNS", "LogRow", "LogWriter", "read_log"]
