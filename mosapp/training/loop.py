"""``mosapp train``: the training loop (:func:`train`), resumable from its checkpoint.

Every step draws a batch of patches per band, runs the network, and minimises the loss
of :mod:`mosapp.training.losses`; the entropy bottleneck's quantiles are trained with
compressai's auxiliary loss by a second optimiser, as compressai does. The learning rate
is constant, then a third of it for the last ``1 - lr_drop_at`` of the steps.

Logged every ``log_every`` steps to ``<out>/log.csv`` (:class:`mosapp.training.log.LogRow`): step,
seconds, loss, bpp, kbps (bpp × 256 rows × frames per second of the lattice), PSNR of the
image (dB), MS-SSIM, mel L1, and the consistency (tifresi's metric) of a decoded patch
next to the original's; ``<out>/training.png`` plots them (:mod:`mosapp.training.plots`).
``<out>/checkpoint.pt`` is written every ``checkpoint_every`` steps and picked up again
when the same command runs anew (:mod:`mosapp.training.checkpoint`). Every ``heldout_every``
steps the network is scored on fixed patches of the held-out music, into ``<out>/heldout.csv``
(:mod:`mosapp.training.validation`). At the end the weights and model card go to ``export``
(:mod:`mosapp.training.card`).
"""

from __future__ import annotations

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
from mosapp.core.streams import Stream, stream_rng
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
from mosapp.training.card import export as export_weights
from mosapp.training.checkpoint import CHECKPOINT_NAME, logged_seconds, resume, save_checkpoint, trim_log
from mosapp.training.config import TrainConfig, training_files
from mosapp.training.data import PatchSampler, track_image
from mosapp.training.log import LOG_COLUMNS, LOW_LOG_COLUMNS, LogRow, LogWriter
from mosapp.training.losses import (
    MelLoss,
    bits_per_pixel,
    kbps_from_bpp,
    patch_consistency,
    smoothed_db_l1,
    spectral_convergence_loss,
    weighted_distortion,
)
from mosapp.training.plots import plot_log
from mosapp.training.validation import HeldoutBand, append_rows, heldout_patches, say_rows, score

Network = SpectrogramHyperprior | TwoBandHyperprior

__all__ = ["LOG_COLUMNS", "LOW_LOG_COLUMNS", "build_model", "train"]


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


@dataclass
class _Run:
    """A training run's parts: the network, its bands, both optimisers, where it writes."""

    cfg: TrainConfig
    device: torch.device
    out: Path
    files: list[str]
    model: Network
    bands: list[_Band]
    #: The bands whose networks this run trains (a thesis network is the one band "image").
    trained: set[str]
    params: list[torch.nn.Parameter]
    opt: torch.optim.Optimizer
    aux_opt: torch.optim.Optimizer
    hours: float
    #: Fixed held-out patches per band (empty: no held-out scores).
    heldout: list[HeldoutBand]

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.out / "log.csv"

    @property
    def heldout_path(self) -> Path:
        return self.out / "heldout.csv"

    def lr_at(self, s: int) -> float:
        """Constant, then a third of it for the last ``1 - lr_drop_at`` of the steps."""
        cfg = self.cfg
        return cfg.lr if s < cfg.lr_drop_at * cfg.steps else cfg.lr / 3.0


def _set_up(cfg: TrainConfig, say: Callable[[str], None]) -> _Run:
    """The network of the config, its bands' patch samplers (images cached) and the two optimisers."""
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
    trained = {b.name for b in band_list if b.name in cfg.bands or b.name == "image"}
    hours = sum(im.shape[1] for im in band_list[-1].sampler.images) * get_geometry(cfg.geometry).seconds_per_frame() / 3600
    aux_params = {n for n, p in model.named_parameters() if n.endswith(".quantiles")}
    params = [p for n, p in model.named_parameters() if n not in aux_params]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n in aux_params], lr=1e-3)
    return _Run(cfg, device, out, files, model, band_list, trained, params, opt, aux_opt, hours,
                _heldout_bands(cfg, band_list, heldout))


def _heldout_bands(cfg: TrainConfig, band_list: list[_Band], heldout: list[str]) -> list[HeldoutBand]:
    """The bands' fixed held-out patches when ``heldout_every`` asks for scores (and there is held-out music)."""
    if cfg.heldout_every <= 0:
        return []
    out = []
    for band in band_list:
        patches = heldout_patches(cfg, heldout, band.name, band.sampler.min_mean)
        if patches is None:
            return []
        out.append(HeldoutBand(band.name, band.net, band.mel, band.kbps_per_bpp, patches))
    return out


def _start(run: _Run, say: Callable[[str], None], *, trim: bool = True) -> int:
    """Resume from the checkpoint, or start from ``init`` weights or the training images' KLT; returns the step.
    ``trim``: drop the logs' rows past the checkpoint's step (a run that goes on rewrites them)."""
    cfg, device = run.cfg, run.device
    if run.checkpoint.exists():
        step = resume(run.checkpoint, run.model, run.opt, run.aux_opt, device)
        for i, band in enumerate(run.bands):
            band.sampler.rng = np.random.default_rng([cfg.seed + i, step])
        if trim:
            trim_log(run.log_path, step)
            trim_log(run.heldout_path, step)
        say(f"train: resumed from {run.checkpoint} at step {step}")
        return step
    if cfg.init:
        fresh_context = _load_init(run.model, cfg, device)
        say(f"train: finetuning from {cfg.init}")
        if fresh_context:
            _fit_contexts(run.bands, device, say)
    elif cfg.transform == "klt":
        for band, coefficient_step in zip(run.bands, cfg.klt_step):
            init_block_transform(band.net, torch.cat([band.sampler.batch(64) for _ in range(4)]).to(device),
                                 coefficient_step)
        say("train: block transforms set to the training images' KLT")
    return 0


@dataclass
class _Seen:
    """What one band's batch of a step gave (kept for the log)."""

    band: _Band
    x: torch.Tensor
    x_hat: torch.Tensor
    bpp: torch.Tensor
    mel: torch.Tensor


def _optimise(run: _Run, step: int, q_of: Callable[[], float], logging_step: bool
              ) -> tuple[torch.Tensor, torch.Tensor, list[_Seen]]:
    """One optimisation step over every band (a band this run leaves alone only where the step is
    logged): returns (loss, auxiliary loss, what each band gave)."""
    cfg, device = run.cfg, run.device
    for group in run.opt.param_groups:
        group["lr"] = run.lr_at(step)
    run.opt.zero_grad(set_to_none=True)
    run.aux_opt.zero_grad(set_to_none=True)
    loss = torch.zeros((), device=device)
    seen = []
    for band in run.bands:
        trained = band.name in run.trained
        if not trained and not logging_step:
            continue  # a band this run leaves alone is only run to log its figures
        x = band.sampler.batch(cfg.batch).to(device)
        q = q_of()  # the latent step of this batch and band
        with torch.set_grad_enabled(trained):
            res = forward_at_step(band.net, x, q, cfg.ste)
            x_hat = res["x_hat"]
            bpp = bits_per_pixel(res["likelihoods"], x.shape[0] * x.shape[2] * x.shape[3])
            mse = torch.mean((x_hat - x) ** 2)
            mel = band.mel(x_hat, x)
            sc = spectral_convergence_loss(x_hat, x) if cfg.sc_weight else torch.zeros((), device=device)
            sdl = smoothed_db_l1(x_hat, x, band.sdl_frames) if cfg.sdl_weight else torch.zeros((), device=device)
        if trained:
            loss = loss + bpp + weighted_distortion(band.lam, q, mse, mel, sc, sdl,
                                                    cfg.mel_weight, cfg.sc_weight, cfg.sdl_weight)
        seen.append(_Seen(band, x, x_hat.detach(), bpp.detach(), mel.detach()))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.params, 1.0)
    run.opt.step()
    aux = sum((band.net.aux_loss() for band in run.bands if band.name in run.trained), torch.zeros((), device=device))
    aux.backward()
    run.aux_opt.step()
    return loss.detach(), aux.detach(), seen


@dataclass
class _BandFigures:
    """One band's logged figures of a step."""

    x: torch.Tensor
    xc: torch.Tensor
    bpp: float
    mel: float
    kbps: float
    psnr: float
    sc: float


def _log_row(run: _Run, step: int, seconds: float, loss: torch.Tensor, aux: torch.Tensor,
             seen: list[_Seen]) -> LogRow:
    """The log's row of ``step``: the (high or thesis) image's figures, and the low band's where there is one."""
    figures: list[_BandFigures] = []
    with torch.no_grad():
        for s in seen:
            xc = s.x_hat.clamp(0, 1)
            figures.append(_BandFigures(
                s.x, xc, float(s.bpp), float(s.mel), float(s.bpp) * s.band.kbps_per_bpp,
                float(10 * torch.log10(1.0 / torch.mean((xc - s.x) ** 2).clamp_min(1e-12))),
                float(spectral_convergence_loss(xc, s.x))))
        main = figures[-1]
        ssim = float(ms_ssim(main.xc, main.x, data_range=1.0, size_average=True))
    low = figures[0] if len(figures) == 2 else None
    return LogRow(step=step, seconds=seconds, loss=float(loss), bpp=main.bpp, kbps=sum(f.kbps for f in figures),
                  psnr_db=main.psnr, ms_ssim=ssim, mel_l1=main.mel, consistency=patch_consistency(main.xc[0, 0]),
                  consistency_original=patch_consistency(main.x[0, 0]), aux_loss=float(aux), lr=run.lr_at(step - 1),
                  sc_linear=main.sc, kbps_low=low.kbps if low else None, psnr_low_db=low.psnr if low else None,
                  sc_low=low.sc if low else None)


def _say_row(row: LogRow, steps: int) -> str:
    low = (f"  low: {row.kbps_low:.1f} kbps PSNR {row.psnr_low_db:.2f} dB SC {row.sc_low:.3f}"
           if row.two_band else "")
    return (f"step {row.step}/{steps}  loss {row.loss:.4f}  bpp {row.bpp:.4f} ({row.kbps:.1f} kbps)  "
            f"PSNR {row.psnr_db:.2f} dB  MS-SSIM {row.ms_ssim:.4f}  mel {row.mel_l1:.3f}{low}")


def train(cfg: TrainConfig, *, say: Callable[[str], None] = print, max_steps: int | None = None,
          export: bool = False) -> Path:
    """Run (or resume) training, ``max_steps`` more steps at most; returns the exported weights
    path (or the checkpoint when there is nothing to export). The weights and cards are exported
    when the run reaches its ``steps``, or whenever ``export`` asks (interim weights).

    ``max_steps=0`` trains nothing and leaves the run's folder as it is (log, held-out scores,
    plot): exporting the checkpoint while another process trains on must not cut that process's
    log back to the checkpoint's step."""
    run = _set_up(cfg, say)
    step = _start(run, say, trim=max_steps != 0)
    if max_steps == 0:
        if not (export and cfg.export):
            return run.checkpoint
        return _export(run, step, say)
    step_rng = stream_rng(cfg.seed, Stream.TRAIN_STEPS, step)
    log_steps = np.log(np.asarray(cfg.step_range, dtype=np.float64))

    def latent_step() -> float:
        return float(np.exp(step_rng.uniform(log_steps[0], log_steps[1])))

    new_log = not run.log_path.exists() or step == 0
    log = LogWriter(run.log_path, new=new_log, two_band=len(run.bands) == 2)
    t_start = time.perf_counter()
    t_before = logged_seconds(run.log_path) if not new_log else 0.0
    stop = cfg.steps if max_steps is None else min(cfg.steps, step + max_steps)
    run.model.train()
    while step < stop:
        logging_step = (step + 1) % cfg.log_every == 0 or step + 1 == stop
        loss, aux, seen = _optimise(run, step, latent_step, logging_step)
        step += 1
        if step % cfg.log_every == 0 or step == stop:
            row = _log_row(run, step, round(t_before + time.perf_counter() - t_start, 2), loss, aux, seen)
            log.write(row)
            say(_say_row(row, cfg.steps))
        if run.heldout and (step % cfg.heldout_every == 0 or step == stop):
            rows = score(run.heldout, step, run.device)
            append_rows(run.heldout_path, rows)
            say(say_rows(rows, run.heldout[0].patches.shape[0]))
        if step % cfg.checkpoint_every == 0 or step == stop:
            save_checkpoint(run.checkpoint, run.model, run.opt, run.aux_opt, step)
    log.close()
    plot_log(run.log_path, run.out / "training.png", cfg.name)
    if (step < cfg.steps and not export) or not cfg.export:
        return run.checkpoint
    return _export(run, step, say)


def _export(run: _Run, step: int, say: Callable[[str], None]) -> Path:
    run.model.eval()
    path = export_weights(run.model, run.cfg, run.files, run.hours, step)
    say(f"train: exported {path}")
    return path
