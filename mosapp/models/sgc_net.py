"""The compact spectrogram codec's network: a mean-scale hyperprior autoencoder for grayscale images.

The architecture is compressai's ``mbt2018-mean`` (Minnen, Ballé & Toderici 2018, the
hyperprior that ILLM and HiFiC build on) with one input/output channel and fewer
channels, sized for log-magnitude spectrograms rather than photographs::

    x (1×256×W) ─g_a─► y (M×16×W/16) ─Q─► ŷ ─g_s─► x̂
                        └─h_a─► z ─Q─► ẑ (entropy bottleneck) ─h_s─► (scales, means) of ŷ

``g_a``/``g_s``: four 5×5 stride-2 convolutions with GDN; ``h_a``/``h_s``: two more
stride-2 levels. Entropy coding is compressai's range (ANS) coder with its
``EntropyBottleneck`` (factorised prior on z) and ``GaussianConditional`` (ŷ given ẑ).

The image is 256 rows: the thesis lattice's 257 bins without the Nyquist bin (22.05
kHz at 44.1 kHz, which the decoder restores as silence). Time is padded (edge-replicate)
to a multiple of the network's total downsampling in time (``time_multiple``: 64 frames, 256
with a hyperprior time stride of 4) and cropped after decoding.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mosapp.models._torchvision import ensure_importable

ensure_importable()

from compressai.layers import GDN  # noqa: E402 — must follow ensure_importable()
from compressai.models import MeanScaleHyperprior  # noqa: E402 — must follow ensure_importable()
from compressai.models.utils import conv, deconv  # noqa: E402 — must follow ensure_importable()

#: Total downsampling of g_a then h_a: 2^4 * 2^2.
MULTIPLE = 64
#: Image rows the network sees (bins 0..255).
ROWS = 256


#: The hyperprior's stride in time per level, as in mbt2018-mean.
HYPER_TIME_STRIDE = 2


@dataclass(frozen=True)
class SgcArchitecture:
    """Channel widths: ``n`` in the transforms and hyperprior, ``m`` latent channels;
    ``hyper_time_stride``: the time stride of each of the hyperprior's two levels (2 as in
    mbt2018-mean; 4 makes z four times sparser in time per level)."""

    n: int = 48
    m: int = 64
    hyper_time_stride: int = HYPER_TIME_STRIDE

    def as_dict(self) -> dict[str, int]:
        """The fields, without ``hyper_time_stride`` where it is the default (weights files
        written before it existed describe their network exactly so)."""
        d = asdict(self)
        if self.hyper_time_stride == HYPER_TIME_STRIDE:
            del d["hyper_time_stride"]
        return d


def _conv_t(cin: int, cout: int, t: int) -> torch.nn.Module:
    """compressai's 5×5 ``conv`` with stride 2 in frequency and ``t`` in time (same weight shape)."""
    return torch.nn.Conv2d(cin, cout, 5, stride=(2, t), padding=2)


def _deconv_t(cin: int, cout: int, t: int) -> torch.nn.Module:
    """The transposed :func:`_conv_t` (exactly ×2 in frequency, ×t in time)."""
    return torch.nn.ConvTranspose2d(cin, cout, 5, stride=(2, t), padding=2, output_padding=(1, t - 1))


class SpectrogramHyperprior(MeanScaleHyperprior):
    """``mbt2018-mean`` with a one-channel (grayscale) input and output."""

    def __init__(self, arch: SgcArchitecture = SgcArchitecture()) -> None:
        super().__init__(N=arch.n, M=arch.m)
        self.arch = arch
        n, m, t = arch.n, arch.m, arch.hyper_time_stride
        self.g_a = torch.nn.Sequential(
            conv(1, n), GDN(n), conv(n, n), GDN(n), conv(n, n), GDN(n), conv(n, m),
        )
        self.g_s = torch.nn.Sequential(
            deconv(m, n), GDN(n, inverse=True), deconv(n, n), GDN(n, inverse=True),
            deconv(n, n), GDN(n, inverse=True), deconv(n, 1),
        )
        if t != HYPER_TIME_STRIDE:
            self.h_a[2] = _conv_t(n, n, t)
            self.h_a[4] = _conv_t(n, n, t)
            self.h_s[0] = _deconv_t(n, m, t)
            self.h_s[2] = _deconv_t(m, m * 3 // 2, t)
        #: Frames a tile is padded to a multiple of: 2^4 (g_a) × t^2 (h_a).
        self.time_multiple = 16 * t * t

    def architecture(self) -> dict[str, Any]:
        """What a weights file's ``arch`` records (:func:`build_network` rebuilds it)."""
        return self.arch.as_dict()


def pad_image(image: torch.Tensor, rows: int = ROWS, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int]:
    """(bins, frames) image → (1, 1, rows, frames padded to a multiple of ``multiple``), and the frame count.

    ``rows`` (a multiple of 64) is 256 for the thesis image, 128 for the two-band low image;
    ``multiple`` is the network's ``time_multiple`` (64, or 256 with a hyperprior time stride of 4)."""
    frames = image.shape[-1]
    x = image[:rows].reshape(1, rows, frames)
    pad = (-frames) % multiple
    if pad:
        x = F.pad(x, (0, pad), mode="replicate")
    return x.unsqueeze(0), frames


def unpad_image(x_hat: torch.Tensor, bins: int, frames: int) -> torch.Tensor:
    """Network output (1, 1, rows, W) → (bins, frames) with the row(s) above ``rows`` (the Nyquist bin) set to 0 (silence)."""
    out = torch.zeros(bins, frames, dtype=torch.float32, device=x_hat.device)
    rows = min(bins, x_hat.shape[2])
    out[:rows] = x_hat[0, 0, :rows, :frames].clamp(0.0, 1.0)
    return out


@dataclass
class AnalysedTile:
    """What encoding keeps of a tile between rate planning and coding (all on the CPU)."""

    y: torch.Tensor
    z_string: bytes
    z_shape: tuple[int, int]
    scales: torch.Tensor
    means: torch.Tensor


def analyse_tile(model: SpectrogramHyperprior, image: torch.Tensor, rows: int = ROWS) -> AnalysedTile:
    """g_a on the image's device; hyperprior (h_a, z coding, h_s) on the CPU.

    The hyper-decoder that derives the entropy parameters runs on the CPU on both sides,
    so a stream written on CUDA decodes on a CPU-only machine with the same indexes.
    """
    x, _ = pad_image(image, rows, model.time_multiple)
    y = model.g_a(x).cpu()
    z = _cpu(model.h_a)(y)
    z_strings = model.entropy_bottleneck.compress(z)
    z_hat = model.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
    scales, means = _cpu(model.h_s)(z_hat).chunk(2, 1)
    return AnalysedTile(y, z_strings[0], (int(z.shape[-2]), int(z.shape[-1])), scales, means)


def estimated_bits(model: SpectrogramHyperprior, tile: AnalysedTile, step: float) -> float:
    """Bits the tile costs with quantisation step ``step``: -log2 of the Gaussian
    likelihoods of the symbols ``round((y - mu) / step)`` under scale ``sigma / step``,
    plus the z string's actual length."""
    gc = model.gaussian_conditional
    symbols = torch.round((tile.y - tile.means) / step)
    lik = gc.likelihood_lower_bound(gc._likelihood(symbols, tile.scales / step))
    return float(-torch.log2(lik).sum()) + 8 * len(tile.z_string)


def code_tile(model: SpectrogramHyperprior, tile: AnalysedTile, step: float = 1.0) -> bytes:
    """One analysed tile → bytes: ``u16`` z-height, ``u16`` z-width, ``u32`` len(y), y string, z string.

    ``step`` is the latent quantisation step (1 = as trained): ``ŷ = step · round((y - μ) / step) + μ``,
    coded with scales ``σ / step``. It is the codec's rate knob.
    """
    gc = model.gaussian_conditional
    indexes = gc.build_indexes(tile.scales / step)
    ys = gc.compress(tile.y / step, indexes, means=tile.means / step)[0]
    zh, zw = tile.z_shape
    return struct.pack("<HHI", zh, zw, len(ys)) + ys + tile.z_string


def compress_tile(model: SpectrogramHyperprior, image: torch.Tensor, step: float = 1.0, rows: int = ROWS) -> bytes:
    """:func:`analyse_tile` then :func:`code_tile`."""
    return code_tile(model, analyse_tile(model, image, rows), step)


def decompress_tile(model: SpectrogramHyperprior, data: bytes, bins: int, frames: int, device: torch.device,
                    step: float = 1.0, rows: int = ROWS) -> torch.Tensor:
    """Inverse of :func:`code_tile`: (bins, frames) float32 in [0, 1] on ``device``.

    Raises:
        ValueError: the bytes do not hold a tile of this shape (the caller words the error).
    """
    if len(data) < 8:
        raise ValueError("tile shorter than its header")
    zh, zw, ylen = struct.unpack_from("<HHI", data, 0)
    width = frames + (-frames) % model.time_multiple
    if zh != rows // MULTIPLE or zw != width // model.time_multiple or 8 + ylen > len(data):
        raise ValueError("tile header does not match the spectrogram's shape")
    ys, zs = data[8: 8 + ylen], data[8 + ylen:]
    z_hat = model.entropy_bottleneck.decompress([zs], (zh, zw))
    scales_hat, means_hat = _cpu(model.h_s)(z_hat).chunk(2, 1)
    gc = model.gaussian_conditional
    indexes = gc.build_indexes(scales_hat / step)
    y_hat = gc.decompress([ys], indexes, means=means_hat / step) * step
    x_hat = model.g_s(y_hat.to(device))
    return unpad_image(x_hat, bins, frames)


def _cpu(module: torch.nn.Module) -> torch.nn.Module:
    """The module itself when already on the CPU, else a CPU copy cached on it."""
    first = next(module.parameters(), None)
    if first is None or first.device.type == "cpu":
        return module
    cached = getattr(module, "_mosapp_cpu_copy", None)
    if cached is None:
        cached = copy.deepcopy(module).cpu()
        object.__setattr__(module, "_mosapp_cpu_copy", cached)
    return cached


#: Image rows each band's network sees in the two-band representation (:mod:`mosapp.core.bands`).
BAND_ROWS = {"low": 128, "high": ROWS}


class TwoBandHyperprior(torch.nn.Module):
    """The two-band codec's network: one :class:`SpectrogramHyperprior` per band image.

    ``low`` codes the 128-row low image (10.8 Hz bins, 11.6 ms hop), ``high`` the 256-row
    high image of the thesis lattice. Both have the same architecture; they are trained
    together (one loss, one optimiser) and stored in one weights file.
    """

    def __init__(self, arch: SgcArchitecture = SgcArchitecture(), high_hyper_time_stride: int = HYPER_TIME_STRIDE
                 ) -> None:
        super().__init__()
        self.arch = arch
        self.low = SpectrogramHyperprior(arch)
        #: The high image has 8 times the low image's frames per second: a hyperprior time stride of 4
        #: keeps its side information (z) from taking half of a low-rate stream.
        self.high = SpectrogramHyperprior(SgcArchitecture(arch.n, arch.m, high_hyper_time_stride))

    def architecture(self) -> dict[str, Any]:
        """What a weights file's ``arch`` records (:func:`build_network` rebuilds it)."""
        stride = self.high.arch.hyper_time_stride
        return {**self.arch.as_dict(), "representation": "two-band",
                **({"high_hyper_time_stride": stride} if stride != HYPER_TIME_STRIDE else {})}

    def band(self, name: str) -> SpectrogramHyperprior:
        return self.low if name == "low" else self.high

    def aux_loss(self) -> torch.Tensor:
        return self.low.aux_loss() + self.high.aux_loss()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Per band, through compressai's loader (which resizes the entropy coders' CDF buffers)."""
        for name in ("low", "high"):
            prefix = f"{name}."
            part = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            self.band(name).load_state_dict(part, strict=strict)
        extra = [k for k in state_dict if not k.startswith(("low.", "high."))]
        if strict and extra:
            raise RuntimeError(f"Error(s) in loading state_dict for TwoBandHyperprior: unexpected keys {extra[:3]}")

    def update(self, scale_table=None, force: bool = False) -> bool:
        a = self.low.update(scale_table, force=force)
        b = self.high.update(scale_table, force=force)
        return a or b


def build_network(arch: Mapping[str, Any]) -> SpectrogramHyperprior | TwoBandHyperprior:
    """The untrained network a weights file's ``arch`` describes: ``{"n", "m"}``, and
    ``"representation": "two-band"`` for :class:`TwoBandHyperprior` (else one
    :class:`SpectrogramHyperprior` on the thesis image), optionally ``"hyper_time_stride"`` and,
    for two-band weights, ``"high_hyper_time_stride"``."""
    widths = dict(arch)
    two_band = widths.pop("representation", "thesis") == "two-band"
    high_stride = int(widths.pop("high_hyper_time_stride", HYPER_TIME_STRIDE))
    architecture = SgcArchitecture(**widths)
    return TwoBandHyperprior(architecture, high_stride) if two_band else SpectrogramHyperprior(architecture)
