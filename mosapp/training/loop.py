"""``mosapp train``: the training loop (:func:`train`), resumable from its checkpoint.

Every step draws a batch of patches per band, runs the network, and minimises the loss
of :mod:`mosapp.training.losses`; the entropy bottleneck's quantiles are trained with
compressai's auxiliary loss by a second optimiser, as compressai does. The learning rate
is constant, then a third of it for the last ``1 - lr_drop_at`` of the steps.

Logged every ``log_every`` steps to ``<out>/log.csv`` (:data:`LOG_COLUMNS`): step,
seconds, loss, bpp, kbps (bpp × 256 rows × frames per second of the lattice), PSNR of the
image (dB), MS-SSIM, mel L1, and the consistency (tifresi's metric) of a decoded patch
next to the original's; ``<out>/training.png`` plots them (:mod:`mosapp.training.plots`).
``<out>/checkpoint.pt`` is written every ``checkpoint_every`` steps and picked up again
when the same command runs anew (:mod:`mosapp.training.checkpoint`). At the end the
weights and model card go to ``export`` (:mod:`mosapp.training.card`).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_msssim import ms_ssim

from mosapp.core import bands, dsp
from mosapp.core.config import PIPELINE_SAMPLE_RATE, get_geometry
from mosapp.core.errors import ConfigError
from mosapp.models.sgc_net import (
    BAND_ROWS,
    SpectrogramHyperprior,
    TwoBandHyperprior,
    build_network,
    fit_temporal_context,
    forward_at_step,
    init_block_transform,
)
from mosapp.models.weights import load_weights
from mosapp.training.card import export
from mosapp.training.checkpoint import CHECKPOINT_NAME, logged_seconds, resume, save_checkpoint, trim_log
from mosapp.training.config import TrainConfig, training_files
from mosapp.training.data import PatchSampler, track_image
from mosapp.training.losses import (
    MelLoss,
    bits_per_pixel,
    kbps_from_bpp,
    patch_consistency,
    smoothed_db_l1,
    spectral_convergence_loss,
)
from mosapp.training.plots import plot_log

LOG_COLUMNS = ["step", "seconds", "loss", "bpp", "kbps", "psnr_db", "ms_ssim", "mel_l1", "consistency",
               "consistency_original", "aux_loss", "lr", "sc_linear"]
#: Added for the two-band representation: the low band's rate and quality (the rest is the high band's).
LOW_LOG_COLUMNS = ["kbps_low", "psnr_low_db", "sc_low"]

Network = SpectrogramHyperprior | TwoBandHyperprior


@dataclass
class _Band:
    """What the training loop needs for one image: its network, patches, mel loss, lambda, rate scale."""

    name: str
    net: SpectrogramHyperprior
    sampler: PatchSampler
    mel: MelLoss
    lam: float
    kbps_per_bpp: float
    sdl_frames: int = 1


def _make_bands(cfg: TrainConfig, model: Network, files: list[str], device: torch.device) -> list[_Band]:
    if isinstance(model, SpectrogramHyperprior):
        images = [track_image(f, cfg.geometry, cfg.cache) for f in files]
        return [_Band("image", model, PatchSampler(images, cfg.patch_frames, cfg.seed), MelLoss(cfg.geometry).to(device),
                      cfg.lam, kbps_from_bpp(1.0, cfg.geometry), cfg.sdl_frames)]
    out = []
    for i, name in enumerate(("low", "high")):
        images = [track_image(f, cfg.geometry, cfg.cache, band=name) for f in files]
        rate = bands.LOW_SAMPLE_RATE if name == "low" else PIPELINE_SAMPLE_RATE
        mel = MelLoss(cfg.geometry, int(rate), BAND_ROWS[name]).to(device)
        # The high image's rows below the crossover are black: its silence threshold is lower.
        sampler = PatchSampler(images, cfg.patch_frames, cfg.seed + i, min_mean=0.15 if name == "low" else 0.1)
        out.append(_Band(name, model.band(name), sampler, mel, (cfg.low_lam or cfg.lam) if name == "low" else cfg.lam,
                         kbps_from_bpp(1.0, cfg.geometry, BAND_ROWS[name], rate),
                         cfg.low_sdl_frames if name == "low" else cfg.sdl_frames))
    return out


def build_model(cfg: TrainConfig) -> Network:
    """The untrained network of the config's ``[model]`` (n, m, representation)."""
    arch: dict[str, Any] = {"n": cfg.n, "m": cfg.m, "representation": cfg.representation}
    if cfg.transform != "gdn":
        arch["transform"] = cfg.transform
    if cfg.block_frames[0] != 16:
        arch["block_frames"] = cfg.block_frames[0]
    if cfg.representation == "two-band" and cfg.block_frames[1] != 16:
        arch["high_block_frames"] = cfg.block_frames[1]
    if cfg.high_m and cfg.high_m != cfg.m:
        arch["high_m"] = cfg.high_m
    if cfg.representation == "two-band":
        arch["high_hyper_time_stride"] = cfg.high_hyper_time_stride
    if cfg.context != "none":
        arch["context"] = cfg.context
    return build_network(arch)


def _load_init(model: Network, cfg: TrainConfig, device: torch.device) -> bool:
    """Start from ``cfg.init``: weights of the same representation, or thesis weights for both bands.
    Init weights without a temporal context start a network with one (which the caller then fits):
    returns whether they had none."""
    init = load_weights(cfg.init, map_location=device)["state_dict"]
    fresh_context = cfg.context != "none" and not any(".context." in k or k.startswith("context.") for k in init)
    if isinstance(model, TwoBandHyperprior) and not any(k.startswith(("low.", "high.")) for k in init):
        for band in (model.low, model.high):
            band.load_state_dict({**_context_state(band, fresh_context), **init})
    else:
        model.load_state_dict({**_context_state(model, fresh_context), **init})
    return fresh_context


def _context_state(model: Network, fresh: bool) -> dict[str, torch.Tensor]:
    """The model's own (not yet fitted) temporal-context parameters where the init weights have none,
    so that everything else still loads strictly."""
    return {k: v for k, v in model.state_dict().items() if fresh and (".context." in k or k.startswith("context."))}


#: Frames per training image the temporal context is fitted on: a minute of each band's image.
CONTEXT_FIT_FRAMES = {"low": 5168, "high": 41344, "image": 41344}


def _fit_contexts(band_list: list[_Band], device: torch.device, say: Callable[[str], None]) -> None:
    """Each band network's temporal context fitted (:func:`fit_temporal_context`) on a minute of up to 16
    of its training images."""
    for band in band_list:
        band.net.update(force=True)
        tracks = band.sampler.images[::max(1, len(band.sampler.images) // 16)][:16]
        images = [torch.tensor(np.asarray(im[:, :CONTEXT_FIT_FRAMES[band.name]]), dtype=torch.float32, device=device)
                  for im in tracks]
        with torch.no_grad():
            fit_temporal_context(band.net, images)
        say(f"train: the {band.name} network's temporal context fitted on {len(images)} training images")


def train(cfg: TrainConfig, *, say: Callable[[str], None] = print, max_steps: int | None = None) -> Path:
    """Run (or resume) training; returns the exported weights path (or the checkpoint when export is empty)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = dsp.resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, heldout = training_files(cfg)
    say(f"train: {len(files)} training files, {len(heldout)} held out; building spectrogram images (cached)")
    model = build_model(cfg).to(device)
    for net in ([model.low, model.high] if isinstance(model, TwoBandHyperprior) else [model]):
        if cfg.patch_frames % net.time_multiple:
            raise ConfigError(f"{cfg.source or 'config'}: train.patch_frames ({cfg.patch_frames}) must be a multiple of "
                              f"{net.time_multiple}, the frames this network's transforms and hyperprior downsample by.")
    band_list = _make_bands(cfg, model, files, device)
    #: The bands whose networks this run trains (a thesis network is the one band "image").
    trained_bands = {b.name for b in band_list if b.name in cfg.bands or b.name == "image"}
    hours = sum(im.shape[1] for im in band_list[-1].sampler.images) * get_geometry(cfg.geometry).seconds_per_frame() / 3600

    aux_params = {n for n, p in model.named_parameters() if n.endswith(".quantiles")}
    params = [p for n, p in model.named_parameters() if n not in aux_params]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n in aux_params], lr=1e-3)
    step = 0
    ckpt = out / CHECKPOINT_NAME
    if ckpt.exists():
        step = resume(ckpt, model, opt, aux_opt, device)
        for i, band in enumerate(band_list):
            band.sampler.rng = np.random.default_rng([cfg.seed + i, step])
        trim_log(out / "log.csv", step)
        say(f"train: resumed from {ckpt} at step {step}")
    elif cfg.init:
        fresh_context = _load_init(model, cfg, device)
        say(f"train: finetuning from {cfg.init}")
        if fresh_context:
            _fit_contexts(band_list, device, say)
    elif cfg.transform == "klt":
        for band, coefficient_step in zip(band_list, cfg.klt_step):
            init_block_transform(band.net, torch.cat([band.sampler.batch(64) for _ in range(4)]).to(device),
                                 coefficient_step)
        say("train: block transforms set to the training images' KLT")
    step_rng = np.random.default_rng([cfg.seed, 7, step])
    log_steps = np.log(np.asarray(cfg.step_range, dtype=np.float64))
    columns = LOG_COLUMNS + (LOW_LOG_COLUMNS if len(band_list) == 2 else [])
    log_path = out / "log.csv"
    new_log = not log_path.exists() or step == 0
    log = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(columns)
    t_start = time.perf_counter()
    t_before = logged_seconds(log_path) if not new_log else 0.0
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
        logging_step = (step + 1) % cfg.log_every == 0 or step + 1 == stop
        for band in band_list:
            trained = band.name in trained_bands
            if not trained and not logging_step:
                continue  # a band this run leaves alone is only run to log its figures
            x = band.sampler.batch(cfg.batch).to(device)
            q = float(np.exp(step_rng.uniform(log_steps[0], log_steps[1])))  # the latent step of this batch and band
            with torch.set_grad_enabled(trained):
                res = forward_at_step(band.net, x, q, cfg.ste)
                x_hat = res["x_hat"]
                bpp = bits_per_pixel(res["likelihoods"], x.shape[0] * x.shape[2] * x.shape[3])
                mse = torch.mean((x_hat - x) ** 2)
                mel = band.mel(x_hat, x)
                sc = spectral_convergence_loss(x_hat, x) if cfg.sc_weight else torch.zeros((), device=device)
                sdl = smoothed_db_l1(x_hat, x, band.sdl_frames) if cfg.sdl_weight else torch.zeros((), device=device)
            if trained:
                loss = loss + bpp + band.lam / q ** 2 * (255.0 ** 2 * mse + cfg.mel_weight * mel + cfg.sc_weight * sc
                                                + cfg.sdl_weight * sdl)
            seen.append((band, x, x_hat.detach(), bpp.detach(), mel.detach()))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        aux = sum((band.net.aux_loss() for band in band_list if band.name in trained_bands), torch.zeros((), device=device))
        aux.backward()
        aux_opt.step()
        step += 1
        loss, aux = loss.detach(), aux.detach()
        if step % cfg.log_every == 0 or step == stop:
            stats: list[dict[str, Any]] = []
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
            save_checkpoint(ckpt, model, opt, aux_opt, step)
    log.close()
    plot_log(log_path, out / "training.png", cfg.name)
    if step < cfg.steps or not cfg.export:
        return ckpt
    model.eval()
    path = export(model, cfg, files, hours, step)
    say(f"train: exported {path}")
    return path
