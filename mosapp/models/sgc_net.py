"""The compact spectrogram codec's network: a mean-scale hyperprior autoencoder for grayscale images.

The architecture is compressai's ``mbt2018-mean`` (Minnen, Ballé & Toderici 2018, the
hyperprior that ILLM and HiFiC build on) with one input/output channel and fewer
channels, sized for log-magnitude spectrograms rather than photographs::

    x (1×256×W) ─g_a─► y (M×16×W/16) ─Q─► ŷ ─g_s─► x̂
                        └─h_a─► z ─Q─► ẑ (entropy bottleneck) ─h_s─► (scales, means) of ŷ

``g_a``/``g_s``: four 5×5 stride-2 convolutions with GDN, or (``transform = "klt"``, the
shipped codec since the fourth round) a learned block transform, 16 rows by ``block_frames``
frames, with a residual post-filter (:class:`BlockSynthesis`); ``h_a``/``h_s``: two more
stride-2 levels. Entropy coding is compressai's range (ANS) coder with its
``EntropyBottleneck`` (factorised prior on z) and ``GaussianConditional`` (ŷ given ẑ).

The image is 256 rows: the thesis lattice's 257 bins without the Nyquist bin (22.05
kHz at 44.1 kHz, which the decoder restores as silence). Time is padded (edge-replicate)
to a multiple of the network's total downsampling in time (``time_multiple``: 64 frames, 256
with a hyperprior time stride of 4) and cropped after decoding.
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from mosapp.models._torchvision import ensure_importable

ensure_importable()

from compressai.layers import GDN  # noqa: E402 — must follow ensure_importable()
from compressai.models import MeanScaleHyperprior  # noqa: E402 — must follow ensure_importable()
from compressai.models.utils import conv, deconv  # noqa: E402 — must follow ensure_importable()
from compressai.ops import quantize_ste  # noqa: E402 — must follow ensure_importable()

#: Total downsampling of g_a then h_a: 2^4 * 2^2.
MULTIPLE = 64
#: Image rows the network sees (bins 0..255).
ROWS = 256


#: The hyperprior's stride in time per level, as in mbt2018-mean.
HYPER_TIME_STRIDE = 2


#: The analysis/synthesis transforms: mbt2018-mean's GDN stacks, or a learned block transform
#: that starts as the images' Karhunen-Loève transform (see :class:`BlockSynthesis`).
TRANSFORMS = ("gdn", "klt")
#: The post-filter's output gain: Adam moves every weight by about the learning rate at first, and
#: at gain 1 that moved the zero-initialised filter's output by a quarter of the image's range
#: within ten steps; 0.1 keeps the start a working codec.
POST_GAIN = 0.1
#: Side of the block transform's blocks (pixels; the same 16x downsampling as the GDN stack's four levels).
BLOCK = 16
#: Block lengths in frames a block transform may have.
BLOCK_FRAMES = (16, 32, 64)
#: The latent's entropy models: the hyperprior's means and scales alone, or with a temporal context.
CONTEXTS = ("none", "temporal")


@dataclass(frozen=True)
class SgcArchitecture:
    """Channel widths: ``n`` in the transforms and hyperprior, ``m`` latent channels;
    ``hyper_time_stride``: the time stride of each of the hyperprior's two levels (2 as in
    mbt2018-mean; 4 makes z four times sparser in time per level); ``transform``: one of
    :data:`TRANSFORMS`."""

    n: int = 48
    m: int = 64
    hyper_time_stride: int = HYPER_TIME_STRIDE
    transform: str = "gdn"
    #: A block transform's block length in frames (16 rows always): 16, or longer for an image
    #: whose frames are far finer than its detail (the high image's 1.45 ms hop).
    block_frames: int = BLOCK
    #: One of :data:`CONTEXTS`: ``"temporal"`` predicts each latent column from the one decoded before it
    #: (:class:`TemporalContext`).
    context: str = "none"

    def as_dict(self) -> dict[str, Any]:
        """The fields, without ``hyper_time_stride``, ``transform`` and ``block_frames`` where
        they are the defaults (weights files written before they existed describe their network
        exactly so)."""
        d: dict[str, Any] = asdict(self)
        if self.hyper_time_stride == HYPER_TIME_STRIDE:
            del d["hyper_time_stride"]
        if self.transform == "gdn":
            del d["transform"]
        if self.block_frames == BLOCK:
            del d["block_frames"]
        if self.context == "none":
            del d["context"]
        return d


class BlockSynthesis(torch.nn.Module):
    """The block transform's synthesis: each latent vector times a learned basis of 16 rows by
    ``block_frames`` frames, summed into its block (a transposed convolution of that stride), then a small residual post-filter
    (three 3x3 convolutions) that learns what coding blocks loses, their edges first.

    With ``g_a`` the matching block convolution, the pair starts (:func:`init_block_transform`)
    as the Karhunen-Loève transform of the training images' blocks, scaled so latent step 1 is
    a chosen step on the coefficients, and a post-filter that does nothing: a working codec
    before the first step, which training then adapts as a whole (transforms, post-filter and
    hyperprior).
    """

    def __init__(self, m: int, block_frames: int = BLOCK, width: int = 16) -> None:
        super().__init__()
        self.basis = torch.nn.ConvTranspose2d(m, 1, (BLOCK, block_frames), stride=(BLOCK, block_frames))
        self.post = torch.nn.Sequential(
            torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 3, padding=1),
        )
        last = self.post[-1]
        assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = self.basis(y)
        return x + POST_GAIN * self.post(x)


class TemporalContext(torch.nn.Module):
    """A closed-loop prediction of each latent column from the column decoded before it (DPCM along time).

    With ``mu``, ``sigma`` the hyperprior's mean and scale, a latent ``y`` at column ``j`` is coded as
    ``k = round((y_j - mu_j - a * d_(j-1)) / step)`` under scale ``g * sigma_j / step``, where
    ``d_j = y^_j - mu_j = k step + a d_(j-1)`` is what the decoder has of the column (0 before the
    first). ``a`` and ``g`` are per latent channel and row. Why: the hyperprior's means are at z's
    resolution (64 rows x 1024 high frames), so a block's level, which a held note keeps from one
    block to the next, was paid for again in every block; the mean-scale prior alone spent 8 % more
    bits on the high image at sgc-6's step (training excerpts). Starts as no prediction (``a`` 0,
    ``g`` 1); :func:`fit_temporal_context` sets it from images, training adapts it.
    """

    def __init__(self, m: int, rows: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1, m, rows, 1))
        self.log_gain = torch.nn.Parameter(torch.zeros(1, m, rows, 1))

    def scales(self, scales: torch.Tensor) -> torch.Tensor:
        return scales * self.log_gain.detach().exp().to(scales.device)

    def open_loop_means(self, y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
        """The means with the previous column's unquantised residual as the prediction (training)."""
        r = y - means
        return means + self.weight * F.pad(r[..., :-1], (1, 0))

    def quantise(self, y: torch.Tensor, means: torch.Tensor, step: Step) -> torch.Tensor:
        """The symbols ``k`` of every column, column by column as the decoder will see them."""
        a = self.weight[..., 0].detach().to(y.device)
        s = step[..., 0] if isinstance(step, torch.Tensor) else step
        d = torch.zeros_like(y[..., 0])
        out = torch.empty_like(y)
        for j in range(y.shape[-1]):
            k = torch.round((y[..., j] - means[..., j] - a * d) / s)
            out[..., j] = k
            d = k * s + a * d
        return out

    def reconstruct(self, symbols: torch.Tensor, means: torch.Tensor, step: Step) -> torch.Tensor:
        """The decoded latent ``y^`` from the symbols (the inverse of :meth:`quantise`)."""
        a = self.weight[..., 0].detach().to(symbols.device)
        q = symbols * step
        d = torch.zeros_like(q[..., 0])
        out = torch.empty_like(q)
        for j in range(q.shape[-1]):
            d = q[..., j] + a * d
            out[..., j] = d
        return out + means


#: The scale gains :func:`fit_temporal_context` chooses from, per latent channel and row.
CONTEXT_GAINS = tuple(float(g) for g in torch.exp(torch.linspace(math.log(0.25), math.log(2.0), 22)))


def fit_temporal_context(net: SpectrogramHyperprior, images: list[torch.Tensor], step: float = 1.0,
                         limit: tuple[float, float] = (-0.5, 0.95)) -> None:
    """Set a network's :class:`TemporalContext` from band images (each (rows, frames)): each latent
    channel and row's weight the least-squares prediction of a column's residual ``y - mu`` from the
    previous column's (clamped to ``limit``), then its scale gain the one of :data:`CONTEXT_GAINS`
    that codes the closed-loop symbols at ``step`` in the fewest bits. Deterministic given ``images``;
    the network's entropy coders must be up to date (``update(force=True)``)."""
    context = net.context
    if context is None:
        raise ValueError("fit_temporal_context is for a network with context = \"temporal\"")
    rows = context.weight.shape[2] * BLOCK
    with torch.no_grad():
        context.weight.zero_()
        context.log_gain.zero_()
        tiles = [analyse_tile(net, image, rows) for image in images]
        num = sum(((t.y - t.means)[..., 1:] * (t.y - t.means)[..., :-1]).sum(dim=(0, 3)) for t in tiles)
        den = sum(((t.y - t.means)[..., :-1] ** 2).sum(dim=(0, 3)) for t in tiles)
        weight = (torch.as_tensor(num) / torch.as_tensor(den).clamp_min(1e-9)).clamp(*limit)
        context.weight.copy_(weight.reshape(context.weight.shape).to(context.weight.device))
        gc = net.gaussian_conditional
        bits = torch.zeros(len(CONTEXT_GAINS), *context.weight.shape[1:3])
        for t in tiles:
            symbols = context.quantise(t.y, t.means, step)
            for i, g in enumerate(CONTEXT_GAINS):
                lik = gc.likelihood_lower_bound(gc._likelihood(symbols, t.scales * g / step))
                bits[i] += -torch.log2(lik).sum(dim=(0, 3))
        best = torch.tensor(CONTEXT_GAINS)[bits.argmin(dim=0)]
        context.log_gain.copy_(best.log().reshape(context.log_gain.shape).to(context.log_gain.device))


def init_block_transform(net: SpectrogramHyperprior, images: torch.Tensor, coefficient_step: float) -> None:
    """Set a ``"klt"`` network's transforms to the Karhunen-Loève transform of ``images``
    (B, 1, rows, frames) cut into its blocks (16 rows × ``block_frames``): its first ``m`` principal directions, the
    analysis divided and the synthesis multiplied by ``coefficient_step`` (latent step 1 is
    that step on the orthonormal coefficients; a pixel's error is then about step / sqrt(12)
    in the image's [0, 1] for every coefficient coded), and the hyperprior's output at each
    coefficient's spread over ``images``. Deterministic given ``images``."""
    if net.arch.transform != "klt":
        raise ValueError("init_block_transform is for a network with transform = \"klt\"")
    b, bt = images.shape[0], net.arch.block_frames
    rows, frames = images.shape[2] // BLOCK * BLOCK, images.shape[3] // bt * bt
    x = images[:, 0, :rows, :frames].reshape(b, rows // BLOCK, BLOCK, frames // bt, bt)
    blocks = x.permute(0, 1, 3, 2, 4).reshape(-1, BLOCK * bt).double()
    mean = float(blocks.mean())
    _, _, vt = torch.linalg.svd(blocks - mean, full_matrices=False)
    basis = vt[: net.arch.m].float()  # (m, 16 * block_frames), orthonormal rows
    m = basis.shape[0]
    with torch.no_grad():
        g_a = net.g_a
        assert isinstance(g_a, torch.nn.Conv2d) and isinstance(net.g_s, BlockSynthesis)
        assert g_a.bias is not None and net.g_s.basis.bias is not None
        g_a.weight.copy_(basis.reshape(m, 1, BLOCK, bt) / coefficient_step)
        g_a.bias.copy_(-basis.sum(dim=1) * mean / coefficient_step)
        net.g_s.basis.weight.copy_(basis.reshape(m, 1, BLOCK, bt) * coefficient_step)
        net.g_s.basis.bias.fill_(mean)
        # The hyperprior starts as the coefficients' static model: each channel's scale its
        # spread over the images, its mean 0, and the hyper-synthesis' last layer at a tenth,
        # so what it learns first is where a block is louder or quieter than that.
        spread = ((blocks - mean).float() @ basis.T).std(dim=0) / coefficient_step
        last = net.h_s[-1]
        assert isinstance(last, torch.nn.Conv2d) and last.bias is not None
        last.weight.mul_(0.1)
        last.bias[:m].copy_(spread.clamp_min(0.11))
        last.bias[m:].zero_()


def _conv_t(cin: int, cout: int, t: int) -> torch.nn.Module:
    """compressai's 5×5 ``conv`` with stride 2 in frequency and ``t`` in time (same weight shape)."""
    return torch.nn.Conv2d(cin, cout, 5, stride=(2, t), padding=2)


def _deconv_t(cin: int, cout: int, t: int) -> torch.nn.Module:
    """The transposed :func:`_conv_t` (exactly ×2 in frequency, ×t in time)."""
    return torch.nn.ConvTranspose2d(cin, cout, 5, stride=(2, t), padding=2, output_padding=(1, t - 1))


class SpectrogramHyperprior(MeanScaleHyperprior):
    """``mbt2018-mean`` with a one-channel (grayscale) input and output."""

    def __init__(self, arch: SgcArchitecture = SgcArchitecture(), rows: int = 256) -> None:
        super().__init__(N=arch.n, M=arch.m)
        self.arch = arch
        n, m, t = arch.n, arch.m, arch.hyper_time_stride
        if arch.transform not in TRANSFORMS:
            raise ValueError(f"unknown sgc transform {arch.transform!r}")
        if arch.transform == "klt":
            bt = arch.block_frames
            if bt not in BLOCK_FRAMES or not 1 <= m <= BLOCK * bt:
                raise ValueError(f"a block transform has blocks of {', '.join(map(str, BLOCK_FRAMES))} frames and at "
                                 f"most {BLOCK * bt} latent channels, not {bt} frames and {m}")
            self.g_a: torch.nn.Module = torch.nn.Conv2d(1, m, (BLOCK, bt), stride=(BLOCK, bt))
            self.g_s: torch.nn.Module = BlockSynthesis(m, bt)
        else:
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
        if arch.context not in CONTEXTS:
            raise ValueError(f"unknown sgc context {arch.context!r}")
        #: The temporal context over the latent's ``rows // 16`` rows, or None (:class:`TemporalContext`).
        self.context = TemporalContext(m, rows // BLOCK) if arch.context == "temporal" else None
        #: Frames a tile is padded to a multiple of: 2^4 (g_a; a block transform: its block) × t^2 (h_a).
        self.time_multiple = (arch.block_frames if arch.transform == "klt" else 16) * t * t

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


#: A latent step: one number, or one per latent row (a (1, 1, rows // 16, 1) tensor, :func:`row_steps`).
Step = float | torch.Tensor


def row_steps(step: float, multipliers: list[float] | tuple[float, ...] | None) -> Step:
    """``step`` times each latent row's multiplier (row 0 the lowest 16 image rows), as a tensor that
    broadcasts over (batch, channels, rows, columns); ``step`` itself where there are none."""
    if not multipliers:
        return step
    return step * torch.tensor(multipliers, dtype=torch.float32).reshape(1, 1, -1, 1)


def _symbols_and_scales(model: SpectrogramHyperprior, tile: AnalysedTile, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
    """The symbols a tile is coded with at ``step``, and the scales they are coded under."""
    if model.context is None:
        return torch.round((tile.y - tile.means) / step), tile.scales
    context = model.context
    return context.quantise(tile.y, tile.means, step), context.scales(tile.scales)


def estimated_bits(model: SpectrogramHyperprior, tile: AnalysedTile, step: Step) -> float:
    """Bits the tile costs with quantisation step ``step``: -log2 of the Gaussian
    likelihoods of the symbols ``round((y - mu) / step)`` (with a temporal context, its
    closed-loop symbols) under scale ``sigma / step``, plus the z string's actual length."""
    gc = model.gaussian_conditional
    symbols, scales = _symbols_and_scales(model, tile, step)
    lik = gc.likelihood_lower_bound(gc._likelihood(symbols, scales / step))
    return float(-torch.log2(lik).sum()) + 8 * len(tile.z_string)


def code_tile(model: SpectrogramHyperprior, tile: AnalysedTile, step: Step = 1.0) -> bytes:
    """One analysed tile → bytes: ``u16`` z-height, ``u16`` z-width, ``u32`` len(y), y string, z string.

    ``step`` is the latent quantisation step (1 = as trained): ``ŷ = step · round((y - μ) / step) + μ``,
    coded with scales ``σ / step`` (a network with a :class:`TemporalContext` predicts ``μ`` column by
    column, and rescales ``σ``). ``step`` is the codec's rate knob; one per latent row
    (:func:`row_steps`) spends a band's bits unevenly over frequency.
    """
    _check_rows(step, tile.y.shape[2])
    gc = model.gaussian_conditional
    if model.context is None:
        indexes = gc.build_indexes(tile.scales / step)
        ys = gc.compress(tile.y / step, indexes, means=tile.means / step)[0]
    else:
        symbols, scales = _symbols_and_scales(model, tile, step)
        ys = gc.compress(symbols, gc.build_indexes(scales / step))[0]
    zh, zw = tile.z_shape
    return struct.pack("<HHI", zh, zw, len(ys)) + ys + tile.z_string


def compress_tile(model: SpectrogramHyperprior, image: torch.Tensor, step: float = 1.0, rows: int = ROWS) -> bytes:
    """:func:`analyse_tile` then :func:`code_tile`."""
    return code_tile(model, analyse_tile(model, image, rows), step)


def _check_rows(step: Step, rows: int) -> None:
    if isinstance(step, torch.Tensor) and step.shape[2] != rows:
        raise ValueError(f"{step.shape[2]} row steps for a latent of {rows} rows")


def decompress_tile(model: SpectrogramHyperprior, data: bytes, bins: int, frames: int, device: torch.device,
                    step: Step = 1.0, rows: int = ROWS) -> torch.Tensor:
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
    _check_rows(step, zh * MULTIPLE // BLOCK)
    ys, zs = data[8: 8 + ylen], data[8 + ylen:]
    z_hat = model.entropy_bottleneck.decompress([zs], (zh, zw))
    scales_hat, means_hat = _cpu(model.h_s)(z_hat).chunk(2, 1)
    gc = model.gaussian_conditional
    if model.context is None:
        indexes = gc.build_indexes(scales_hat / step)
        y_hat = gc.decompress([ys], indexes, means=means_hat / step) * step
    else:
        context = model.context
        symbols = gc.decompress([ys], gc.build_indexes(context.scales(scales_hat) / step))
        y_hat = context.reconstruct(symbols, means_hat, step)
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

    def __init__(self, arch: SgcArchitecture = SgcArchitecture(), high_hyper_time_stride: int = HYPER_TIME_STRIDE,
                 high_block_frames: int = BLOCK, high_m: int | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.low = SpectrogramHyperprior(arch, BAND_ROWS["low"])
        #: The high image has 8 times the low image's frames per second: a hyperprior time stride of 4
        #: (or, for a block transform, longer blocks) keeps its side information (z) from taking half
        #: of a low-rate stream.
        self.high = SpectrogramHyperprior(replace(arch, hyper_time_stride=high_hyper_time_stride,
                                                  block_frames=high_block_frames, m=high_m or arch.m),
                                          BAND_ROWS["high"])

    def architecture(self) -> dict[str, Any]:
        """What a weights file's ``arch`` records (:func:`build_network` rebuilds it)."""
        stride, frames, m = self.high.arch.hyper_time_stride, self.high.arch.block_frames, self.high.arch.m
        return {**self.arch.as_dict(), "representation": "two-band",
                **({"high_hyper_time_stride": stride} if stride != HYPER_TIME_STRIDE else {}),
                **({"high_block_frames": frames} if frames != BLOCK else {}),
                **({"high_m": m} if m != self.arch.m else {})}

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
    for two-band weights, ``"high_hyper_time_stride"``, ``"high_block_frames"`` and ``"high_m"`` (the high network's
    latent channels, where not ``m``); ``"transform"``."""
    widths = dict(arch)
    two_band = widths.pop("representation", "thesis") == "two-band"
    high_stride = int(widths.pop("high_hyper_time_stride", HYPER_TIME_STRIDE))
    high_frames = int(widths.pop("high_block_frames", BLOCK))
    high_m = widths.pop("high_m", None)
    architecture = SgcArchitecture(**widths)
    return (TwoBandHyperprior(architecture, high_stride, high_frames, int(high_m) if high_m else None) if two_band
            else SpectrogramHyperprior(architecture))


def forward_at_step(model: SpectrogramHyperprior, x: torch.Tensor, step: float = 1.0, ste: bool = False
                    ) -> dict[str, Any]:
    """The training forward pass with latent quantisation step ``step``: the likelihoods are
    those of ``(y - mu) / step`` plus uniform noise under ``sigma / step``, as :func:`code_tile`
    codes them at that step. The image is decoded from the noisy latents (``ste`` False, as
    compressai's forward, which ``step`` 1 then is) or from the latents rounded as the coder
    rounds them, with a straight-through gradient (``ste`` True: Minnen & Singh's mixed
    quantisation; a block transform needs it, since noise on every coefficient costs far more
    than rounding the many that round to zero)."""
    y = model.g_a(x)
    z = model.h_a(y)
    z_hat, z_likelihoods = model.entropy_bottleneck(z)
    scales, means = model.h_s(z_hat).chunk(2, 1)
    if model.context is not None:  # the previous column's residual, unquantised (the coder's is its rounding)
        means = model.context.open_loop_means(y, means)
        scales = scales * model.context.log_gain.exp()
    y_hat, y_likelihoods = model.gaussian_conditional(y / step, scales / step, means=means / step)
    if ste:
        y_hat = quantize_ste((y - means) / step) + means / step
    return {"x_hat": model.g_s(y_hat * step), "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}
