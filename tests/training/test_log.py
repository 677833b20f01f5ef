"""The training log by name: LogRow's columns are the file's, and the committed logs read back as written."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mosapp.training.log import LOG_COLUMNS, LOW_LOG_COLUMNS, LogRow, LogWriter, read_log

LOGS = sorted((Path(__file__).resolve().parents[2] / "assets" / "models").glob("*.log.csv"))


def test_the_columns_are_the_files():
    assert LOG_COLUMNS == ["step", "seconds", "loss", "bpp", "kbps", "psnr_db", "ms_ssim", "mel_l1", "consistency",
                           "consistency_original", "aux_loss", "lr", "sc_linear"]
    assert LOW_LOG_COLUMNS == ["kbps_low", "psnr_low_db", "sc_low"]


@pytest.mark.parametrize("path", LOGS, ids=[p.name for p in LOGS])
def test_a_committed_log_reads_and_writes_back_the_same(path, tmp_path):
    rows = read_log(path)
    assert rows and all(isinstance(r.step, int) for r in rows)
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert header == LOG_COLUMNS + (LOW_LOG_COLUMNS if rows[0].two_band else [])
    copy = tmp_path / "log.csv"
    writer = LogWriter(copy, new=True, two_band=rows[0].two_band)
    for row in rows:
        writer.write(row)
    writer.close()
    assert copy.read_text() == path.read_text()  # (read with universal newlines)


def test_a_row_is_written_by_name():
    row = LogRow(step=3, seconds=1.5, loss=0.1234567, bpp=0.05, kbps=12.0, psnr_db=25.0, ms_ssim=0.9, mel_l1=0.1,
                 consistency=0.5, consistency_original=0.6, aux_loss=1000.0, lr=1e-4, sc_linear=0.3)
    assert not row.two_band
    assert row.cells() == [3, "1.5", "0.123457", "0.05", "12", "25", "0.9", "0.1", "0.5", "0.6", "1000", "0.0001", "0.3"]
    low = LogRow(**{**row.__dict__, "kbps_low": 3.0, "psnr_low_db": 28.0, "sc_low": 0.2})
    assert low.two_band and low.cells()[-3:] == ["3", "28", "0.2"]
