"""The training loss and the quantities logged with it.

Per batch of image patches ``x`` in [0, 1] and decoded ``x̂`` at latent step ``q``::

    R   = bits of ŷ and ẑ under the model's entropy models / pixels        (bpp)
    D   = 255² · mean((x̂ - x)²)                                            (image MSE)
    Mel = mean | log10(mel(|x̂|)) - log10(mel(|x|)) |                      (audio side)
    SC  = mean over patches of ‖|x̂| - |x|‖_F / ‖|x|‖_F                      (loud bins)
    SDL = mean | dB(avg_t |x̂|²) - dB(avg_t |x|²) |, both floored at -80 dB   (what the band metrics see)
    loss = R + λ/q² · (D + w_mel·Mel + w_sc·SC + w_sdl·SDL)

(:data:`LOSS_FORMULA`, computed by :func:`weighted_distortion`; the latent step ``q`` is 1, or
drawn per batch and band from ``train.step_range``, so one network learns a range of rates.)

SDL is the band metrics' log-spectral distance (:func:`mosapp.core.metrics.band_spectral_distance_db`:
a 93 ms analysis window, a floor 80 dB under the peak) on the image's own lattice: the power
averaged over ``sdl_frames`` frames (stride a quarter of that), in dB, both floored at -80 dB
(the images are scaled to the track's peak). Noise texture and detail finer than the metrics'
window cost bits under the pixel MSE but not under SDL, so a network trained with it spends
its bits on the stationary (harmonic) structure the metrics, and the ear, follow.

``|x|`` is the magnitude the image stands for (``10^(5 (x - 1))``, the 100 dB mapping
relative to the patch's peak), ``mel`` the Slaney mel filterbank of the lattice (64
bands, the DAC/librosa filters), applied to the magnitude — the mel spectrogram of the
audio this spectrogram is the STFT of.
"""

from __future__ import annotations

import math

import torch

from mosapp.core import metrics
from mosapp.core.config import PIPELINE_SAMPLE_RATE, get_geometry

MEL_BANDS = 64

#: The training loss, the one home of its formula: this module's docstring, :mod:`mosapp.training`'s
#: and the model card's ``loss`` (:func:`card_loss_text`) are written from it or tested against it.
LOSS_FORMULA = "loss = R + λ/q² · (D + w_mel·Mel + w_sc·SC + w_sdl·SDL)"
#: The distortion terms in the card's words: (config weight, what the term is).
_CARD_TERMS = (("", "255^2 * MSE(image)"), ("mel_weight", "L1(log10 mel)"),
               ("sc_weight", "spectral convergence of the linear magnitude"),
               ("sdl_weight", "L1 of the dB power averaged over sdl_frames frames, floored at -80 dB"))


def card_loss_text() -> str:
    """:data:`LOSS_FORMULA` in the words of a model card (ASCII, the config's names)."""
    terms = " + ".join(f"{weight} * {term}" if weight else term for weight, term in _CARD_TERMS)
    return f"bpp + lambda / step^2 * ({terms})"


def weighted_distortion(lam: float, q: float, mse: torch.Tensor, mel: torch.Tensor, sc: torch.Tensor,
                        sdl: torch.Tensor, mel_weight: float, sc_weight: float, sdl_weight: float) -> torch.Tensor:
    """The distortion part of :data:`LOSS_FORMULA`: ``λ/q² · (255² · mse + w_mel·mel + w_sc·sc + w_sdl·sdl)``
    (``mse`` of the [0, 1] image, so ``D = 255² · mse``); the loss adds the rate R (bpp) to it."""
    return lam / q ** 2 * (255.0 ** 2 * mse + mel_weight * mel + sc_weight * sc + sdl_weight * sdl)


class MelLoss(torch.nn.Module):
    """Mean |log10 mel(|x̂|) - log10 mel(|x|)| with the lattice's 64-band Slaney filterbank."""

    fb: torch.Tensor

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


#: The floor of :func:`smoothed_db_l1`, dB under the track's peak (the band metrics' floor).
SDL_FLOOR_DB = 80.0


def smoothed_db(image: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, 1, rows, T) images → the power they stand for averaged over ``frames`` frames
    (stride ``frames // 4``), in dB relative to the peak, floored at -:data:`SDL_FLOOR_DB`."""
    power = torch.pow(10.0, 10.0 * (image.clamp(0.0, 1.0) - 1.0))
    if frames > 1:
        power = torch.nn.functional.avg_pool2d(power, (1, frames), stride=(1, max(1, frames // 4)))
    return (10.0 * torch.log10(power.clamp_min(1e-12))).clamp_min(-SDL_FLOOR_DB)


def smoothed_db_l1(x_hat: torch.Tensor, x: torch.Tensor, frames: int) -> torch.Tensor:
    """SDL: mean |:func:`smoothed_db` (x̂) - :func:`smoothed_db` (x)| in dB."""
    return (smoothed_db(x_hat, frames) - smoothed_db(x, frames)).abs().mean()


def bits_per_pixel(likelihoods: dict[str, torch.Tensor], pixels: int) -> torch.Tensor:
    """-log2 of every likelihood (ŷ and ẑ), summed, per pixel."""
    nats = [torch.log(lk).sum() for lk in likelihoods.values()]
    total = nats[0]
    for term in nats[1:]:
        total = total + term
    return total / (-math.log(2) * pixels)


def kbps_from_bpp(bpp: float, geometry_name: str, rows: int = 256, sample_rate: float = PIPELINE_SAMPLE_RATE) -> float:
    """Bitrate of a ``rows``-row image at the lattice's frame rate (at ``sample_rate``)."""
    g = get_geometry(geometry_name)
    return bpp * rows * sample_rate / g.hop / 1000.0


def patch_consistency(image: torch.Tensor) -> float:
    """tifresi's consistency of the magnitude a (bins, frames) patch stands for."""
    mag = MelLoss.magnitude(image.detach().float()).cpu().numpy()
    return metrics.consistency(metrics.log_spectrogram_for_consistency(mag))
