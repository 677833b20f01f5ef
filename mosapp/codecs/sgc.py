"""``sgc-<rate>``: the compact spectrogram codec shipped in ``assets/models/``.

Two generations share the family, told apart by the model card:

* ``sgc-6``, ``sgc-12``, ``sgc-24`` (the shipped codec, codec version 2): the **two-band**
  representation (:mod:`mosapp.codecs.twoband`): a low image (0–1378 Hz on a 10.8 Hz ×
  11.6 ms lattice at 5512.5 Hz) and a high image (the thesis lattice), one network each
  (:class:`mosapp.models.sgc_net.TwoBandHyperprior`); the three operating points share one
  network (``sgc4.pt``, the fourth training round's block transforms, trained at a range of
  latent steps) and differ in target rate and in the share of the bits the low band gets
  (``rate_control`` in the card; the avif/webp/jpeg family splits its bits the same way).
  Streams written by an earlier round's weights (``sgc2.pt``; the third round's
  ``sgc3-6/12/24.pt``, one network per point) decode with those weights (:func:`earlier_weights`);
* ``sgc-thesis-6``, ``sgc-thesis-12``, ``sgc-thesis-24`` (codec version 1, the "seed-like"
  baseline): one network on the seed's thesis image.

Weights may carry the decoder's level maps (:mod:`mosapp.codecs.levelmap`, fitted by ``mosapp train
--calibrate``): a correction of each decoded band image's levels by row, level and latent step,
applied before the phase is rebuilt (:meth:`SgcTwoBandCodec.adjust_band`). The shipped
``sgc6c.pt`` is ``sgc6.pt`` with them; ``sgc6.pt``'s streams decode with ``sgc6.pt``, as before.

Each operating point is a weights file ``assets/models/<name>.pt`` (written by ``mosapp
train``) next to its model card ``<name>.json`` (geometry, training data, steps, loss
weights, measured kbps and quality on held-out music). The registry advertises every card
it finds there, so a newly trained operating point appears in ``mosapp codecs`` and can be
named by a study without code changes. ``MOSAPP_MODELS_DIR`` adds a folder searched first.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from mosapp.codecs import register_family
from mosapp.codecs.base import Availability, Encoded, file_model_id
from mosapp.codecs.levelmap import read_level_maps
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.codecs.twoband import DEFAULT_LOW_SHARE, TwoBandCodec
from mosapp.core import job
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError, InvalidStreamError, ModelError
from mosapp.models.card import STEP_RANGE, ModelCard, RateControl, name_kbps
from mosapp.models.weights import load_weights

if TYPE_CHECKING:
    from mosapp.models.sgc_net import AnalysedTile, SpectrogramHyperprior, TwoBandHyperprior

#: Shipped weights and cards.
ASSETS_MODELS = Path(__file__).resolve().parent.parent.parent / "assets" / "models"


def model_dirs() -> list[Path]:
    extra = os.environ.get("MOSAPP_MODELS_DIR")
    return ([Path(extra)] if extra else []) + [ASSETS_MODELS]


def read_card(name: str) -> ModelCard | None:
    """The model card of ``name`` from the first models folder that has it (its ``path`` set), or None.

    Raises:
        ModelError: the card cannot be read.
    """
    for d in model_dirs():
        p = d / f"{name}.json"
        if p.is_file():
            return ModelCard.read(p)
    return None


def advertised() -> list[str]:
    names: set[str] = set()
    for d in model_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("sgc-*.json"))

    def rate(n: str) -> tuple[int, float, str]:
        kbps = name_kbps(n)
        return n.count("-"), float("inf") if kbps is None else kbps, n

    return sorted(names, key=rate)


def _net() -> ModuleType:
    """:mod:`mosapp.models.sgc_net`, imported on first use of a network: it loads compressai
    (about 1.5 s), which listing the codecs (the registry imports this module) does not need."""
    from mosapp.models import sgc_net  # noqa: PLC0415 — compressai loads only when an sgc network is used

    return sgc_net


_LOCK = threading.Lock()

#: A rate-controlled two-band stream's payload bitrate over its point's target, where neither
#: bound of :data:`STEP_RANGE` held it (measured: 0.88-1.01 on 2-40 s clips; the planner's
#: estimate is within a few per cent, the tile lengths and short clips' overhead the rest).
RATE_FIT = (0.6, 1.35)
#: Streams shorter than this are not held to :data:`RATE_FIT` (the overhead dominates).
RATE_FIT_MIN_SECONDS = 1.0
#: Bytes a stream spends outside the tiles' entropy-coded data (container, header, tile
#: lengths), budgeted when planning: measured on typical clips (container version 2 adds
#: the model identifier and the binding digest, 46 bytes).
OVERHEAD_BYTES = 276


def finest_step(bits: Callable[[float], float], budget: float) -> float:
    """The finest latent quantisation step in :data:`STEP_RANGE` whose ``bits(step)`` fit ``budget``.

    Bits fall monotonically as the step grows: 14 bisections in log-step, the result
    rounded to 5 decimals. Content that fits even at the finest step gets the finest, and
    content that does not fit at the coarsest gets the coarsest (the stream is then below
    or above the budget). ``bits`` is called 16 times at most.
    """
    if bits(STEP_RANGE[0]) <= budget:
        return STEP_RANGE[0]
    if bits(STEP_RANGE[1]) >= budget:
        return STEP_RANGE[1]
    lo, hi = math.log(STEP_RANGE[0]), math.log(STEP_RANGE[1])
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        if bits(math.exp(mid)) > budget:
            lo = mid
        else:
            hi = mid
    return round(math.exp(hi), 5)


def plan_step(model: SpectrogramHyperprior, analysed: list[AnalysedTile], target_kbps: float, seconds: float) -> float:
    """The latent quantisation step whose estimated bits meet ``target_kbps`` over ``seconds``
    (:func:`finest_step` on the likelihood estimate :func:`mosapp.models.sgc_net.estimated_bits`,
    within a few per cent of the coder's output)."""
    estimated_bits = _net().estimated_bits
    budget = target_kbps * 1000.0 * seconds - 8 * (OVERHEAD_BYTES + 8 * len(analysed))

    tried = 0

    def bits(step: float) -> float:
        nonlocal tried
        job.report(tried, 16, "rate-control steps")
        tried += 1
        total = 0.0
        for a in analysed:
            job.check()
            total += estimated_bits(model, a, step)
        return total

    return finest_step(bits, budget)


@lru_cache(maxsize=8)
def _load_model(weights: str, device: str) -> SpectrogramHyperprior | TwoBandHyperprior:
    state = load_weights(weights)
    arch = state.get("arch")
    if not arch:
        raise ModelError(f"{weights} is a training checkpoint, not exported weights; export it with mosapp train.")
    model = _net().build_network(arch)
    try:
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelError(f"The weights in {weights} do not fit the sgc network ({first}).") from None
    model.update(force=False)
    try:
        #: The decoder's level maps (:mod:`mosapp.codecs.levelmap`; weights without them decode as before).
        model.level_maps = read_level_maps(state.get("level_maps"), weights)
    except ValueError as exc:
        raise ModelError(f"{exc}.") from None
    return model.eval().to(device)


class _OperatingPoint:
    """What both generations share: the model card read by name, the weights file it names,
    and the network loaded from it (once per weights file and device)."""

    name: str
    card: ModelCard
    _model: SpectrogramHyperprior | TwoBandHyperprior | None

    def _read_card(self, name: str) -> ModelCard:
        """Set ``name`` and ``card`` (an empty one, without a path, when there is none); returns the card."""
        self.name = name
        self.card = read_card(name) or ModelCard(name=name)
        self._model = None
        return self.card

    @property
    def card_path(self) -> Path | None:
        return self.card.path

    @property
    def weights_path(self) -> Path | None:
        return self.card.weights_path()

    def _trained_how(self) -> str:
        """The card's training in words: "N training steps", or "N steps finetuned from <init>"."""
        card = self.card
        return (f"{card.steps} steps finetuned from {Path(card.init).stem}" if card.init
                else f"{card.steps} training steps")

    def model_id(self) -> str | None:
        """:func:`~mosapp.codecs.base.file_model_id` of the weights file (None while it is missing)."""
        w = self.weights_path
        return file_model_id(w) if w is not None and w.is_file() else None

    def availability(self) -> Availability:
        w = self.weights_path
        if w is None:
            return Availability(False, f"There is no model card {self.name}.json in {', '.join(map(str, model_dirs()))}.")
        if not w.is_file():
            return Availability(False, f"The weights file {w} named by {self.card_path} is missing.")
        return Availability(True)

    def prepare(self, device: torch.device) -> None:
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        with _LOCK:
            self._model = _load_model(str(self.weights_path), str(device))

    def _loaded(self) -> SpectrogramHyperprior | TwoBandHyperprior:
        if self._model is None:
            raise ModelError(f"{self.name} codes nothing before prepare() has loaded its weights.")
        return self._model


class SgcCodec(_OperatingPoint, SpectrogramCodec):
    """A trained operating point of the compact spectrogram codec."""

    family = "sgc"
    version = 1
    tile_frames = 2048

    def __init__(self, name: str) -> None:
        card = self._read_card(name)
        #: The rate the encoder aims at: the number in the name (sgc-12 → 12 kbps).
        self.target_kbps: float | None = name_kbps(name)
        self.nominal_kbps = self.target_kbps or (card.measured or {}).get("kbps")
        self.geometry = card.geometry
        self.description = f"compact spectrogram codec ({self.geometry} geometry, {self._trained_how()}; rate-controlled)"

    @property
    def network(self) -> SpectrogramHyperprior:
        """The thesis-image network (weights of codec version 1)."""
        return cast("SpectrogramHyperprior", self._loaded())

    def geometries(self) -> tuple[str, ...]:
        return (self.geometry,)

    def compress_image(self, image: torch.Tensor) -> bytes:
        return cast(bytes, _net().compress_tile(self.network, image))

    def compress_tiles(self, tiles: list[torch.Tensor], seconds: float) -> tuple[list[bytes], dict]:
        """Rate control: one latent quantisation step for the whole clip, chosen so the
        stream lands on the operating point's bitrate (:func:`plan_step`)."""
        net, model = _net(), self.network
        analysed = []
        for i, tile in enumerate(tiles):
            job.report(i, len(tiles), "tiles analysed")
            analysed.append(net.analyse_tile(model, tile))
        step = plan_step(model, analysed, self.target_kbps, seconds) if self.target_kbps else 1.0
        blobs = []
        for i, a in enumerate(analysed):
            job.report(i, len(analysed), "tiles coded")
            blobs.append(net.code_tile(model, a, step))
        return blobs, {"step": step}

    def begin_decode(self, params: dict) -> None:
        step = params.get("step", 1.0)
        if not isinstance(step, (int, float)) or isinstance(step, bool):
            raise BitstreamError(f"The {self.name} stream's quantisation step is not a number.")
        self._step = float(step)
        if not (STEP_RANGE[0] <= self._step <= STEP_RANGE[1]):
            raise BitstreamError(f"The {self.name} stream's quantisation step {self._step} is out of range.")

    def decompress_image(self, data: bytes, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        try:
            return cast(torch.Tensor, _net().decompress_tile(self.network, data, shape[0], shape[1], device,
                                                             getattr(self, "_step", 1.0)))
        except (ValueError, RuntimeError, IndexError) as exc:
            raise BitstreamError(f"The {self.name} payload is damaged ({exc}).") from None

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        if config.geometry != self.geometry:
            config = replace(config, geometry=self.geometry)
        return super().encode(samples, config)


def plan_steps(model: TwoBandHyperprior, low: list[AnalysedTile], high: list[AnalysedTile], target_kbps: float,
               seconds: float, low_share: float, overhead_bytes: int,
               row_multipliers: tuple[list[float], list[float]] = ([], []),
               high_step_ratio: float | None = None) -> tuple[float, float]:
    """(low step, high step) of a two-band clip. Estimates are
    :func:`mosapp.models.sgc_net.estimated_bits` (within a few per cent of the coder's). A band's
    ``row_multipliers`` (one per latent row, or none) scale its step row by row
    (:func:`mosapp.models.sgc_net.row_steps`); the step planned is the one they multiply.

    With a ``high_step_ratio``, the two steps keep that ratio (high = ratio x low, within
    :data:`STEP_RANGE`) and the :func:`finest_step` pair whose bits fit the whole budget is chosen,
    so a clip with a busier high band gives it more of the bits, not a fixed share: coding both
    bands at a fixed ratio of steps spends each band's bits where they buy about the same
    distortion, which is what the networks' training loss weighed. Without one, as the image codecs
    share their budget (:mod:`mosapp.codecs.image`): ``low_share`` of the bits to the low band, at
    the :func:`finest_step` that fits; the rest, including what the low band leaves unused, to the
    high band, the same way."""
    sgc_net = _net()
    budget = target_kbps * 1000.0 * seconds - 8 * (overhead_bytes + 8 * (len(low) + len(high)))

    def band_bits(net: SpectrogramHyperprior, tiles: list[AnalysedTile], rows: list[float]) -> Callable[[float], float]:
        def bits(step: float) -> float:
            job.check()
            return float(sum(sgc_net.estimated_bits(net, a, sgc_net.row_steps(step, rows)) for a in tiles))

        return bits

    low_bits = band_bits(model.low, low, row_multipliers[0])
    high_bits = band_bits(model.high, high, row_multipliers[1])
    if high_step_ratio is not None:
        def high_step(s_low: float) -> float:
            return min(max(high_step_ratio * s_low, STEP_RANGE[0]), STEP_RANGE[1])

        s_low = finest_step(lambda s: low_bits(s) + high_bits(high_step(s)), budget)
        return s_low, round(high_step(s_low), 5)
    s_low = finest_step(low_bits, low_share * budget)
    s_high = finest_step(high_bits, budget - low_bits(s_low))
    return s_low, s_high


class SgcTwoBandCodec(_OperatingPoint, TwoBandCodec):
    """A trained operating point of the two-band compact spectrogram codec (codec version 2)."""

    family = "sgc"
    version = 2
    #: Bytes outside the tiles' entropy-coded data (container, header, tile lengths), budgeted when planning.
    overhead_bytes = 330

    def __init__(self, name: str) -> None:
        card = self._read_card(name)
        rc = card.rate_control or RateControl()
        self.target_kbps: float | None = float(rc.target_kbps or name_kbps(name) or 0) or None
        self.low_share = DEFAULT_LOW_SHARE if rc.low_share is None else rc.low_share
        try:
            #: How much coarser the high image's upper rows are coded (:func:`high_row_multipliers`; 0: one step).
            self.high_row_slope = row_slope(rc.high_row_slope, f"The {name} model card's")
            #: The high band's step over the low band's (:func:`plan_steps`), or None: ``low_share`` of the bits.
            self.high_step_ratio = step_ratio(rc.high_step_ratio, f"The {name} model card's")
        except ValueError as exc:
            raise ModelError(f"{exc}.") from None
        self.row_multipliers: tuple[list[float], list[float]] = ([], high_row_multipliers(self.high_row_slope))
        self.nominal_kbps = self.target_kbps
        transform = ("learned block transforms and hyperpriors" if card.transform == "klt"
                     else "hyperprior autoencoders")
        if card.context == "temporal":
            transform += " with temporal contexts"
        self.description = (f"compact spectrogram codec, two-band (low band 0-1.4 kHz at 10.8 Hz x 11.6 ms, high band "
                            f"on the thesis lattice; {transform}; {self._trained_how()}; rate-controlled)")
        self._steps = (1.0, 1.0)
        self._rows: tuple[list[float], list[float]] = ([], [])
        self._earlier: dict[str, Path | None] = {}

    def _earlier_weights(self, encoded: Encoded) -> Path | None:
        """The weights of an earlier training round that coded ``encoded`` (:func:`earlier_weights`),
        or None for a stream of this point's own weights or of weights nobody ships. Looked up once
        per identifier: a decode checks the header more than once."""
        if encoded.model is None or encoded.model == self.model_id():
            return None
        if encoded.model not in self._earlier:
            self._earlier[encoded.model] = earlier_weights(encoded.model, two_band=True)
        return self._earlier[encoded.model]

    def check_model(self, encoded: Encoded) -> None:
        """A stream coded with this operating point's weights, or with the weights of an earlier
        training round still shipped (:func:`earlier_weights`), is decoded; any other is refused."""
        if self._earlier_weights(encoded) is None:
            super().check_model(encoded)

    def check_header(self, encoded: Encoded) -> None:
        """:meth:`SpectrogramCodec.check_header`, then whether the stream fits this operating point
        (the points share one network, so the model identifier alone cannot tell them apart):

        * its bitrate: rate control lands a stream whose steps are neither all at the finest nor
          any at the coarsest within :data:`RATE_FIT` of the point's target, so ``sgc-12``
          relabelled ``sgc-6`` (or the reverse) is refused;
        * the earlier weights its ``mi`` names: a per-point round's (``sgc3-6``) only for that
          point, and only weights with a block transform (the fourth round on) for a stream with
          ``high_row_slope``, which no earlier stream carries.

        Raises:
            InvalidStreamError: as above (one sentence, for "… is not a valid mosapp file: …").
        """
        super().check_header(encoded)
        earlier = self._earlier_weights(encoded)
        if earlier is not None:
            try:
                card = ModelCard.read(earlier.with_suffix(".json"))
            except ModelError:
                card = ModelCard(name=earlier.stem)
            trained_for = name_kbps(card.name)
            if trained_for is not None and self.target_kbps is not None and trained_for != self.target_kbps:
                raise InvalidStreamError(
                    f"the stream names the weights {earlier.stem} (model {encoded.model}), trained for "
                    f"{trained_for:g} kbit/s, but {self.name} codes at {self.target_kbps:g} kbit/s")
            if "high_row_slope" in encoded.params and card.transform != "klt":
                raise InvalidStreamError(
                    f"the stream has a high_row_slope, which the weights it names ({earlier.stem}, model "
                    f"{encoded.model}) never coded with")
        steps = encoded.params.get("step")
        if (self.target_kbps is None or encoded.seconds < RATE_FIT_MIN_SECONDS or not isinstance(steps, list)
                or len(steps) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in steps)):
            return  # begin_decode refuses malformed steps
        kbps = encoded.payload_kbps
        lo, hi = RATE_FIT
        if all(v > STEP_RANGE[0] for v in steps) and kbps < lo * self.target_kbps:
            raise InvalidStreamError(
                f"the stream's payload is {kbps:.1f} kbit/s with its steps above the finest, so it was rate-"
                f"controlled to less than {self.name}'s {self.target_kbps:g} kbit/s (another operating point's stream)")
        if all(v < STEP_RANGE[1] for v in steps) and kbps > hi * self.target_kbps:
            raise InvalidStreamError(
                f"the stream's payload is {kbps:.1f} kbit/s with its steps below the coarsest, more than "
                f"{self.name}'s {self.target_kbps:g} kbit/s allows (another operating point's stream)")

    def prepare_decode(self, encoded: Encoded, device: torch.device) -> None:
        """:meth:`prepare`, then, for a stream of an earlier training round, the weights it was coded with."""
        self.prepare(device)
        earlier = self._earlier_weights(encoded)
        if earlier is not None:
            with _LOCK:
                self._model = _load_model(str(earlier), str(device))

    @property
    def network(self) -> TwoBandHyperprior:
        """The two networks, one per band image (weights of codec version 2)."""
        return cast("TwoBandHyperprior", self._loaded())

    def compress_bands(self, low: list[torch.Tensor], high: list[torch.Tensor], seconds: float
                       ) -> tuple[list[bytes], list[bytes], dict]:
        sgc_net, model = _net(), self.network
        tiles = [(model.low, t, "low") for t in low] + [(model.high, t, "high") for t in high]
        analysed = []
        for i, (net, tile, band) in enumerate(tiles):
            job.report(i, len(tiles), "tiles analysed")
            analysed.append(sgc_net.analyse_tile(net, tile, sgc_net.BAND_ROWS[band]))
        a_low, a_high = analysed[:len(low)], analysed[len(low):]
        if self.target_kbps:
            s_low, s_high = plan_steps(model, a_low, a_high, self.target_kbps, seconds, self.low_share,
                                       self.overhead_bytes + (SLOPE_PARAM_BYTES if self.high_row_slope else 0),
                                       self.row_multipliers, self.high_step_ratio)
        else:
            s_low = s_high = 1.0
        steps = (sgc_net.row_steps(s_low, self.row_multipliers[0]), sgc_net.row_steps(s_high, self.row_multipliers[1]))
        coded = []
        for i, a in enumerate(analysed):
            job.report(i, len(analysed), "tiles coded")
            low_tile = i < len(low)
            coded.append(sgc_net.code_tile(model.low if low_tile else model.high, a, steps[0 if low_tile else 1]))
        params: dict[str, Any] = {"step": [s_low, s_high]}
        if self.high_row_slope:
            params["high_row_slope"] = self.high_row_slope
        return coded[:len(low)], coded[len(low):], params

    def _stream_params(self, encoded: Encoded) -> tuple[list[int], list[list[float]], float]:
        if encoded.codec_version < 2:
            raise BitstreamError(
                f"The stream was written by the first-generation {encoded.codec} (one thesis image, codec version "
                f"{encoded.codec_version}); this mosapp's {self.name} is the two-band codec, and the first generation's "
                f"weights are {self.name.replace('sgc-', 'sgc-thesis-', 1)}.")
        return super()._stream_params(encoded)

    def begin_decode(self, params: dict) -> None:
        raw = params.get("step")
        # A list of two numbers: a string ("12") would iterate as its characters.
        if not isinstance(raw, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raise BitstreamError(f"The {self.name} stream's quantisation steps are missing or not numbers.")
        steps = tuple(float(v) for v in raw)
        if len(steps) != 2 or not all(STEP_RANGE[0] <= v <= STEP_RANGE[1] for v in steps):
            raise BitstreamError(f"The {self.name} stream's quantisation steps {list(steps)} are out of range.")
        self._steps = steps
        try:
            self._rows = ([], high_row_multipliers(row_slope(params.get("high_row_slope"), f"The {self.name} stream's")))
        except ValueError as exc:
            raise BitstreamError(f"{exc}.") from None

    def adjust_band(self, band: str, image: torch.Tensor, dynamic_range_db: float) -> torch.Tensor:
        """The image corrected by the weights' level map for ``band`` at the stream's step, if they have one."""
        level_map = getattr(self.network, "level_maps", {}).get(band)
        if level_map is None:
            return image
        return cast(torch.Tensor, level_map.apply(image, self._steps[0 if band == "low" else 1], dynamic_range_db))

    def decompress_band(self, data: bytes, band: str, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        sgc_net = _net()
        i = 0 if band == "low" else 1
        step = sgc_net.row_steps(self._steps[i], self._rows[i])
        try:
            return cast(torch.Tensor, sgc_net.decompress_tile(self.network.band(band), data, shape[0], shape[1], device,
                                                              step, rows=sgc_net.BAND_ROWS[band]))
        except (ValueError, RuntimeError, IndexError) as exc:
            raise BitstreamError(f"The {self.name} payload is damaged ({exc}).") from None


#: The high image's latent rows (16 image rows of 86.1 Hz each, lowest first).
HIGH_LATENT_ROWS = 16
#: Below this frequency (Hz) a high latent row's step is the lowest row's: the high image is black below 1 kHz.
ROW_SLOPE_FLOOR_HZ = 1300.0
#: The frequency (Hz) whose row's multiplier is 1.
ROW_SLOPE_REFERENCE_HZ = 4000.0
#: What ``"high_row_slope": 0.75,`` adds to a stream's header, budgeted when planning.
SLOPE_PARAM_BYTES = 24
#: Slopes a card or stream may give.
ROW_SLOPE_RANGE = (0.0, 2.0)


def high_row_multipliers(slope: float) -> list[float]:
    """The high image's latent rows' step multipliers for a ``high_row_slope``: row ``r`` (image rows
    16r..16r+15, centre ``f = (16 r + 8) * 44100 / 512`` Hz) gets ``(max(f, 1300) / 4000) ** slope``,
    so a slope of 1 codes the rows at 21 kHz with a step 2.9 times that of the rows below 2 kHz; 0 is
    one step for the whole image. Why: half of the mel distance a listener's ear (and DAC's metric)
    sees above 1 kHz is between 1 and 4 kHz, a fifth of the image's rows."""
    if slope == 0:
        return []
    return [(max((16 * r + 8) * 44100.0 / 512, ROW_SLOPE_FLOOR_HZ) / ROW_SLOPE_REFERENCE_HZ) ** slope
            for r in range(HIGH_LATENT_ROWS)]


def _bounded(value: Any, key: str, bounds: tuple[float, float], what: str) -> float:
    """``value`` (``what``'s ``key``) as a number within ``bounds``, or a ValueError naming both."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {key} {value!r} is not a number") from None
    if not bounds[0] <= number <= bounds[1]:
        raise ValueError(f"{what} {key} {number} is outside {bounds[0]} to {bounds[1]}")
    return number


def row_slope(value: Any, what: str) -> float:
    """``value`` (a card's or stream's ``high_row_slope``; None: 0) as a slope in :data:`ROW_SLOPE_RANGE`.

    Raises:
        ValueError: it is not such a number (``what`` names where it came from in the message).
    """
    return 0.0 if value is None else _bounded(value, "high_row_slope", ROW_SLOPE_RANGE, what)


#: High-to-low step ratios a card may give (the steps themselves stay in :data:`STEP_RANGE`).
STEP_RATIO_RANGE = (0.1, 10.0)


def step_ratio(value: Any, what: str) -> float | None:
    """``value`` (a card's ``high_step_ratio``, a JSON number) as a ratio in :data:`STEP_RATIO_RANGE`,
    or None where absent.

    Raises:
        ValueError: it is not such a number (``what`` names where it came from in the message).
    """
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        raise ValueError(f"{what} high_step_ratio {value!r} is not a number")
    return _bounded(value, "high_step_ratio", STEP_RATIO_RANGE, what)


def earlier_weights(model_id: str, two_band: bool) -> Path | None:
    """The weights file in the models folders (and their ``base/``) whose identifier
    (:func:`~mosapp.codecs.base.file_model_id`) is ``model_id`` and whose card (``<stem>.json``
    next to it) has the same representation, or None.

    A stream keeps the identifier of the weights that coded it, so ``.sgc`` files written by an
    earlier training round of ``sgc-12`` (``assets/models/sgc2.pt``, kept as the start of the next
    round) still decode after the operating point moves to new weights. The weights an operating
    point's card names now are not earlier weights: a stream of ``sgc-12``'s weights relabelled
    ``sgc-6`` stays refused.
    """
    current = set()
    for name in advertised():  # each name's card as the registry reads it (the first folder that has it)
        try:
            found = read_card(name)
        except ModelError:
            continue
        weights = found.weights_path() if found else None
        if weights is not None:
            current.add(weights.resolve())
    for d in model_dirs():
        for weights in sorted(d.glob("*.pt")) + sorted(d.glob("base/*.pt")):
            card = weights.with_suffix(".json")
            if weights.resolve() in current or not card.is_file() or file_model_id(weights) != model_id:
                continue
            try:
                if ModelCard.read(card).is_two_band == two_band:
                    return weights
            except ModelError:
                continue
    return None


def _factory(name: str) -> SgcCodec | SgcTwoBandCodec | None:
    if not name.startswith("sgc-") or name not in advertised():
        return None
    found = read_card(name)
    return SgcTwoBandCodec(name) if found and found.is_two_band else SgcCodec(name)


register_family("sgc", _factory, advertised)
