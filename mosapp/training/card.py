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

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from mosapp.codecs.twoband import BANDS_TAG
from mosapp.core import bands
from mosapp.core.files import atomic_write
from mosapp.models.card import ModelCard, RateControl
from mosapp.models.sgc_net import SpectrogramHyperprior, TwoBandHyperprior
from mosapp.models.weights import save_weights
from mosapp.training.config import TrainConfig, expand, parse_operating_point
from mosapp.training.losses import card_loss_text


def write_bytes(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``, atomically."""
    def write(fh: BinaryIO) -> None:
        fh.write(data)

    atomic_write(path, write, suffix=path.suffix)


def write_card(path: Path, card: ModelCard) -> None:
    """A card as indented JSON with a final newline (:meth:`ModelCard.dumps`), atomically."""
    write_bytes(path, card.dumps().encode())


def export(model: SpectrogramHyperprior | TwoBandHyperprior, cfg: TrainConfig, files: list[str], hours: float,
           step: int) -> Path:
    """Write ``<export>.pt`` (architecture + weights with entropy tables) and ``<export>.json`` (card)."""
    model = model.cpu()
    model.update(force=True)
    base = Path(cfg.export)
    base.parent.mkdir(parents=True, exist_ok=True)
    arch = model.architecture()
    weights = save_weights(base.with_suffix(".pt"), name=cfg.name, geometry=cfg.geometry, arch=arch,
                           state_dict=model.state_dict())
    card = ModelCard(name=cfg.name, weights=weights.name,
                     architecture={"type": _kind(cfg), **arch, "parameters": sum(p.numel() for p in model.parameters())},
                     geometry=cfg.geometry, image=_image(cfg), training=_training(cfg, files, hours, step),
                     heldout={"files": [os.path.basename(f) for f in expand(cfg.heldout)]}, measured=None)
    write_card(base.with_suffix(".json"), card)
    run = Path(cfg.out_dir)
    for name in ("log.csv", "training.png"):
        if (run / name).exists():
            write_bytes(base.parent / f"{base.name}.{name}", (run / name).read_bytes())
    for op in cfg.operating_points:
        write_operating_point(card, base, *parse_operating_point(op, cfg.source))
    return weights


def _kind(cfg: TrainConfig) -> str:
    """The card's ``architecture.type``: the networks in words."""
    transform = ("a learned 16-row block transform (started as the training images' KLT) with a residual "
                 "post-filter, and mbt2018-mean's mean-scale hyperprior" if cfg.transform == "klt"
                 else "mbt2018-mean (mean-scale hyperprior)")
    if cfg.context == "temporal":
        transform += (" with a temporal context (each latent column predicted from the one decoded before it, "
                      "each channel's coding width rescaled)")
    if cfg.representation == "two-band":
        return (f"two networks, one per band image: {transform}, grayscale" if cfg.transform == "klt"
                else "two mbt2018-mean (mean-scale hyperprior) networks, grayscale, one per band image")
    return "mbt2018-mean (mean-scale hyperprior), grayscale"


def _image(cfg: TrainConfig) -> dict[str, Any]:
    """The card's ``image``: how the network's image is made."""
    if cfg.representation == "two-band":
        return {"representation": "two-band", "bands": BANDS_TAG,
                "crossover_hz": [bands.PASS_HZ, bands.STOP_HZ], "decimation": bands.DECIMATION,
                "low": {"rows": bands.LOW_ROWS, "lattice": "thesis at 5512.5 Hz (10.8 Hz bins, 11.6 ms hop)"},
                "high": {"rows": 256, "lattice": "thesis at 44.1 kHz", "black_below_row": bands.HIGH_FIRST_ROW},
                "dynamic_range_db": 100.0, "note": "each band scaled to its own peak; Nyquist bin dropped"}
    return {"rows": 256, "dynamic_range_db": 100.0, "note": "Nyquist bin dropped (decoded as silence)"}


def _training(cfg: TrainConfig, files: list[str], hours: float, step: int) -> dict[str, Any]:
    """The card's ``training``: data, steps and the loss's settings."""
    two_band = cfg.representation == "two-band"
    return {
        "config": os.path.relpath(cfg.source) if cfg.source else None,
        "command": f"mosapp train --config {os.path.relpath(cfg.source) if cfg.source else '...'}",
        "data": data_text(cfg, files),
        "files": len(files),
        "hours": round(hours, 3),
        "steps": step,
        "batch": cfg.batch,
        "patch": [256, cfg.patch_frames],
        "lr": cfg.lr,
        "loss": card_loss_text(),
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
    }


def data_text(cfg: TrainConfig, files: list[str]) -> str:
    """The card's ``training.data``: the config's ``[data] description``, else the folders the
    training files come from (with how many files each), and how the audio was used."""
    how = "mono mix-down at 44.1 kHz; held-out files excluded"
    if cfg.data_description:
        return f"{cfg.data_description.rstrip('. ')}; {how}"
    folders: dict[str, int] = {}
    for f in files:
        folder = os.path.dirname(f)
        folders[folder] = folders.get(folder, 0) + 1
    listed = ", ".join(f"{folder} ({n})" for folder, n in folders.items())
    return f"{len(files)} files from {listed or 'nowhere'}; {how}"


def write_operating_point(card: ModelCard, base: Path, name: str, kbps: float, share: float,
                          slope: float = 0.0) -> Path:
    """The card of one operating point of exported two-band weights (same folder, same weights file).

    An existing card's ``measured`` section is kept when its weights are the same file."""
    path = base.parent / f"{name}.json"
    previous = ModelCard.read(path) if path.exists() else None
    note = ("one latent step per band for the whole clip: low_share of the bits to the low band (finest step that "
            "fits), the rest to the high band")
    if slope:
        note += (f"; the high image's upper rows coarser, row r's step times (max(f_r, 1.3 kHz) / 4 kHz)^{slope:g} "
                 f"(high_row_slope)")
    op = replace(card, name=name, rate_control=RateControl(target_kbps=kbps, low_share=share,
                                                           high_row_slope=slope or None, note=note),
                 measured=previous.measured if previous is not None and previous.weights == card.weights else None)
    write_card(path, op)
    return path
