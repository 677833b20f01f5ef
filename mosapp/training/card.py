"""Exporting trained weights: ``<export>.pt`` and its model card ``<export>.json``.

The weights file is :mod:`mosapp.models.weights`' format (entropy tables updated). The
card says what the weights are and how they were trained; next to it go copies of the
run's ``log.csv`` and ``training.png`` (``<export>.log.csv``, ``<export>.training.png``).
Two-band weights serve the ``[output] operating_points``, one card each (e.g. ``sgc-6``,
``sgc-12``, ``sgc-24``), which differ in their target rate and ``low_share``. A card's
``measured`` section (kbps and quality on held-out music) is filled in later by
:func:`mosapp.evaluation.evaluate.evaluate_codec`; rewriting a card keeps it while the
weights file is the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, BinaryIO

from mosapp.codecs.twoband import BANDS_TAG
from mosapp.core import bands
from mosapp.core.files import atomic_write
from mosapp.models.sgc_net import SpectrogramHyperprior, TwoBandHyperprior
from mosapp.models.weights import save_weights
from mosapp.training.config import TrainConfig, expand, parse_operating_point


def write_bytes(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``, atomically."""
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write, suffix=path.suffix)


def write_json(path: Path, obj: Any) -> None:
    """A card as indented JSON with a final newline, atomically."""
    write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def export(model: SpectrogramHyperprior | TwoBandHyperprior, cfg: TrainConfig, files: list[str], hours: float,
           step: int) -> Path:
    """Write ``<export>.pt`` (architecture + weights with entropy tables) and ``<export>.json`` (card)."""
    model = model.cpu()
    model.update(force=True)
    base = Path(cfg.export)
    base.parent.mkdir(parents=True, exist_ok=True)
    two_band = cfg.representation == "two-band"
    arch = model.architecture()
    weights = save_weights(base.with_suffix(".pt"), name=cfg.name, geometry=cfg.geometry, arch=arch,
                           state_dict=model.state_dict())
    image: dict[str, Any]
    transform = ("a learned 16-row block transform (started as the training images' KLT) with a residual "
                 "post-filter, and mbt2018-mean's mean-scale hyperprior" if cfg.transform == "klt"
                 else "mbt2018-mean (mean-scale hyperprior)")
    if cfg.context == "temporal":
        transform += (" with a temporal context (each latent column predicted from the one decoded before it, "
                      "each channel's coding width rescaled)")
    if two_band:
        kind = (f"two networks, one per band image: {transform}, grayscale" if cfg.transform == "klt"
                else "two mbt2018-mean (mean-scale hyperprior) networks, grayscale, one per band image")
        image = {"representation": "two-band", "bands": BANDS_TAG,
                 "crossover_hz": [bands.PASS_HZ, bands.STOP_HZ], "decimation": bands.DECIMATION,
                 "low": {"rows": bands.LOW_ROWS, "lattice": "thesis at 5512.5 Hz (10.8 Hz bins, 11.6 ms hop)"},
                 "high": {"rows": 256, "lattice": "thesis at 44.1 kHz", "black_below_row": bands.HIGH_FIRST_ROW},
                 "dynamic_range_db": 100.0, "note": "each band scaled to its own peak; Nyquist bin dropped"}
    else:
        kind = "mbt2018-mean (mean-scale hyperprior), grayscale"
        image = {"rows": 256, "dynamic_range_db": 100.0, "note": "Nyquist bin dropped (decoded as silence)"}
    card = {
        "name": cfg.name,
        "weights": weights.name,
        "architecture": {"type": kind, **arch, "parameters": sum(p.numel() for p in model.parameters())},
        "geometry": cfg.geometry,
        "image": image,
        "training": {
            "config": os.path.relpath(cfg.source) if cfg.source else None,
            "command": f"mosapp train --config {os.path.relpath(cfg.source) if cfg.source else '...'}",
            "data": "Debian game-music packages hyperrogue-music and drascula-music (CC-BY-SA / freeware "
                    "soundtracks, not redistributed), mono mix-down at 44.1 kHz; held-out files excluded",
            "files": len(files),
            "hours": round(hours, 3),
            "steps": step,
            "batch": cfg.batch,
            "patch": [256, cfg.patch_frames],
            "lr": cfg.lr,
            "loss": "bpp + lambda * (255^2 * MSE(image) + mel_weight * L1(log10 mel) "
                    "+ sc_weight * spectral convergence of the linear magnitude "
                    "+ sdl_weight * L1 of the dB power averaged over sdl_frames frames, floored at -80 dB)",
            "lambda": cfg.lam,
            **({"low_lambda": cfg.low_lam or cfg.lam} if two_band else {}),
            "mel_weight": cfg.mel_weight,
            "sc_weight": cfg.sc_weight,
            **({"sdl_weight": cfg.sdl_weight,
                "sdl_frames": {"low": cfg.low_sdl_frames, "high": cfg.sdl_frames} if two_band else cfg.sdl_frames}
               if cfg.sdl_weight else {}),
            "adversarial": False,
            "init": cfg.init or None,
            **({"klt_step": cfg.klt_step[: 2 if two_band else 1]} if cfg.transform == "klt" else {}),
            **({"step_range": cfg.step_range, "distortion_weight": "lambda / step^2"}
               if cfg.step_range[0] != cfg.step_range[1] or cfg.step_range[0] != 1.0 else {}),
            **({"quantisation": "likelihoods with noise, image decoded from rounded latents (straight-through)"}
               if cfg.ste else {}),
            **({"bands_trained": list(cfg.bands)} if two_band and sorted(cfg.bands) != ["high", "low"] else {}),
            "log": "training log.csv and training.png next to this card",
        },
        "heldout": {"files": [os.path.basename(f) for f in expand(cfg.heldout)]},
        "measured": None,
    }
    write_json(base.with_suffix(".json"), card)
    run = Path(cfg.out_dir)
    for name in ("log.csv", "training.png"):
        if (run / name).exists():
            write_bytes(base.parent / f"{base.name}.{name}", (run / name).read_bytes())
    for op in cfg.operating_points:
        write_operating_point(card, base, *parse_operating_point(op, cfg.source))
    return weights


def write_operating_point(card: dict[str, Any], base: Path, name: str, kbps: float, share: float,
                          slope: float = 0.0) -> Path:
    """The card of one operating point of exported two-band weights (same folder, same weights file).

    An existing card's ``measured`` section is kept when its weights are the same file."""
    path = base.parent / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    note = ("one latent step per band for the whole clip: low_share of the bits to the low band (finest step that "
            "fits), the rest to the high band")
    if slope:
        note += (f"; the high image's upper rows coarser, row r's step times (max(f_r, 1.3 kHz) / 4 kHz)^{slope:g} "
                 f"(high_row_slope)")
    op = {**card, "name": name,
          "rate_control": {"target_kbps": kbps, "low_share": share, **({"high_row_slope": slope} if slope else {}),
                           "note": note},
          "measured": previous.get("measured") if previous.get("weights") == card["weights"] else None}
    write_json(path, op)
    return path
