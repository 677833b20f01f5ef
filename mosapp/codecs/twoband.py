"""Spectrogram codecs on the two-band representation (:mod:`mosapp.core.bands`).

Per channel the clip is split by the crossover into a low band (decimated by 8) and a
high band. Each becomes a log-magnitude image with its own peak (``top_db``):

* **low image**: the thesis lattice at 5512.5 Hz (10.8 Hz bins, 11.6 ms hop), rows
  0..127 (0–1378 Hz), 128 × 86 pixels per second;
* **high image**: the thesis lattice at 44.1 kHz, 257 rows, rows below 947 Hz black
  (``x_high`` has nothing there), 257 × 689 pixels per second.

A subclass codes the two lists of tiles (:meth:`TwoBandCodec.compress_bands`, where rate
control can share the budget between the bands) and decodes one tile
(:meth:`TwoBandCodec.decompress_band`). Decoding rebuilds the phase of each band on its
own lattice with the configured backend and recombines them (:func:`mosapp.core.bands.merge`).

Payload (integers little-endian): for each channel, the low tiles then the high tiles,
each a ``u32`` byte count followed by that many bytes. ``params``: ``geometry``
(``thesis``), ``bands`` (:data:`BANDS_TAG`), ``tile_frames`` ``[low, high]``, ``top_db``
``[[low, high] per channel]``, ``dynamic_range_db`` and the subclass's own keys.

``pghi-only-two-band`` (the images kept as float16) is the upper bound of the
representation, as ``pghi-only`` is of the thesis image.
"""

from __future__ import annotations

import struct
import zlib
from abc import abstractmethod
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mosapp.codecs import params as header_params
from mosapp.codecs import register_family
from mosapp.codecs.base import Encoded, check_input
from mosapp.codecs.spectrogram import SpectrogramCodec, StreamLayout, _tiles, tile_spans
from mosapp.core import bands, dsp, job
from mosapp.core.config import PIPELINE_SAMPLE_RATE, ImageMapping, PipelineConfig, get_geometry
from mosapp.core.errors import BitstreamError, InvalidStreamError, ModelError
from mosapp.core.job import Progress
from mosapp.core.memory import inflate_exact
from mosapp.phase.invert import invert_magnitude

#: Names the representation in a stream's params (bump when bands.py's filters change).
BANDS_TAG = "low8-1000-1350"
#: Both bands use the thesis lattice (the low one at the decimated rate).
GEOMETRY = "thesis"
LOW_TILE_FRAMES = 1024
#: Share of a rate-controlled stream's bits given to the low image, by sgc and by the
#: classic image codecs alike (the low image is 6 % of the pixels and holds the pitch).
DEFAULT_LOW_SHARE = 0.4
HIGH_TILE_FRAMES = 2048


@dataclass
class BandImages:
    """One channel's decoded (or analysed) images and their scales."""

    low: torch.Tensor  # (LOW_ROWS, low frames)
    low_scale: dsp.ImageScale
    high: torch.Tensor  # (257, high frames)
    high_scale: dsp.ImageScale


def band_images(x: np.ndarray, device: torch.device, dynamic_range_db: float = 100.0,
                chunk: int = 8192) -> tuple[torch.Tensor, float, torch.Tensor, float]:
    """One channel (n,) → (low image (128, F_low), low top_db, high image (257, F_high), high top_db).

    Each band's image is scaled to that band's own peak (:func:`mosapp.core.dsp.spectrogram_image`);
    the STFT runs in chunks of ``chunk`` frames so long inputs stay in bounded memory.
    """
    geometry = get_geometry(GEOMETRY)
    mapping = ImageMapping(dynamic_range_db=dynamic_range_db)
    low, high = bands.split(x)
    (low_chunks, low_scale), (high_chunks, high_scale) = (
        dsp.spectrogram_image(torch.from_numpy(signal).to(device), geometry, mapping, chunk_frames=chunk, rows=rows)
        for signal, rows in ((low, (0, bands.LOW_ROWS)), (high, (bands.HIGH_FIRST_ROW, geometry.bins)))
    )
    return torch.cat(low_chunks, dim=1), low_scale.top_db, torch.cat(high_chunks, dim=1), high_scale.top_db


class TwoBandCodec(SpectrogramCodec):
    """Base of the codecs that code the two-band images."""

    low_tile_frames: int = LOW_TILE_FRAMES
    tile_frames: int = HIGH_TILE_FRAMES

    @abstractmethod
    def compress_bands(self, low: list[torch.Tensor], high: list[torch.Tensor], seconds: float
                       ) -> tuple[list[bytes], list[bytes], dict]:
        """Code every low tile and every high tile of the clip (all channels, in order)."""

    @abstractmethod
    def decompress_band(self, data: bytes, band: str, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        """Decode one tile of ``band`` (``"low"`` or ``"high"``) to float32 ``shape`` in [0, 1].

        Raises:
            BitstreamError: ``data`` cannot be decoded.
        """

    def prepare_decode(self, encoded: Encoded, device: torch.device) -> None:
        """Load what decoding ``encoded`` needs (a learned codec: the weights it was coded with)."""
        self.prepare(device)

    def adjust_band(self, band: str, image: torch.Tensor, dynamic_range_db: float) -> torch.Tensor:
        """A decoded band image (all its tiles), as the phase reconstruction gets it: as decoded here;
        a learned codec may correct its levels (:mod:`mosapp.codecs.levelmap`)."""
        return image

    # The single-image hooks of SpectrogramCodec are not used by this representation.
    def compress_image(self, image: torch.Tensor) -> bytes:  # pragma: no cover - not called
        raise NotImplementedError

    def decompress_image(self, data: bytes, shape: tuple[int, int], device: torch.device) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- encoding ------------------------------------------------------------------------

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        samples = check_input(samples)
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        device = dsp.resolve_device(config.device)
        self.prepare(device)
        channels, n = samples.shape
        low_tiles: list[torch.Tensor] = []
        high_tiles: list[torch.Tensor] = []
        tops: list[list[float]] = []
        for ch in range(channels):
            job.report(2 * ch, 2 * channels, "band images")  # low and high of each channel
            low, low_top, high, high_top = band_images(samples[ch], device, config.image.dynamic_range_db)
            tops.append([low_top, high_top])
            low_tiles += [low[:, t0:t1] for t0, t1 in _tiles(low.shape[1], self.low_tile_frames)]
            high_tiles += [high[:, t0:t1] for t0, t1 in _tiles(high.shape[1], self.tile_frames)]
        with torch.inference_mode():
            low_blobs, high_blobs, extra = self.compress_bands(low_tiles, high_tiles, n / PIPELINE_SAMPLE_RATE)
        per_low, per_high = len(low_tiles) // channels, len(high_tiles) // channels
        parts: list[bytes] = []
        for ch in range(channels):
            for blob in low_blobs[ch * per_low:(ch + 1) * per_low] + high_blobs[ch * per_high:(ch + 1) * per_high]:
                parts += [struct.pack("<I", len(blob)), blob]
        params = {
            "geometry": GEOMETRY,
            "bands": BANDS_TAG,
            "tile_frames": [self.low_tile_frames, self.tile_frames],
            "top_db": tops,
            "dynamic_range_db": config.image.dynamic_range_db,
            **extra,
        }
        return Encoded(self.name, self.version, PIPELINE_SAMPLE_RATE, n, channels, params, b"".join(parts),
                       model=self.model_id())

    # -- decoding ------------------------------------------------------------------------

    @staticmethod
    def lattice_frames(n_samples: int) -> tuple[int, int]:
        """Frames of the (low, high) lattices for a clip of ``n_samples``."""
        g = get_geometry(GEOMETRY)
        return (g.frames_for(dsp.padded_length(bands.low_length(n_samples), g)),
                g.frames_for(dsp.padded_length(n_samples, g)))

    def _stream_params(self, encoded: Encoded) -> tuple[list[int], list[list[float]], float]:
        """The stream's tile sizes, ``top_db`` pairs and dynamic range, each checked against
        this codec's declared values and ranges (version, name, model, geometry, band layout,
        tile sizes, finite scales within the image mapping's range)."""
        self.check_header(encoded)
        name = self.name
        p = encoded.params
        if p.get("bands") != BANDS_TAG:
            raise BitstreamError(f"The {name} stream uses the band layout {p.get('bands')!r}; this mosapp reads "
                                 f"{BANDS_TAG!r} (a stream of another mosapp version).")
        header_params.choice(encoded, "geometry", [GEOMETRY])
        tiles = header_params.choice(encoded, "tile_frames", [[self.low_tile_frames, self.tile_frames]])
        pairs = p.get("top_db")
        if not isinstance(pairs, list) or len(pairs) != encoded.channels or not all(isinstance(t, list) for t in pairs):
            raise InvalidStreamError(f"the {name} stream's parameter top_db does not hold a [low, high] pair per "
                                     f"coded channel ({encoded.channels})")
        tops = [header_params.numbers(Encoded(encoded.codec, 0, 0, 0, 0, {"top_db": t}), "top_db", 2,
                                      *dsp.TOP_DB_RANGE, unit=" dB") for t in pairs]
        drange = header_params.number(encoded, "dynamic_range_db", *self.dynamic_range_db_range, unit=" dB")
        return list(tiles), tops, drange

    def check_stream(self, encoded: Encoded) -> StreamLayout:
        """:meth:`_stream_params` plus the payload's tile table, before anything is allocated:
        exactly the tiles ``n_samples`` needs (per channel, low then high), nothing after them."""
        tiles, tops, drange = self._stream_params(encoded)
        low_frames, high_frames = self.lattice_frames(encoded.n_samples)
        expected = encoded.channels * (-(-low_frames // tiles[0]) + -(-high_frames // tiles[1]))
        spans = tile_spans(encoded, expected, self.name, f"{expected} tile(s)")
        return StreamLayout(get_geometry(GEOMETRY), tiles, tops, drange, spans)

    def decode_band_images(self, encoded: Encoded, device: torch.device) -> Iterator[tuple[int, BandImages]]:
        """Yield (channel, its decoded :class:`BandImages`) per channel."""
        layout = self.check_stream(encoded)
        tiles, tops, drange = layout.tile_frames, layout.top_db, layout.dynamic_range_db
        self.prepare_decode(encoded, device)
        self.begin_decode(encoded.params)
        low_frames, high_frames = self.lattice_frames(encoded.n_samples)
        bins = get_geometry(GEOMETRY).bins
        view = memoryview(encoded.payload)
        blobs = iter(layout.spans)

        def read(band: str, rows: int, frames: int, tile: int) -> torch.Tensor:
            image = torch.empty(rows, frames, dtype=torch.float32, device=device)
            for t0, t1 in _tiles(frames, tile):
                at, size = next(blobs)
                with torch.inference_mode():
                    image[:, t0:t1] = self.decompress_band(bytes(view[at: at + size]), band, (rows, t1 - t0), device)
            return image

        for ch in range(encoded.channels):
            low = self.adjust_band("low", read("low", bands.LOW_ROWS, low_frames, tiles[0]), drange)
            high = self.adjust_band("high", read("high", bins, high_frames, tiles[1]), drange)
            yield ch, BandImages(low, dsp.ImageScale(tops[ch][0], drange), high, dsp.ImageScale(tops[ch][1], drange))

    def decode_images(self, encoded: Encoded, device: torch.device) -> Iterator[tuple[int, torch.Tensor, dsp.ImageScale]]:
        """Yield (channel, high-band image on the thesis lattice, its scale): the image this
        representation shares with the single-image codecs (the low band is in
        :meth:`decode_band_images`)."""
        for ch, images in self.decode_band_images(encoded, device):
            yield ch, images.high, images.high_scale

    def decode_steps(self, encoded: Encoded, config: PipelineConfig) -> Generator[Progress, None, np.ndarray]:
        self.check_stream(encoded)  # before the output is allocated
        geometry = get_geometry(GEOMETRY)
        device = dsp.resolve_device(config.device)
        n = encoded.n_samples
        out = np.empty((encoded.channels, n), dtype=np.float32)
        offset = geometry.window_length // 2
        n_low = bands.low_length(n)
        for ch, im in self.decode_band_images(encoded, device):
            def low_magnitude(start: int, stop: int, im: BandImages = im) -> torch.Tensor:
                mag = torch.zeros(geometry.bins, stop - start, dtype=torch.float32, device=device)
                mag[: bands.LOW_ROWS] = dsp.image_to_magnitude(im.low[:, start:stop], im.low_scale)
                return mag

            def high_magnitude(start: int, stop: int, im: BandImages = im) -> torch.Tensor:
                return dsp.image_to_magnitude(im.high[:, start:stop], im.high_scale)

            low = yield from invert_magnitude(low_magnitude, im.low.shape[1], dsp.padded_length(n_low, geometry),
                                              geometry, config, device=device)
            high = yield from invert_magnitude(high_magnitude, im.high.shape[1], dsp.padded_length(n, geometry),
                                               geometry, config, device=device)
            out[ch] = bands.merge(low[offset: offset + n_low].cpu().numpy(), high[offset: offset + n].cpu().numpy())
        return out


class PghiOnlyTwoBand(TwoBandCodec):
    """The two-band images kept (float16, zlib): only the phase of each band is rebuilt."""

    name = "pghi-only-two-band"
    family = "pghi-only"
    version = 1
    nominal_kbps = None
    description = ("upper bound of the two-band representation (sgc's): both band images kept losslessly "
                   "(float16), phase rebuilt per band")

    def compress_bands(self, low: list[torch.Tensor], high: list[torch.Tensor], seconds: float
                       ) -> tuple[list[bytes], list[bytes], dict]:
        pack = lambda t: zlib.compress(t.to(torch.float16).cpu().numpy().tobytes(), 6)  # noqa: E731
        return [pack(t) for t in low], [pack(t) for t in high], {}

    def decompress_band(self, data: bytes, band: str, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        # Bounded: a tile never inflates past the image its header announces (a "zlib bomb" is refused).
        raw = inflate_exact(data, 2 * shape[0] * shape[1], f"The {self.name} payload's {band}-band image")
        return torch.from_numpy(np.frombuffer(raw, dtype=np.float16).reshape(shape).astype(np.float32)).to(device)


register_family("pghi-only-two-band", lambda name: PghiOnlyTwoBand() if name == PghiOnlyTwoBand.name else None,
                lambda: [PghiOnlyTwoBand.name])
