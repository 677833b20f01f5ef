"""Classic image codecs on the same spectrogram images as sgc: ``avif-N``, ``webp-N``, ``jpeg-N``.

They answer the seed's question — does a learned image codec beat a classic one on
spectrograms? — on equal terms: the images are sgc's two-band images
(:mod:`mosapp.codecs.twoband`, the same analysis, scaling and phase reconstruction), and
the rate is controlled per file to the name's kbps, as sgc's is.

* Each band image is quantised to 8-bit grayscale (``round(255 · pixel)``; 0.39 dB steps
  over the 100 dB range) and coded by Pillow: AVIF (libavif, AV1 intra, ``speed`` 6, 4:0:0
  grayscale), WebP (libwebp lossy) or JPEG (libjpeg, baseline, optimised Huffman tables,
  grayscale). WebP has no grayscale mode: it codes the gray image as RGB and the decoder
  takes the luma back.
* Rate control: the budget (``N`` kbit/s times the clip's seconds, minus the container's
  bytes) is split between the bands, :data:`LOW_SHARE` of it to the low image, the same
  share sgc's rate control gives the low band at about that rate; for each band the
  encoder bisects the codec's quality (integers 1–100) for the largest quality whose file
  fits that band's share (bisection on a centre crop, then full-size encodes around the
  crop's answer); what the low band leaves unused goes to the high band.
* A rate below what quality 1 can reach (the high image at 6 kbit/s: AVIF at quality 1
  spends about 9 kbit/s on it) is reached as a classic coder reaches it, by coding a
  smaller image: the band image is averaged over 2, 4 or 8 frames (the smallest factor at
  which quality 1 fits), coded, and linearly interpolated back to its frames on decoding.
  The thesis lattice's 1.45 ms hop is far finer than its 11.6 ms window, so halving the
  high image's frames loses little; without this, ``avif-6`` would land at about 8 kbit/s.
* Tiles are long (:data:`IMAGE_TILE_FRAMES`: 23.8 s of the high image, 47.6 s of the low),
  because every tile is a complete image file with its own header (about 300 bytes for
  AVIF and JPEG, 40 for WebP); a clip up to 23 s is one image per band.

Payload and ``params`` are :class:`~mosapp.codecs.twoband.TwoBandCodec`'s, plus
``quality`` ``[low, high]`` (informational) and, where a band image was coded smaller,
``time_scale`` ``[low, high]`` (frames averaged per coded column: 1, 2, 4 or 8; a stream
without it is at 1). Names: any rate from 2 to 256 kbit/s;
``mosapp codecs`` lists 6, 12 and 24.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError, features

from mosapp.codecs import register_family
from mosapp.codecs.base import Availability
from mosapp.codecs.twoband import DEFAULT_LOW_SHARE, TwoBandCodec
from mosapp.core import job
from mosapp.core.errors import BitstreamError

#: Pillow format name and save options per family.
#: Pillow format name and save options per family.
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    "avif": ("AVIF", {"speed": 6}),
    "webp": ("WEBP", {"method": 4}),
    "jpeg": ("JPEG", {"optimize": True}),
}
#: Advertised rates.
ADVERTISED_KBPS = (6, 12, 24)
RATE_RANGE = (2.0, 256.0)
#: Share of the payload budget given to the low image: the same as sgc's rate control.
LOW_SHARE = DEFAULT_LOW_SHARE
#: Frames per tile: (low, high).
IMAGE_TILE_FRAMES = (4096, 16384)
#: Bytes outside the image files (container, header, tile lengths), budgeted when planning.
OVERHEAD_BYTES = 330
#: Frames averaged into one coded column, tried in this order when quality 1 does not fit the budget.
TIME_SCALES = (1, 2, 4, 8)


def to_gray8(image: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray((image.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).cpu().numpy())


def shrink(image: torch.Tensor, scale: int) -> torch.Tensor:
    """(rows, frames) → (rows, ceil(frames / scale)): each column the mean of ``scale`` frames
    (the last group padded by repeating the last frame)."""
    if scale == 1:
        return image
    pad = (-image.shape[1]) % scale
    x = F.pad(image[None], (0, pad), mode="replicate")[0] if pad else image
    return x.reshape(x.shape[0], -1, scale).mean(dim=2)


def expand(image: torch.Tensor, frames: int, scale: int) -> torch.Tensor:
    """Inverse of :func:`shrink`: linear interpolation between the columns' centres, cropped to ``frames``."""
    if scale == 1:
        return image
    up = F.interpolate(image[None], size=image.shape[1] * scale, mode="linear", align_corners=False)[0]
    return up[:, :frames].contiguous()


def coded_frames(frames: int, scale: int) -> int:
    """Columns of the coded image of a ``frames``-frame tile at ``scale``."""
    return -(-frames // scale)


class ImageFamilyCodec(TwoBandCodec):
    """``<format>-<kbps>``: a classic image codec on the two-band spectrogram images."""

    version = 1
    low_tile_frames, tile_frames = IMAGE_TILE_FRAMES

    def __init__(self, family: str, kbps: float) -> None:
        self.family = family
        self.format, self.options = FORMATS[family]
        self.target_kbps = self.nominal_kbps = float(kbps)
        self.name = f"{family}-{kbps:g}"
        self.description = (f"{self.format} (Pillow) on sgc's two-band spectrogram images, quality searched per file "
                            f"for {kbps:g} kbit/s; phase rebuilt")
        self._time_scale = (1, 1)

    def availability(self) -> Availability:
        feature = {"AVIF": "avif", "WEBP": "webp", "JPEG": "jpg"}[self.format]
        if not features.check(feature):
            return Availability(False, f"This Pillow ({features.version('PIL') or '?'}) was built without {self.format}; "
                                       f"install a Pillow with {feature} support (Pillow 11.3 or newer has AVIF).")
        return Availability(True)

    # -- coding one image ----------------------------------------------------------------------

    def code(self, gray: np.ndarray, quality: int) -> bytes:
        image = Image.fromarray(gray, "L")
        buf = io.BytesIO()
        image.save(buf, format=self.format, quality=int(quality), **self.options)
        return buf.getvalue()

    def _fit_scaled(self, tiles: list[torch.Tensor], budget_bytes: float) -> tuple[list[bytes], int, int]:
        """(files, quality, time scale): the first of :data:`TIME_SCALES` at which quality 1 fits
        ``budget_bytes`` (or the last), and at that scale :meth:`_fit`."""
        for scale in TIME_SCALES:
            job.check()
            grays = [to_gray8(shrink(t, scale)) for t in tiles]
            if scale == TIME_SCALES[-1] or sum(len(self.code(g, 1)) for g in grays) <= budget_bytes:
                blobs, quality = self._fit(grays, budget_bytes)
                return blobs, quality, scale
        raise AssertionError("unreachable")  # pragma: no cover - the last scale always returns

    def _fit(self, grays: list[np.ndarray], budget_bytes: float) -> tuple[list[bytes], int]:
        """The largest quality whose files together fit ``budget_bytes`` (quality 1 if none does).

        Bisection over qualities 1-100 on a centre crop of each image (a quarter of its
        frames, at least 512), with the budget scaled to the crop's share of the pixels;
        then full-size encodes from that quality, up while the files still fit, down until
        they do. Coded size grows monotonically with quality, so the result is the same as
        a full-size bisection, for a few full-size encodes instead of seven.
        """
        def crop(g: np.ndarray) -> np.ndarray:
            w = g.shape[1]
            c = max(512, w // 4)
            return g if c >= w else np.ascontiguousarray(g[:, (w - c) // 2:(w - c) // 2 + c])

        crops = [crop(g) for g in grays]
        share = sum(c.size for c in crops) / max(1, sum(g.size for g in grays))
        lo, hi = 1, 101  # largest fitting crop quality in [lo, hi)
        while hi - lo > 1:
            job.report(7 - (hi - lo).bit_length(), 7, "quality steps")
            mid = (lo + hi) // 2
            if sum(len(self.code(c, mid)) for c in crops) <= budget_bytes * share:
                lo = mid
            else:
                hi = mid
        q = lo
        blobs = [self.code(g, q) for g in grays]
        if sum(map(len, blobs)) <= budget_bytes:
            while q < 100:
                job.check()
                more = [self.code(g, q + 1) for g in grays]
                if sum(map(len, more)) > budget_bytes:
                    break
                q, blobs = q + 1, more
        else:
            while q > 1:
                job.check()
                q -= 1
                blobs = [self.code(g, q) for g in grays]
                if sum(map(len, blobs)) <= budget_bytes:
                    break
        return blobs, q

    def compress_bands(self, low: list[torch.Tensor], high: list[torch.Tensor], seconds: float
                       ) -> tuple[list[bytes], list[bytes], dict]:
        budget = self.target_kbps * 1000.0 * seconds / 8.0 - OVERHEAD_BYTES - 4 * (len(low) + len(high))
        low_blobs, q_low, s_low = self._fit_scaled(low, LOW_SHARE * budget)
        high_blobs, q_high, s_high = self._fit_scaled(high, budget - sum(map(len, low_blobs)))
        params: dict[str, Any] = {"quality": [q_low, q_high]}
        if (s_low, s_high) != (1, 1):
            params["time_scale"] = [s_low, s_high]
        return low_blobs, high_blobs, params

    def begin_decode(self, params: dict) -> None:
        scale = params.get("time_scale", [1, 1])
        if (not isinstance(scale, list) or len(scale) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v in TIME_SCALES for v in scale)):
            raise BitstreamError(f"The {self.name} stream's time scale {scale!r} is not a pair of "
                                 f"{', '.join(map(str, TIME_SCALES))}.")
        self._time_scale = (scale[0], scale[1])

    def decompress_band(self, data: bytes, band: str, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        scale = self._time_scale[0 if band == "low" else 1]
        rows, frames = shape
        shape = (rows, coded_frames(frames, scale))
        try:
            image = Image.open(io.BytesIO(data))
            if image.format != self.format:
                raise BitstreamError(f"The {self.name} payload holds a {image.format} image, not {self.format}.")
            if image.size != (shape[1], shape[0]):
                # Checked before load(): a tile's header must not make the decoder allocate more than the stream needs.
                raise BitstreamError(f"The {self.name} {band}-band image is {image.size[1]}x{image.size[0]}, "
                                     f"the stream needs {shape[0]}x{shape[1]}.")
            image.load()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise BitstreamError(f"The {self.name} payload is damaged ({exc}).") from None
        arr = np.asarray(image.convert("L"), dtype=np.float32)
        if arr.shape != tuple(shape):
            raise BitstreamError(f"The {self.name} {band}-band image is {arr.shape[0]}x{arr.shape[1]}, "
                                 f"the stream needs {shape[0]}x{shape[1]}.")
        return expand(torch.from_numpy(arr / 255.0).to(device), frames, scale)


_NAME = re.compile(r"^(avif|webp|jpeg)-(\d+(?:\.\d+)?)$")


def _factory(name: str) -> ImageFamilyCodec | None:
    m = _NAME.match(name)
    if not m:
        return None
    kbps = float(m.group(2))
    if not (RATE_RANGE[0] <= kbps <= RATE_RANGE[1]):
        return None
    return ImageFamilyCodec(m.group(1), kbps)


def _advertised(family: str) -> Callable[[], list[str]]:
    """The names ``mosapp codecs`` lists for one image family."""
    return lambda: [f"{family}-{r}" for r in ADVERTISED_KBPS]


for _family in FORMATS:
    register_family(_family, _factory, _advertised(_family))
