"""The ``mosapp train`` config: TOML (see ``configs/``) validated into :class:`TrainConfig`.

::

    [model]  name, n, m, init (weights to finetune from, optional), representation (thesis | two-band),
             high_hyper_time_stride (two-band: the high network's hyperprior time stride, 2 or 4),
             transform (gdn | klt: mbt2018-mean's GDN transforms or a learned block transform
             started as the training images' KLT), klt_step (klt: the coefficient step that
             latent step 1 stands for at the start, [low, high] or [thesis]), block_frames
             (klt: the blocks' length in frames, 16, 32 or 64, [low, high] or [thesis]),
             high_m (two-band: the high network's latent channels; 0, the default: m),
             context (none | temporal: each latent column predicted from the one decoded before it,
             mosapp.models.sgc_net.TemporalContext; started as the least-squares fit on the training
             images when init has none)
    [data]   train (globs), heldout (globs, never trained on), geometry, cache, heldout_seconds
             (held-out music per band scored every heldout_every steps, mosapp.training.validation),
             description (the training data and its licences in words, for the model card; without
             it the card names the folders the training files come from)
    [train]  steps, batch, patch_frames, lr, lr_drop_at, lambda, low_lambda, mel_weight, sc_weight,
             sdl_weight, sdl_frames, low_sdl_frames, seed, log_every, checkpoint_every, threads, device,
             step_range (latent steps drawn log-uniformly per batch and band, [1.0, 1.0] by default:
             one network for a range of rates, its distortion weighted lambda / step^2), ste (decode
             the training image from rounded latents with a straight-through gradient; false: noisy),
             bands (two-band: the band networks this run trains, ["low", "high"] by default; the
             other keeps its init weights), heldout_every (steps between held-out scores, written
             to <dir>/heldout.csv; 0, the default: never)
    [output] dir, export, operating_points (two-band: list of "name:kbps:low_share[:high_row_slope]")

Relative ``init``, ``dir`` and ``export`` paths are relative to the repository when the
config lies in ``configs/``, else to the config's folder.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosapp.core import toml
from mosapp.core.config import get_geometry
from mosapp.core.errors import ConfigError
from mosapp.models.card import STEP_RANGE

#: ``[model] representation``: one network on the thesis image, or one per band image (:mod:`mosapp.core.bands`).
REPRESENTATIONS = ("thesis", "two-band")

#: TOML section → {TOML key: TrainConfig attribute}.
SECTIONS: dict[str, dict[str, str]] = {
    "model": {"name": "name", "n": "n", "m": "m", "init": "init", "representation": "representation",
              "high_hyper_time_stride": "high_hyper_time_stride", "transform": "transform", "klt_step": "klt_step",
              "block_frames": "block_frames", "high_m": "high_m",
              "context": "context"},
    "data": {"train": "train", "heldout": "heldout", "geometry": "geometry", "cache": "cache",
             "heldout_seconds": "heldout_seconds", "description": "data_description"},
    "train": {"steps": "steps", "batch": "batch", "patch_frames": "patch_frames", "lr": "lr", "lr_drop_at": "lr_drop_at",
              "lambda": "lam", "low_lambda": "low_lam", "mel_weight": "mel_weight", "sc_weight": "sc_weight",
              "sdl_weight": "sdl_weight", "sdl_frames": "sdl_frames", "low_sdl_frames": "low_sdl_frames",
              "seed": "seed", "log_every": "log_every", "checkpoint_every": "checkpoint_every", "threads": "threads",
              "device": "device", "bands": "bands", "step_range": "step_range", "ste": "ste",
              "heldout_every": "heldout_every"},
    "output": {"dir": "out_dir", "export": "export", "operating_points": "operating_points"},
}


@dataclass
class TrainConfig:
    """Parsed ``mosapp train`` config; see the module docstring for the fields."""

    name: str
    representation: str = "thesis"
    n: int = 48
    m: int = 64
    high_hyper_time_stride: int = 2
    transform: str = "gdn"
    klt_step: list[float] = field(default_factory=lambda: [0.15, 0.15])
    block_frames: list[int] = field(default_factory=lambda: [16, 16])
    #: Two-band: the high network's latent channels (0: m).
    high_m: int = 0
    #: The latent's entropy model: "none" (the hyperprior alone) or "temporal" (sgc_net.TemporalContext).
    context: str = "none"
    init: str = ""
    train: list[str] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)
    geometry: str = "thesis"
    cache: str = "~/.cache/mosapp/train-images"
    steps: int = 2000
    batch: int = 8
    patch_frames: int = 256
    lr: float = 2e-4
    lr_drop_at: float = 0.8
    lam: float = 0.002
    low_lam: float = 0.0
    mel_weight: float = 300.0
    sc_weight: float = 0.0
    #: Weight of the smoothed log-spectral distance (:func:`mosapp.training.losses.smoothed_db_l1`),
    #: and its window in frames of the high (or thesis) image and of the low image.
    sdl_weight: float = 0.0
    sdl_frames: int = 32
    low_sdl_frames: int = 8
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 200
    threads: int = 0
    device: str = "auto"
    #: Two-band: the networks trained (a band left out keeps the weights it started from).
    bands: list[str] = field(default_factory=lambda: ["low", "high"])
    #: Latent quantisation steps drawn (log-uniformly) per batch and band.
    step_range: list[float] = field(default_factory=lambda: [1.0, 1.0])
    #: Decode the training image from rounded latents (straight-through), not noisy ones.
    ste: bool = False
    out_dir: str = "runs/sgc"
    export: str = ""
    operating_points: list[str] = field(default_factory=list)
    #: Seconds of held-out music per band scored every ``heldout_every`` steps (0: never);
    #: see :mod:`mosapp.training.validation`.
    heldout_seconds: float = 20.0
    heldout_every: int = 0
    #: The training data in words (sources, licences) for the model card; "" lets the card name the folders.
    data_description: str = ""
    source: str = ""

    @staticmethod
    def load(path: str | os.PathLike[str]) -> TrainConfig:
        """Read a TOML config; unknown or ill-typed fields → ConfigError naming the field."""
        p = Path(path)
        values = _typed_values(_read_toml(p), p)
        if not values.get("name"):
            raise ConfigError(f"{p}: model.name is required (e.g. \"sgc-12\").")
        cfg = TrainConfig(**values)
        cfg.source = str(p)
        base = p.parent.parent if p.parent.name == "configs" else p.parent
        for attr in ("out_dir", "export", "init"):
            v = getattr(cfg, attr)
            if v and not os.path.isabs(v):
                setattr(cfg, attr, str(base / v))
        get_geometry(cfg.geometry)
        _check_model(cfg, p)
        _check_blocks(cfg, p)
        _check_train(cfg, p)
        for op in cfg.operating_points:
            parse_operating_point(op, p)
        return cfg


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        return toml.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"The training config {p} does not exist.") from None
    except toml.TOMLDecodeError as exc:
        raise ConfigError(f"The training config {p} is not valid TOML ({exc}).") from None


def _typed_values(raw: dict[str, Any], p: Path) -> dict[str, Any]:
    """TrainConfig attribute → value of every field the TOML sets, each of its default's type
    (an integer where a float is wanted is taken as that float)."""
    values: dict[str, Any] = {}
    defaults = TrainConfig(name="")
    for section, body in raw.items():
        if section not in SECTIONS or not isinstance(body, dict):
            raise ConfigError(f"{p}: unknown section [{section}]; known: {', '.join(SECTIONS)}.")
        for key, value in body.items():
            if key not in SECTIONS[section]:
                raise ConfigError(f"{p}: unknown field {section}.{key}; known: {', '.join(SECTIONS[section])}.")
            attr = SECTIONS[section][key]
            want = type(getattr(defaults, attr))
            if want is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                raise ConfigError(f"{p}: {section}.{key} must be a {want.__name__}, got {value!r}.")
            values[attr] = value
    return values


def _check_model(cfg: TrainConfig, p: Path) -> None:
    """``[model]``'s choices and how they fit the representation."""
    if cfg.representation not in REPRESENTATIONS:
        raise ConfigError(f"{p}: model.representation must be one of {', '.join(REPRESENTATIONS)}, "
                          f"got {cfg.representation!r}.")
    if cfg.representation == "two-band" and cfg.geometry != "thesis":
        raise ConfigError(f"{p}: the two-band representation uses the thesis geometry (data.geometry = \"thesis\").")
    if cfg.high_hyper_time_stride not in (2, 4):
        raise ConfigError(f"{p}: model.high_hyper_time_stride must be 2 or 4, got {cfg.high_hyper_time_stride}.")
    for key in ("sdl_frames", "low_sdl_frames"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{p}: train.{key} must be at least 1 (frames the power is averaged over), "
                              f"got {getattr(cfg, key)}.")
    if cfg.transform not in ("gdn", "klt"):
        raise ConfigError(f"{p}: model.transform must be \"gdn\" or \"klt\", got {cfg.transform!r}.")
    if cfg.context not in ("none", "temporal"):
        raise ConfigError(f"{p}: model.context must be \"none\" or \"temporal\", got {cfg.context!r}.")
    if cfg.high_m < 0 or (cfg.high_m and cfg.representation != "two-band"):
        raise ConfigError(f"{p}: model.high_m is the two-band high network's latent channels (0: m), "
                          f"got {cfg.high_m}.")


def _check_blocks(cfg: TrainConfig, p: Path) -> None:
    """``klt_step`` and ``block_frames``: one per image, in range, and what a block transform can hold."""
    n_steps = 2 if cfg.representation == "two-band" else 1
    if len(cfg.klt_step) < n_steps or not all(isinstance(v, (int, float)) and 0 < v < 1 for v in cfg.klt_step):
        raise ConfigError(f"{p}: model.klt_step must give {n_steps} coefficient step(s) between 0 and 1 "
                          f"({'[low, high]' if n_steps == 2 else '[step]'}), got {cfg.klt_step!r}.")
    if (len(cfg.block_frames) < n_steps or not all(v in (16, 32, 64) for v in cfg.block_frames)
            or (cfg.transform != "klt" and any(v != 16 for v in cfg.block_frames))):
        raise ConfigError(f"{p}: model.block_frames gives each image's block length, 16, 32 or 64 frames "
                          f"({'[low, high]' if n_steps == 2 else '[frames]'}), other than 16 only for a block "
                          f"transform (transform = \"klt\"); got {cfg.block_frames!r}.")
    if cfg.transform == "klt":
        for m, frames in zip((cfg.m, cfg.high_m or cfg.m), cfg.block_frames):
            if not 1 <= m <= 16 * frames:
                raise ConfigError(f"{p}: a block transform of 16 x {frames} blocks has at most {16 * frames} "
                                  f"latent channels, got {m}.")


def _check_train(cfg: TrainConfig, p: Path) -> None:
    """``[train]``'s step range (within what rate control may use: :data:`mosapp.models.card.STEP_RANGE`)
    and the bands it trains."""
    low, high = STEP_RANGE
    if (len(cfg.step_range) != 2 or not all(isinstance(v, (int, float)) for v in cfg.step_range)
            or not low <= cfg.step_range[0] <= cfg.step_range[1] <= high):
        raise ConfigError(f"{p}: train.step_range must be [low, high] with {low:g} <= low <= high <= {high:g}, "
                          f"got {cfg.step_range!r}.")
    if (not cfg.bands or len(set(cfg.bands)) != len(cfg.bands)
            or not all(isinstance(b, str) and b in ("low", "high") for b in cfg.bands)):
        raise ConfigError(f"{p}: train.bands must list \"low\", \"high\" or both, each once, got {cfg.bands!r}.")
    if cfg.representation != "two-band" and sorted(cfg.bands) != ["high", "low"]:
        raise ConfigError(f"{p}: train.bands is for the two-band representation; a thesis network is one image.")
    if sorted(cfg.bands) != ["high", "low"] and not cfg.init:
        raise ConfigError(f"{p}: train.bands = {cfg.bands!r} leaves a band untrained, so model.init must give "
                          f"its weights.")


def parse_operating_point(text: str, source: Any = "config") -> tuple[str, float, float, float]:
    """``"sgc-12:12:0.4"`` or ``"sgc-12:12:0.4:0.5"`` → (name, target kbps, low band's share of the bits,
    high image's row slope, 0 where not given: :func:`mosapp.codecs.sgc.high_row_multipliers`);
    ConfigError otherwise."""
    parts = str(text).split(":")
    try:
        name, kbps, share = parts[0], float(parts[1]), float(parts[2])
        slope = float(parts[3]) if len(parts) > 3 else 0.0
        if (len(parts) not in (3, 4) or not name.startswith("sgc-") or not (0 < kbps < 1000)
                or not (0.05 <= share <= 0.95) or not (0.0 <= slope <= 2.0)):
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"{source}: output.operating_points entry {text!r} is not \"sgc-<name>:<kbps>:<low band's "
                          f"share of the bits, 0.05-0.95>[:<high row slope, 0-2>]\" (e.g. \"sgc-12:12:0.4:0.5\")."
                          ) from None
    return name, kbps, share, slope


def expand(globs: list[str]) -> list[str]:
    """Every file the globs match (``~`` expanded), each glob's matches sorted, in glob order."""
    files: list[str] = []
    for g in globs:
        files.extend(sorted(glob.glob(os.path.expanduser(g))))
    return files


def training_files(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """(training files, held-out files); a held-out file is never trained on."""
    heldout = expand(cfg.heldout)
    held = {os.path.realpath(f) for f in heldout}
    train = [f for f in expand(cfg.train) if os.path.realpath(f) not in held]
    if not train:
        raise ConfigError(f"No training audio matches {cfg.train} (after removing the held-out files).")
    return train, heldout
