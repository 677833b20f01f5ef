"""``<out>/training.png``: the training log plotted (the seed's Figures 4.4/4.5)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from matplotlib.figure import Figure

from mosapp.core.files import atomic_write
from mosapp.training.log import read_log
from mosapp.training.validation import read_heldout


def plot_log(log_path: Path, png: Path, title: str) -> None:
    """kbps, PSNR, MS-SSIM and consistency against step (the seed's Figures 4.4/4.5); the
    held-out PSNR (``heldout.csv`` next to the log, :mod:`mosapp.training.validation`) as markers.

    Drawn on a :class:`~matplotlib.figure.Figure` of its own (Agg), so no pyplot state or
    backend choice leaks into the process."""
    rows = read_log(log_path)
    if not rows:
        return
    step = [r.step for r in rows]
    two_band = rows[0].two_band
    fig = Figure(figsize=(10, 6))
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (key, label) in zip(axes.flat, [("kbps", "rate (kbps)"), ("psnr_db", "image PSNR (dB)"),
                                            ("ms_ssim", "MS-SSIM"), ("consistency", "consistency")]):
        ax.plot(step, [getattr(r, key) for r in rows], lw=1,
                label={"kbps": "total", "psnr_db": "high image"}.get(key, "decoded") if two_band else "decoded")
        low_key = {"kbps": "kbps_low", "psnr_db": "psnr_low_db"}.get(key)
        if two_band and low_key:
            ax.plot(step, [getattr(r, low_key) for r in rows], lw=1, label="low image")
            ax.legend()
        if key == "psnr_db":
            for band, (steps, psnr) in read_heldout(log_path.parent / "heldout.csv").items():
                ax.plot(steps, psnr, "o-", ms=3, lw=1, label=f"held-out {band}")
            ax.legend()
        if key == "consistency":
            ax.plot(step, [r.consistency_original for r in rows], lw=1, alpha=0.6, label="original")
            ax.legend()
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle(f"{title}: training")
    fig.tight_layout()

    def save(fh: BinaryIO) -> None:
        fig.savefig(fh, format="png", dpi=100)

    atomic_write(png, save, suffix=".png")
