"""``mosapp train``: train or finetune the compact spectrogram codec on a folder of audio.

Loss (per batch of image patches ``x`` in [0, 1], decoded ``x̂``)::

    R   = bits of ŷ and ẑ under the model's entropy models / pixels        (bpp)
    D   = 255² · mean((x̂ - x)²)                                            (image MSE)
    Mel = mean | log10(mel(|x̂|)) - log10(mel(|x|)) |                      (audio side)
    SC  = mean over patches of ‖|x̂| - |x|‖_F / ‖|x|‖_F                      (loud bins)
    loss = R + λ · (D + w_mel · Mel + w_sc · SC)

``|x|`` is the magnitude the image stands for (``10^(5 (x - 1))``, the 100 dB mapping
relative to the patch's peak), ``mel`` the Slaney mel filterbank of the lattice (64
bands, the DAC/librosa filters), applied to the magnitude — the mel spectrogram of the
audio this spectrogram is the STFT of. The entropy bottleneck's quantiles are trained
with compressai's auxiliary loss by a second optimiser, as compressai does.

Logged every ``log_every`` steps to ``<out>/log.csv``: step, seconds, loss, bpp, kbps
(bpp × 256 rows × frames per second of the lattice), PSNR of the image (dB), MS-SSIM,
mel L1, and the consistency (tifresi's metric) of a decoded patch next to the original's;
``<out>/training.png`` plots them (the seed's Figures 4.4/4.5). ``<out>/checkpoint.pt``
is written every ``checkpoint_every`` steps and picked up again when the same command
runs anew. At the end the weights (entropy tables updated) and a model card go to
``export`` (``assets/models/<name>.pt`` / ``.json``); the card's measured kbps and quality
on held-out music come from :func:`mosapp.evaluation.evaluate.evaluate_codec`.

**Two-band representation** (``[model] representation = "two-band"``, :mod:`mosapp.core.bands`):
one network per band image (:class:`mosapp.models.sgc_net.TwoBandHyperprior`), trained
together. Every step draws a batch of low-image patches (128 rows: 0–1378 Hz at 10.8 Hz
per bin, ``patch_frames`` frames of 11.6 ms) and one of high-image patches (256 rows of
the thesis lattice); the loss is the sum of the two bands' losses above, with
``low_lambda`` for the low band (its image is 6 % of the pixels and holds the pitch, so
it gets a larger share of the bits) and the mel filterbank of each band's own lattice.
``init`` may name thesis weights (both networks start from them) or two-band weights.
The log adds kbps, PSNR and spectral convergence of the low band; ``kbps`` is the total.
Exported weights serve the ``[output] operating_points`` (one card each, e.g. ``sgc-6``,
``sgc-12``, ``sgc-24``), which differ in their target rate and ``low_share`` (the share of
the stream's bits rate control gives the low band).

The config is TOML (see ``configs/``)::

    [model]  name, n, m, init (weights to finetune from, optional), representation (thesis | two-band)
    [data]   train (globs), heldout (globs, never trained on), geometry, cache
    [train]  steps, batch, patch_frames, lr, lr_drop_at, lambda, low_lambda, mel_weight, sc_weight, seed,
             log_every, checkpoint_every, threads, device
    [output] dir, export, operating_points (two-band: list of "name:kbps:low_share")
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomllib
import torch

from mosapp.core import dsp, metrics
from mosapp.core.audio import read_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE, get_geometry
from mosapp.core.errors import ConfigError

MEL_BANDS = 64


@dataclass
class TrainConfig:
    """Parsed ``mosapp train`` config; see the module docstring for the fields."""

    name: str
    representation: str = "thesis"
    n: int = 48
    m: int = 64
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
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 200
    threads: int = 0
    device: str = "auto"
    out_dir: str = "runs/sgc"
    export: str = ""
    operating_points: list[str] = field(default_factory=list)
    heldout_seconds: float = 20.0
    source: str = ""

    @staticmethod
    def load(path: str | os.PathLike[str]) -> TrainConfig:
        """Read a TOML config; unknown or ill-typed fields → ConfigError naming the field."""
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"The training config {p} does not exist.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"The training config {p} is not valid TOML ({exc}).") from None
        sections = {"model": {"name": "name", "n": "n", "m": "m", "init": "init", "representation": "representation"},
                    "data": {"train": "train", "heldout": "heldout", "geometry": "geometry", "cache": "cache",
                             "heldout_seconds": "heldout_seconds"},
                    "train": {"steps": "steps", "batch": "batch", "patch_frames": "patch_frames", "lr": "lr", "lr_drop_at": "lr_drop_at",
                              "lambda": "lam", "low_lambda": "low_lam", "mel_weight": "mel_weight", "sc_weight": "sc_weight", "seed": "seed", "log_every": "log_every",
                              "checkpoint_every": "checkpoint_every", "threads": "threads", "device": "device"},
                    "output": {"dir": "out_dir", "export": "export", "operating_points": "operating_points"}}
        values: dict[str, Any] = {}
        defaults = TrainConfig(name="")
        for section, body in raw.items():
            if section not in sections or not isinstance(body, dict):
                raise ConfigError(f"{p}: unknown section [{section}]; known: {', '.join(sections)}.")
            for key, value in body.items():
                if key not in sections[section]:
                    raise ConfigError(f"{p}: unknown field {section}.{key}; known: {', '.join(sections[section])}.")
                attr = sections[section][key]
                want = type(getattr(defaults, attr))
                if want is float and isinstance(value, int):
                    value = float(value)
                if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                    raise ConfigError(f"{p}: {section}.{key} must be a {want.__name__}, got {value!r}.")
                values[attr] = value
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
        if cfg.representation not in REPRESENTATIONS:
            raise ConfigError(f"{p}: model.representation must be one of {', '.join(REPRESENTATIONS)}, "
                              f"got {cfg.representation!r}.")
        if cfg.representation == "two-band" and cfg.geometry != "thesis":
            raise ConfigError(f"{p}: the two-band representation uses the thesis geometry (data.geometry = \"thesis\").")
        for op in cfg.operating_points:
            parse_operating_point(op, p)
        return cfg


REPRESENTATIONS = ("thesis", "two-band")


def parse_operating_point(text: str, source: Any = "config") -> tuple[str, float, float]:
    """``"sgc-12:12:0.4"`` → (name, target kbps, low band's share of the bits); ConfigError otherwise."""
    parts = str(text).split(":")
    try:
        name, kbps, share = parts[0], float(parts[1]), float(parts[2])
        if len(parts) != 3 or not name.startswith("sgc-") or not (0 < kbps < 1000) or not (0.05 <= share <= 0.95):
            raise ValueError
    except (ValueError, IndexError):
        raise ConfigError(f"{source}: output.operating_points entry {text!r} is not \"sgc-<name>:<kbps>:<low band's "
                          f"share of the bits, 0.05-0.95>\" (e.g. \"sgc-12:12:0.4\").") from None
    return name, kbps, share


def expand(globs: list[str]) -> list[str]:
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


# ----------------------------------------------------------------------------- data


def track_image(path: str, geometry_name: str, cache: str, band: str = "thesis") -> np.ndarray:
    """The file's log-magnitude image (float16) scaled to its own peak, cached on disk.

    ``band``: ``thesis`` (256 rows of the geometry), or ``low`` / ``high`` (the two-band
    images of :mod:`mosapp.codecs.twoband`: 128 and 256 rows).
    """
    geometry = get_geometry(geometry_name)
    st = os.stat(path)
    tag = "v1" if band == "thesis" else f"{band}|{_bands_tag()}|v1"
    key = hashlib.sha256(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{geometry}|{tag}".encode()).hexdigest()[:24]
    cdir = Path(os.path.expanduser(cache))
    cdir.mkdir(parents=True, exist_ok=True)
    cfile = cdir / f"{key}.npy"
    if cfile.exists():
        return np.load(cfile, mmap_mode="r")
    audio = read_audio(path)
    if band != "thesis":
        from mosapp.codecs.twoband import band_images

        low, _, high, _ = band_images(audio.samples[0], torch.device("cpu"))
        image = (low if band == "low" else high[:256]).to(torch.float16).numpy()
        tmp = cfile.with_suffix(".tmp.npy")
        np.save(tmp, image)
        os.replace(tmp, cfile)
        return np.load(cfile, mmap_mode="r")
    x = torch.from_numpy(audio.samples[0])
    xp, _ = dsp.pad_for_lattice(x, geometry)
    n_frames = geometry.frames_for(xp.shape[-1])
    mags = [dsp.stft(xp, geometry, s, min(s + 8192, n_frames)).abs() for s in range(0, n_frames, 8192)]
    peak = max(float(m.max()) for m in mags)
    scale = dsp.image_scale_for(peak)
    image = torch.cat([dsp.magnitude_to_image(m, scale) for m in mags], dim=1)[:256].to(torch.float16).numpy()
    tmp = cfile.with_suffix(".tmp.npy")
    np.save(tmp, image)
    os.replace(tmp, cfile)
    return np.load(cfile, mmap_mode="r")


def _bands_tag() -> str:
    from mosapp.codecs.twoband import BANDS_TAG

    return BANDS_TAG


class PatchSampler:
    """Random (rows × patch_frames) patches, tracks drawn in proportion to their length.

    Patches that are nearly empty (mean pixel below ``min_mean``, 0.15: silence between
    pieces) are redrawn up to three times, so the batch is mostly music.
    """

    def __init__(self, images: list[np.ndarray], patch_frames: int, seed: int, min_mean: float = 0.15) -> None:
        self.images = [im for im in images if im.shape[1] > patch_frames]
        if not self.images:
            raise ConfigError("Every training file is shorter than one patch.")
        lengths = np.array([im.shape[1] for im in self.images], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.w = patch_frames
        self.rng = np.random.default_rng(seed)
        self.min_mean = min_mean

    def batch(self, size: int) -> torch.Tensor:
        out = np.empty((size, 1, self.images[0].shape[0], self.w), dtype=np.float32)
        for i in range(size):
            for _ in range(4):
                im = self.images[self.rng.choice(len(self.images), p=self.p)]
                t0 = int(self.rng.integers(0, im.shape[1] - self.w))
                patch = np.asarray(im[:, t0: t0 + self.w], dtype=np.float32)
                if patch.mean() >= self.min_mean:
                    break
            out[i, 0] = patch
        return torch.from_numpy(out)


# ----------------------------------------------------------------------------- losses


class MelLoss(torch.nn.Module):
    """Mean |log10 mel(|x̂|) - log10 mel(|x|)| with the lattice's 64-band Slaney filterbank."""

    def __init__(self, geometry_name: str, sample_rate: int = PIPELINE_SAMPLE_RATE, rows: int = 256) -> None:
        super().__init__()
        g = get_geometry(geometry_name)
        fb = metrics._mel_filters(int(sample_rate), g.channels, MEL_BANDS)[:, :rows]
        if rows < 256:  # a band's own lattice: drop the mel bands above its image
            fb = fb[fb.sum(axis=1) > 0]
        self.register_buffer("fb", torch.from_numpy(fb.copy()))

    @staticmethod
    def magnitude(image: torch.Tensor) -> torch.Tensor:
        return torch.pow(10.0, 5.0 * (image.clamp(0.0, 1.0) - 1.0))

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = torch.einsum("mf,bcft->bcmt", self.fb, self.magnitude(x_hat))
        b = torch.einsum("mf,bcft->bcmt", self.fb, self.magnitude(x))
        return (torch.log10(a.clamp_min(1e-5)) - torch.log10(b.clamp_min(1e-5))).abs().mean()


def spectral_convergence_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``||M̂ - M||_F / ||M||_F`` on the linear magnitudes the images stand for.

    The log-domain MSE treats a −90 dB pixel like the peak; spectral convergence is
    dominated by the loud bins (tonal peaks), which is where a blurred image hurts the
    reconstruction most.
    """
    a, b = MelLoss.magnitude(x_hat), MelLoss.magnitude(x)
    num = torch.linalg.vector_norm((a - b).flatten(1), dim=1)
    den = torch.linalg.vector_norm(b.flatten(1), dim=1).clamp_min(1e-8)
    return (num / den).mean()


def bits_per_pixel(likelihoods: dict[str, torch.Tensor], pixels: int) -> torch.Tensor:
    return sum(torch.log(lk).sum() for lk in likelihoods.values()) / (-math.log(2) * pixels)


def kbps_from_bpp(bpp: float, geometry_name: str, rows: int = 256, sample_rate: float = PIPELINE_SAMPLE_RATE) -> float:
    """Bitrate of a ``rows``-row image at the lattice's frame rate (at ``sample_rate``)."""
    g = get_geometry(geometry_name)
    return bpp * rows * sample_rate / g.hop / 1000.0


def patch_consistency(image: torch.Tensor) -> float:
    mag = MelLoss.magnitude(image.detach().float()).cpu().numpy()
    return metrics.consistency(metrics.log_spectrogram_for_consistency(mag))


# ----------------------------------------------------------------------------- training

LOG_COLUMNS = ["step", "seconds", "loss", "bpp", "kbps", "psnr_db", "ms_ssim", "mel_l1", "consistency",
               "consistency_original", "aux_loss", "lr", "sc_linear"]
#: Added for the two-band representation: the low band's rate and quality (the rest is the high band's).
LOW_LOG_COLUMNS = ["kbps_low", "psnr_low_db", "sc_low"]


@dataclass
class _Band:
    """What the training loop needs for one image: its network, patches, mel loss, lambda, rate scale."""

    name: str
    net: Any
    sampler: PatchSampler
    mel: MelLoss
    lam: float
    kbps_per_bpp: float


def _make_bands(cfg: TrainConfig, model, files: list[str], device) -> list[_Band]:
    if cfg.representation == "thesis":
        images = [track_image(f, cfg.geometry, cfg.cache) for f in files]
        return [_Band("image", model, PatchSampler(images, cfg.patch_frames, cfg.seed), MelLoss(cfg.geometry).to(device),
                      cfg.lam, kbps_from_bpp(1.0, cfg.geometry))]
    from mosapp.core import bands
    from mosapp.models.sgc_net import BAND_ROWS

    out = []
    for i, name in enumerate(("low", "high")):
        images = [track_image(f, cfg.geometry, cfg.cache, band=name) for f in files]
        rate = bands.LOW_SAMPLE_RATE if name == "low" else PIPELINE_SAMPLE_RATE
        mel = MelLoss(cfg.geometry, int(rate), BAND_ROWS[name]).to(device)
        # The high image's rows below the crossover are black: its silence threshold is lower.
        sampler = PatchSampler(images, cfg.patch_frames, cfg.seed + i, min_mean=0.15 if name == "low" else 0.1)
        out.append(_Band(name, model.band(name), sampler, mel, (cfg.low_lam or cfg.lam) if name == "low" else cfg.lam,
                         kbps_from_bpp(1.0, cfg.geometry, BAND_ROWS[name], rate)))
    return out


def build_model(cfg: TrainConfig):
    from mosapp.models.sgc_net import SgcArchitecture, SpectrogramHyperprior, TwoBandHyperprior

    arch = SgcArchitecture(cfg.n, cfg.m)
    return TwoBandHyperprior(arch) if cfg.representation == "two-band" else SpectrogramHyperprior(arch)


def _load_init(model, cfg: TrainConfig, device) -> None:
    """Start from ``cfg.init``: weights of the same representation, or thesis weights for both bands."""
    init = load_weights(cfg.init, map_location=device)["state_dict"]
    if cfg.representation == "two-band" and not any(k.startswith(("low.", "high.")) for k in init):
        model.low.load_state_dict(init)
        model.high.load_state_dict(init)
    else:
        model.load_state_dict(init)


def train(cfg: TrainConfig, *, say: Callable[[str], None] = print, max_steps: int | None = None) -> Path:
    """Run (or resume) training; returns the exported weights path (or the checkpoint when export is empty)."""
    from pytorch_msssim import ms_ssim

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = dsp.resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, heldout = training_files(cfg)
    say(f"train: {len(files)} training files, {len(heldout)} held out; building spectrogram images (cached)")
    model = build_model(cfg).to(device)
    band_list = _make_bands(cfg, model, files, device)
    hours = sum(im.shape[1] for im in band_list[-1].sampler.images) * get_geometry(cfg.geometry).seconds_per_frame() / 3600

    aux_params = {n for n, p in model.named_parameters() if n.endswith(".quantiles")}
    params = [p for n, p in model.named_parameters() if n not in aux_params]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n in aux_params], lr=1e-3)
    step = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        step = int(state["step"])
        for i, band in enumerate(band_list):
            band.sampler.rng = np.random.default_rng([cfg.seed + i, step])
        _trim_log(out / "log.csv", step)
        say(f"train: resumed from {ckpt} at step {step}")
    elif cfg.init:
        _load_init(model, cfg, device)
        say(f"train: finetuning from {cfg.init}")
    columns = LOG_COLUMNS + (LOW_LOG_COLUMNS if len(band_list) == 2 else [])
    log_path = out / "log.csv"
    new_log = not log_path.exists() or step == 0
    log = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(columns)
    t_start = time.perf_counter()
    t_before = _logged_seconds(log_path) if not new_log else 0.0
    stop = cfg.steps if max_steps is None else min(cfg.steps, step + max_steps)
    model.train()
    def lr_at(s: int) -> float:
        """Constant, then a third of it for the last ``1 - lr_drop_at`` of the steps."""
        return cfg.lr if s < cfg.lr_drop_at * cfg.steps else cfg.lr / 3.0

    while step < stop:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        aux_opt.zero_grad(set_to_none=True)
        loss = torch.zeros((), device=device)
        seen = []
        for band in band_list:
            x = band.sampler.batch(cfg.batch).to(device)
            res = band.net(x)
            x_hat = res["x_hat"]
            bpp = bits_per_pixel(res["likelihoods"], x.shape[0] * x.shape[2] * x.shape[3])
            mse = torch.mean((x_hat - x) ** 2)
            mel = band.mel(x_hat, x)
            sc = spectral_convergence_loss(x_hat, x) if cfg.sc_weight else torch.zeros((), device=device)
            loss = loss + bpp + band.lam * (255.0 ** 2 * mse + cfg.mel_weight * mel + cfg.sc_weight * sc)
            seen.append((band, x, x_hat.detach(), bpp.detach(), mel.detach()))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        aux = model.aux_loss()
        aux.backward()
        aux_opt.step()
        step += 1
        loss, aux = loss.detach(), aux.detach()
        if step % cfg.log_every == 0 or step == stop:
            stats = []
            with torch.no_grad():
                for band, x, x_hat, bpp, mel in seen:
                    xc = x_hat.clamp(0, 1)
                    stats.append({"x": x, "xc": xc, "bpp": float(bpp), "mel": float(mel),
                                  "kbps": float(bpp) * band.kbps_per_bpp,
                                  "psnr": float(10 * torch.log10(1.0 / torch.mean((xc - x) ** 2).clamp_min(1e-12))),
                                  "sc": float(spectral_convergence_loss(xc, x))})
                main_band = stats[-1]
                ssim = float(ms_ssim(main_band["xc"], main_band["x"], data_range=1.0, size_average=True))
            kbps = sum(b["kbps"] for b in stats)
            row = [step, round(t_before + time.perf_counter() - t_start, 2), float(loss), main_band["bpp"], kbps,
                   main_band["psnr"], ssim, main_band["mel"], patch_consistency(main_band["xc"][0, 0]),
                   patch_consistency(main_band["x"][0, 0]), float(aux), lr_at(step - 1), main_band["sc"]]
            if len(stats) == 2:
                row += [stats[0]["kbps"], stats[0]["psnr"], stats[0]["sc"]]
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
            log.flush()
            low = (f"  low: {stats[0]['kbps']:.1f} kbps PSNR {stats[0]['psnr']:.2f} dB SC {stats[0]['sc']:.3f}"
                   if len(stats) == 2 else "")
            say(f"step {step}/{cfg.steps}  loss {float(loss):.4f}  bpp {main_band['bpp']:.4f} "
                f"({kbps:.1f} kbps)  PSNR {main_band['psnr']:.2f} dB  MS-SSIM {ssim:.4f}  mel {main_band['mel']:.3f}{low}")
        if step % cfg.checkpoint_every == 0 or step == stop:
            _save_checkpoint(ckpt, model, opt, aux_opt, step)
    log.close()
    plot_log(log_path, out / "training.png", cfg.name)
    if step < cfg.steps or not cfg.export:
        return ckpt
    model.eval()
    path = export(model, cfg, files, hours, step)
    say(f"train: exported {path}")
    return path


def _trim_log(log_path: Path, step: int) -> None:
    """Drop the log rows after ``step`` (logged after the last checkpoint by a run that was
    stopped): the resumed run logs those steps again."""
    if not log_path.exists():
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    if len(keep) != len(rows):
        tmp = log_path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(keep)
        os.replace(tmp, log_path)


def _logged_seconds(log_path: Path) -> float:
    """The last ``seconds`` in a log (training time before a resume), 0 when there is none."""
    try:
        with open(log_path) as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["seconds"]) if rows else 0.0
    except (OSError, KeyError, ValueError):
        return 0.0


def _save_checkpoint(path: Path, model, opt, aux_opt, step: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                "step": step}, tmp)
    os.replace(tmp, path)


WEIGHTS_FORMAT = "mosapp-sgc"


def export(model, cfg: TrainConfig, files: list[str], hours: float, step: int) -> Path:
    """Write ``<export>.pt`` (architecture + weights with entropy tables) and ``<export>.json`` (card)."""
    model = model.cpu()
    model.update(force=True)
    base = Path(cfg.export)
    base.parent.mkdir(parents=True, exist_ok=True)
    weights = base.with_suffix(".pt")
    tmp = weights.with_suffix(".tmp")
    two_band = cfg.representation == "two-band"
    arch = {**model.arch.as_dict(), **({"representation": "two-band"} if two_band else {})}
    torch.save({"format": WEIGHTS_FORMAT, "version": 2 if two_band else 1, "name": cfg.name, "geometry": cfg.geometry,
                "arch": arch, "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, weights)
    if two_band:
        from mosapp.codecs.twoband import BANDS_TAG
        from mosapp.core import bands

        kind = "two mbt2018-mean (mean-scale hyperprior) networks, grayscale, one per band image"
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
                    "+ sc_weight * spectral convergence of the linear magnitude)",
            "lambda": cfg.lam,
            **({"low_lambda": cfg.low_lam or cfg.lam} if two_band else {}),
            "mel_weight": cfg.mel_weight,
            "sc_weight": cfg.sc_weight,
            "adversarial": False,
            "init": cfg.init or None,
            "log": "training log.csv and training.png next to this card",
        },
        "heldout": {"files": [os.path.basename(f) for f in expand(cfg.heldout)]},
        "measured": None,
    }
    card_path = base.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    run = Path(cfg.out_dir)
    for name in ("log.csv", "training.png"):
        if (run / name).exists():
            (base.parent / f"{base.name}.{name}").write_bytes((run / name).read_bytes())
    for op in cfg.operating_points:
        write_operating_point(card, base, *parse_operating_point(op, cfg.source))
    return weights


def write_operating_point(card: dict[str, Any], base: Path, name: str, kbps: float, share: float) -> Path:
    """The card of one operating point of exported two-band weights (same folder, same weights file).

    An existing card's ``measured`` section is kept when its weights are the same file."""
    path = base.parent / f"{name}.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    op = {**card, "name": name,
          "rate_control": {"target_kbps": kbps, "low_share": share,
                           "note": "one latent step per band for the whole clip: low_share of the bits to the low "
                                   "band (finest step that fits), the rest to the high band"},
          "measured": previous.get("measured") if previous.get("weights") == card["weights"] else None}
    path.write_text(json.dumps(op, indent=2) + "\n")
    return path


def load_weights(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read an sgc weights file (or a training checkpoint); ModelError naming the file when it is not one."""
    from mosapp.core.errors import ModelError

    p = Path(path)
    try:
        state = torch.load(p, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise ModelError(f"The weights file {p} does not exist.") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise ModelError(f"The weights file {p} cannot be read ({type(exc).__name__}: {exc}).") from None
    if isinstance(state, dict) and "model" in state and "step" in state:
        return {"state_dict": state["model"], "arch": None}
    if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{p} is not mosapp sgc weights (no \"{WEIGHTS_FORMAT}\" format tag).")
    return state


def plot_log(log_path: Path, png: Path, title: str) -> None:
    """kbps, PSNR, MS-SSIM and consistency against step (the seed's Figures 4.4/4.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    step = [int(r["step"]) for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), sharex=True)
    for ax, (key, label) in zip(axes.flat, [("kbps", "rate (kbps)"), ("psnr_db", "image PSNR (dB)"),
                                            ("ms_ssim", "MS-SSIM"), ("consistency", "consistency")]):
        two_band = "kbps_low" in rows[0]
        ax.plot(step, [float(r[key]) for r in rows], lw=1,
                label={"kbps": "total", "psnr_db": "high image"}.get(key, "decoded") if two_band else "decoded")
        low_key = {"kbps": "kbps_low", "psnr_db": "psnr_low_db"}.get(key)
        if two_band and low_key:
            ax.plot(step, [float(r[low_key]) for r in rows], lw=1, label="low image")
            ax.legend()
        if key == "consistency":
            ax.plot(step, [float(r["consistency_original"]) for r in rows], lw=1, alpha=0.6, label="original")
            ax.legend()
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.suptitle(f"{title}: training")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
