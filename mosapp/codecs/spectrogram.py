"""Spectrogram codecs: STFT → log-magnitude image → image codec → image → phase → waveform.

:class:`SpectrogramCodec` does everything but the image coding: per channel it analyses the
clip on the lattice (in tiles of frames, so memory stays bounded), maps magnitudes to a
[0, 1] image with the clip's own scale (recorded in ``params`` so the level is restored),
hands each tile to :meth:`SpectrogramCodec.compress_image`, and on decoding runs the
decoded image through the configured phase backend (:func:`mosapp.phase.invert.invert_magnitude`).

Payload layout (all integers little-endian): for each channel, for each tile, a ``u32``
byte count followed by that many bytes of the subclass's tile payload.

``pghi-only`` lives here too: its "image codec" keeps the image (float16, zlib), so only
the phase is rebuilt — the seed's upper bound for every spectrogram codec.
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
from mosapp.codecs.base import Codec, Encoded, check_input
from mosapp.core import dsp, job
from mosapp.core.config import GEOMETRIES, PIPELINE_SAMPLE_RATE, PipelineConfig, StftGeometry, get_geometry
from mosapp.core.errors import AudioError, BitstreamError, InvalidStreamError, ModelError
from mosapp.core.job import Progress
from mosapp.core.memory import inflate_exact
from mosapp.phase.invert import invert_magnitude

#: Frames per tile handed to an image codec (about 3 s with the thesis geometry).
DEFAULT_TILE_FRAMES = 2048
#: Image dynamic ranges (dB) a spectrogram stream may declare.
DYNAMIC_RANGE_DB_RANGE = (20.0, 160.0)


def _tiles(n_frames: int, tile: int) -> Iterator[tuple[int, int]]:
    for t0 in range(0, n_frames, tile):
        yield t0, min(t0 + tile, n_frames)


@dataclass(frozen=True)
class StreamLayout:
    """A spectrogram stream's header values and tile table, checked (``check_stream``).

    Attributes:
        geometry: the lattice of the images.
        tile_frames: frames per tile of each image of a channel (one image, or the low and
            high bands of :mod:`mosapp.codecs.twoband`).
        top_db: per channel, the ``top_db`` of each of its images.
        dynamic_range_db: the images' dynamic range.
        spans: (offset, size) in the payload of every tile, in payload order.
    """

    geometry: StftGeometry
    tile_frames: list[int]
    top_db: list[list[float]]
    dynamic_range_db: float
    spans: list[tuple[int, int]]


def tile_spans(encoded: Encoded, expected: int, name: str, need: str) -> list[tuple[int, int]]:
    """(offset, size) of each of the ``expected`` tiles (a ``u32`` byte count, then the bytes)
    the payload must consist of, read before anything is allocated.

    Raises:
        InvalidStreamError: fewer tiles, or bytes after the last; ``need`` says what the header
            asks for (e.g. "4 tile(s) of 2048 frames").
    """
    view = memoryview(encoded.payload)
    spans: list[tuple[int, int]] = []
    pos = 0
    for _ in range(expected):
        if pos + 4 > len(view):
            break
        (size,) = struct.unpack_from("<I", view, pos)
        if pos + 4 + size > len(view):
            break
        spans.append((pos + 4, size))
        pos += 4 + size
    if len(spans) != expected or pos != len(view):
        raise InvalidStreamError(
            f"the {name} payload does not fit its header: {encoded.n_samples} samples in "
            f"{encoded.channels} channel(s) need {need}, and the payload "
            + (f"holds {len(spans)}" if len(spans) != expected else f"has {len(view) - pos} bytes after them")
        )
    return spans


class SpectrogramCodec(Codec):
    """Base of the codecs that code the log-magnitude image.

    Subclasses implement :meth:`compress_image` / :meth:`decompress_image` for one tile,
    and may set :attr:`tile_frames`.
    """

    tile_frames: int = DEFAULT_TILE_FRAMES
    #: Image dynamic ranges (dB) a stream may declare: what :class:`mosapp.core.config.ImageMapping` can be set to.
    dynamic_range_db_range: tuple[float, float] = DYNAMIC_RANGE_DB_RANGE

    def geometries(self) -> tuple[str, ...]:
        """Geometry names this codec's streams may use (sgc: the one its model was trained on)."""
        return tuple(GEOMETRIES)

    # -- the image codec -------------------------------------------------------------

    @abstractmethod
    def compress_image(self, image: torch.Tensor) -> bytes:
        """Code one tile: ``image`` is float32 (bins, frames) in [0, 1] on the working device."""

    @abstractmethod
    def decompress_image(self, data: bytes, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        """Decode one tile to float32 (bins, frames) = ``shape`` in [0, 1] on ``device``.

        Raises:
            BitstreamError: ``data`` cannot be decoded.
        """

    def prepare(self, device: torch.device) -> None:
        """Load weights etc. before the first tile (called by encode and decode)."""

    def compress_tiles(self, tiles: list[torch.Tensor], seconds: float) -> tuple[list[bytes], dict]:
        """Code every tile of the clip (all channels, in order); returns the blobs and extra
        ``params`` for the header. Override for clip-level decisions such as rate control."""
        blobs = []
        for i, tile in enumerate(tiles):
            job.report(i, len(tiles), "tiles coded")
            blobs.append(self.compress_image(tile))
        return blobs, {}

    def begin_decode(self, params: dict) -> None:
        """Called with the stream's ``params`` before its tiles are decoded."""

    # -- the pipeline around it -------------------------------------------------------

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        samples = check_input(samples)
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        geometry = get_geometry(config.geometry)
        device = dsp.resolve_device(config.device)
        self.prepare(device)
        channels, n = samples.shape
        tiles: list[torch.Tensor] = []
        scales: list[float] = []
        for ch in range(channels):
            images, scale = dsp.spectrogram_image(torch.from_numpy(samples[ch]).to(device), geometry, config.image,
                                                  chunk_frames=self.tile_frames,
                                                  progress=("frames measured", "frames analysed"))
            if scale.top_db > dsp.TOP_DB_RANGE[1]:
                raise AudioError(
                    f"The audio peaks at {scale.top_db:.0f} dB in the spectrogram, above the {dsp.TOP_DB_RANGE[1]:g} dB "
                    f"an image can record (samples far beyond full scale); scale it down first."
                )
            scales.append(scale.top_db)
            tiles += images
        with torch.inference_mode():
            blobs, extra = self.compress_tiles(tiles, n / PIPELINE_SAMPLE_RATE)
        parts: list[bytes] = []
        for blob in blobs:
            parts.append(struct.pack("<I", len(blob)))
            parts.append(blob)
        params = {
            "geometry": geometry.name,
            "tile_frames": self.tile_frames,
            "top_db": scales,
            "dynamic_range_db": config.image.dynamic_range_db,
            **extra,
        }
        return Encoded(self.name, self.version, PIPELINE_SAMPLE_RATE, n, channels, params, b"".join(parts),
                       model=self.model_id())

    def check_header(self, encoded: Encoded) -> None:
        """The checks every spectrogram stream's header passes first: the codec version, the
        codec's name, the model, and 1 or 2 channels of at least one sample at the pipeline rate.

        Raises:
            BitstreamError: a newer codec version.
            InvalidStreamError: another codec's stream, another model's, or an impossible shape.
        """
        self._check_version(encoded)
        if encoded.codec != self.name:
            raise InvalidStreamError(f"a {encoded.codec} stream cannot be decoded as {self.name}")
        self.check_model(encoded)
        if encoded.sample_rate != PIPELINE_SAMPLE_RATE or not 1 <= encoded.channels <= 2 or encoded.n_samples < 1:
            raise InvalidStreamError(
                f"the {self.name} stream holds {encoded.channels} channel(s) of {encoded.n_samples} samples at "
                f"{encoded.sample_rate} Hz; it needs 1 or 2 channels of at least one sample at {PIPELINE_SAMPLE_RATE} Hz"
            )

    def check_stream(self, encoded: Encoded) -> StreamLayout:
        """Validate the header against this codec's declared ranges and the payload's tile
        table, before anything is allocated: :meth:`check_header`, the geometry, the tile
        size, one finite ``top_db`` per channel within the image mapping's range, the
        dynamic range, and exactly one tile per ``tile_frames`` frames of ``n_samples``.

        Raises:
            BitstreamError: a newer codec version.
            InvalidStreamError: any other value out of range or not fitting the payload or model.
        """
        self.check_header(encoded)
        geometry = get_geometry(header_params.choice(encoded, "geometry", self.geometries()))
        tile = header_params.choice(encoded, "tile_frames", [self.tile_frames])
        tops = header_params.numbers(encoded, "top_db", encoded.channels, *dsp.TOP_DB_RANGE, unit=" dB")
        drange = header_params.number(encoded, "dynamic_range_db", *self.dynamic_range_db_range, unit=" dB")
        n_frames = geometry.frames_for(dsp.padded_length(encoded.n_samples, geometry))
        expected = encoded.channels * -(-n_frames // tile)
        spans = tile_spans(encoded, expected, self.name, f"{expected} tile(s) of {tile} frames")
        return StreamLayout(geometry, [tile], [[top] for top in tops], drange, spans)

    def decode_images(self, encoded: Encoded, device: torch.device) -> Iterator[tuple[int, torch.Tensor, dsp.ImageScale]]:
        """Yield (channel, image (bins, frames) float32 on ``device``, scale) per channel."""
        layout = self.check_stream(encoded)
        geometry, (tile,) = layout.geometry, layout.tile_frames
        self.prepare(device)
        self.begin_decode(encoded.params)
        n_frames = geometry.frames_for(dsp.padded_length(encoded.n_samples, geometry))
        view = memoryview(encoded.payload)
        blobs = iter(layout.spans)
        for ch in range(encoded.channels):
            image = torch.empty(geometry.bins, n_frames, dtype=torch.float32, device=device)
            for t0, t1 in _tiles(n_frames, tile):
                job.report(t0, n_frames, "frames decoded")
                at, size = next(blobs)
                with torch.inference_mode():
                    image[:, t0:t1] = self.decompress_image(bytes(view[at: at + size]), (geometry.bins, t1 - t0), device)
            yield ch, image, dsp.ImageScale(top_db=layout.top_db[ch][0], dynamic_range_db=layout.dynamic_range_db)

    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        return job.drive(self.decode_steps(encoded, config))

    def decode_steps(self, encoded: Encoded, config: PipelineConfig) -> Generator[Progress, None, np.ndarray]:
        """:meth:`decode` as a generator: yields phase-reconstruction progress (frames of the
        current channel) and returns the samples; closing it between blocks stops the work."""
        geometry = self.check_stream(encoded).geometry  # before the output is allocated
        device = dsp.resolve_device(config.device)
        out = np.empty((encoded.channels, encoded.n_samples), dtype=np.float32)
        length = dsp.padded_length(encoded.n_samples, geometry)
        offset = geometry.window_length // 2
        for ch, image, scale in self.decode_images(encoded, device):
            def magnitude_frames(start: int, stop: int, image: torch.Tensor = image,
                                 scale: dsp.ImageScale = scale) -> torch.Tensor:
                return dsp.image_to_magnitude(image[:, start:stop], scale)

            y = yield from invert_magnitude(magnitude_frames, image.shape[1], length, geometry, config, device=device)
            out[ch] = y[offset: offset + encoded.n_samples].cpu().numpy()
        return out

    def _check_version(self, encoded: Encoded) -> None:
        if encoded.codec_version > self.version:
            raise BitstreamError(
                f"The stream was written by {encoded.codec} version {encoded.codec_version}; this mosapp reads "
                f"up to version {self.version}: update mosapp."
            )


class PghiOnly(SpectrogramCodec):
    """The magnitude image kept (float16, zlib-compressed): only the phase is rebuilt."""

    name = "pghi-only"
    family = "pghi-only"
    version = 1
    nominal_kbps = None
    description = 'the seed\'s upper bound: spectrogram kept losslessly (float16), phase rebuilt by the phase backend'

    def compress_image(self, image: torch.Tensor) -> bytes:
        return zlib.compress(image.to(torch.float16).cpu().numpy().tobytes(), 6)

    def decompress_image(self, data: bytes, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        # Bounded: a tile never inflates past the image its header announces (a "zlib bomb" is refused).
        raw = inflate_exact(data, 2 * shape[0] * shape[1], "The pghi-only payload")
        arr = np.frombuffer(raw, dtype=np.float16).reshape(shape)
        return torch.from_numpy(arr.astype(np.float32)).to(device)


register_family("pghi-only", lambda name: PghiOnly() if name == "pghi-only" else None, lambda: ["pghi-only"])
