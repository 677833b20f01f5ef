"""Held-out figures during training: how the network does on music it never trains on.

Every ``[train] heldout_every`` steps (0: never) the loop scores a fixed set of patches of the
``[data] heldout`` files, ``[data] heldout_seconds`` of music per band (drawn once, with a fixed
seed, so every score of a run and of its resumptions sees the same patches), at latent step 1
with the latents rounded as the coder rounds them, the network in eval mode and no gradient.
Each band's rate (kbps), PSNR, mel L1 and spectral convergence go to ``<out>/heldout.csv``
(one row per step and band); a resumed run drops the rows after its checkpoint, as the
training log does. The training log's figures are those of the batch just trained on, so
only these say whether a longer run still generalises.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mosapp.core.config import get_geometry
from mosapp.models.sgc_net import SpectrogramHyperprior, forward_at_step
from mosapp.training.config import TrainConfig
from mosapp.training.data import PatchSampler, track_image
from mosapp.training.losses import MelLoss, bits_per_pixel, spectral_convergence_loss

#: ``heldout.csv``'s columns.
HELDOUT_COLUMNS = ["step", "band", "kbps", "psnr_db", "mel_l1", "sc_linear"]

#: Patches scored at once (bounds the memory of a score).
_CHUNK = 2


@dataclass
class HeldoutBand:
    """One band's fixed held-out patches, and what scoring them needs."""

    name: str
    net: SpectrogramHyperprior
    mel: MelLoss
    kbps_per_bpp: float
    patches: torch.Tensor


def heldout_patches(cfg: TrainConfig, heldout: list[str], band: str, min_mean: float) -> torch.Tensor | None:
    """``cfg.heldout_seconds`` of patches of the held-out files' ``band`` images (``image``:
    the thesis image), fixed by the config's seed; None without held-out music a patch long."""
    files = [f for f in heldout if os.path.isfile(f)]
    if not files:
        return None
    images = [track_image(f, cfg.geometry, cfg.cache, band="thesis" if band == "image" else band) for f in files]
    if not any(im.shape[1] > cfg.patch_frames for im in images):
        return None  # PatchSampler keeps only the images longer than a patch, and would have none
    patch_seconds = cfg.patch_frames * get_geometry(cfg.geometry).seconds_per_frame()
    count = max(1, math.ceil(cfg.heldout_seconds / patch_seconds))
    return PatchSampler(images, cfg.patch_frames, seed=cfg.seed + 1000, min_mean=min_mean).batch(count)


def score(bands: list[HeldoutBand], step: int, device: torch.device) -> list[dict[str, float | int | str]]:
    """Each band's held-out figures at ``step``: rows of :data:`HELDOUT_COLUMNS`."""
    rows: list[dict[str, float | int | str]] = []
    for band in bands:
        was_training = band.net.training
        band.net.eval()
        bits = 0.0
        squared = 0.0
        mel = 0.0
        sc = 0.0
        n = band.patches.shape[0]
        with torch.no_grad():
            for i in range(0, n, _CHUNK):
                x = band.patches[i: i + _CHUNK].to(device)
                res = forward_at_step(band.net, x, 1.0, ste=True)
                x_hat = res["x_hat"].clamp(0, 1)
                k = x.shape[0]
                bits += float(bits_per_pixel(res["likelihoods"], k * x.shape[2] * x.shape[3])) * k
                squared += float(torch.mean((x_hat - x) ** 2)) * k
                mel += float(band.mel(x_hat, x)) * k
                sc += float(spectral_convergence_loss(x_hat, x)) * k
        band.net.train(was_training)
        rows.append({"step": step, "band": band.name, "kbps": bits / n * band.kbps_per_bpp,
                     "psnr_db": 10 * math.log10(1.0 / max(squared / n, 1e-12)), "mel_l1": mel / n,
                     "sc_linear": sc / n})
    return rows


def append_rows(path: Path, rows: list[dict[str, float | int | str]]) -> None:
    """Append rows to ``heldout.csv``, writing its header first when it is new."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HELDOUT_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_heldout(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """``band → (steps, PSNR)`` from a ``heldout.csv``; empty when there is none (or it cannot be read)."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                steps, psnr = out.setdefault(row["band"], ([], []))
                steps.append(int(row["step"]))
                psnr.append(float(row["psnr_db"]))
    except (OSError, KeyError, ValueError):
        return {}
    return out


def say_rows(rows: list[dict[str, float | int | str]], patches: int) -> str:
    """One line for the console."""
    parts = [f"{r['band']} {float(r['kbps']):.1f} kbps PSNR {float(r['psnr_db']):.2f} dB mel {float(r['mel_l1']):.3f}"
             for r in rows]
    return f"held-out ({patches} patches per band): " + "; ".join(parts)
