"""The thesis' neural baselines as conditions: EnCodec (``encodec-N``) and the Descript Audio Codec (``dac-N``).

Both run the published models with their published weights:

========  =========================  ==========  =========================================  ==============
family    weights (model hub repo)   model rate  rates offered (codebooks × 10 bits × fps)  thesis
========  =========================  ==========  =========================================  ==============
encodec   ``facebook/encodec_24khz`` 24 kHz      1.5, 3, 6, 12, 24 kbit/s (2–32 × 75 fps)   ``encodec-12``
dac       ``descript/dac_44khz``     44.1 kHz    6.0 (7 codebooks), 7.8 (9) at 86.13 fps     ``dac-8``
========  =========================  ==========  =========================================  ==============

**The implementation** is ``transformers``' ``EncodecModel`` and ``DacModel`` (the ports the
authors' hub repositories hold weights for). The authors' own packages (``encodec``,
``descript-audio-codec``) import ``torchaudio``, whose releases each pin one torch version and
none pins the torch 2.13 mosapp is built on; ``transformers`` needs no torchaudio. It is the
``baselines`` install extra (``pip install -e .[baselines]``; ``scripts/setup`` installs it).

**Where the weights come from**, in this order (nothing is downloaded at run time):

1. ``$MOSAPP_BASELINES_DIR/<repo name>/`` (``encodec_24khz/``, ``dac_44khz/``): a folder with the
   repository's ``config.json`` and ``model.safetensors`` (what ``save_pretrained`` writes);
2. the Hugging Face cache (``~/.cache/huggingface/hub``, or ``$HF_HOME``), where
   ``huggingface_hub.snapshot_download`` puts them: on a connected machine,
   ``python -c "from huggingface_hub import snapshot_download; snapshot_download('facebook/encodec_24khz')"``.

Without them :meth:`availability` is False with one sentence saying where mosapp looked and the
command that fetches them.

**Coding.** The input (mono or each channel of stereo) is resampled to the model's rate (soxr,
as every codec here), zero-padded to a whole number of the model's frames, encoded to codebook
indices, and the indices are packed at exactly ``log2(codebook size)`` = 10 bits each, as the
model transmits them (no entropy coding): the payload is ``channels × codebooks × frames × 10``
bits, so the file's kbps is the model's nominal rate plus the container's header. Decoding
unpacks the indices, runs the model's decoder, resamples back to 44.1 kHz and crops to the
input's length; both models keep their output aligned with the input (no delay to undo).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mosapp.codecs import register_family
from mosapp.codecs.base import Availability, Encoded, file_model_id
from mosapp.codecs.classic.common import ClassicCodec, check_audio, fit
from mosapp.core.audio import resample
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig
from mosapp.core.dsp import resolve_device
from mosapp.core.errors import InvalidStreamError, ModelError
from mosapp.models import hub

#: Folder of local weights (``<dir>/encodec_24khz``, ``<dir>/dac_44khz``).
ENV_DIR = hub.ENV_DIR
#: Bits per transmitted index (codebooks of 1024 entries).
INDEX_BITS = 10


@dataclass(frozen=True)
class Model:
    """One published model and what its streams look like."""

    family: str
    repo: str
    rate: int
    frame_hop: int
    #: Offered points: name suffix → codebooks.
    points: dict[str, int]

    @property
    def folder_name(self) -> str:
        return self.repo.split("/")[-1]

    @property
    def frames_per_second(self) -> float:
        return self.rate / self.frame_hop

    def kbps(self, codebooks: int) -> float:
        return codebooks * INDEX_BITS * self.frames_per_second / 1000.0


ENCODEC = Model("encodec", "facebook/encodec_24khz", 24_000, 320,
                {"1.5": 2, "3": 4, "6": 8, "12": 16, "24": 32})
DAC = Model("dac", "descript/dac_44khz", 44_100, 512, {"6": 7, "8": 9})
MODELS = {m.family: m for m in (ENCODEC, DAC)}

_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def find_weights(model: Model) -> Path | None:
    """The first folder holding the model's config and weights, or None (:func:`mosapp.models.hub.find`)."""
    return hub.find(model.repo)


def transformers_missing() -> str | None:
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("transformers") is None:
        return "the Python package transformers is not installed (pip install -e '.[baselines]', or scripts/setup)"
    return None


def load_model(model: Model, device: torch.device) -> Any:
    """The model with its weights, on ``device`` (cached per folder and device).

    Raises:
        ModelError: no weights, or they cannot be loaded as the model.
    """
    folder = find_weights(model)
    if folder is None:
        raise ModelError(missing_message(model))
    key = (str(folder), str(device))
    with _LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    from mosapp.models._torchvision import ensure_importable  # noqa: PLC0415 — transformers imports torchvision

    ensure_importable()
    import transformers  # noqa: PLC0415 — a 6 s import: only when a baseline codes

    cls = transformers.EncodecModel if model.family == "encodec" else transformers.DacModel
    try:
        net = cls.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"The {model.family} weights in {folder} cannot be loaded as {model.repo} "
                         f"({str(exc).splitlines()[0]}).") from None
    if int(getattr(net.config, "sampling_rate", 0)) != model.rate:
        raise ModelError(f"The weights in {folder} are for {net.config.sampling_rate} Hz, not {model.repo}'s "
                         f"{model.rate} Hz; put {model.repo} there.")
    net = net.to(device).eval()
    with _LOCK:
        _CACHE[key] = net
    return net


def missing_message(model: Model) -> str:
    return hub.missing(model.repo, "the weights of")


def pack_indices(codes: np.ndarray) -> bytes:
    """Indices (any shape, each < 2**INDEX_BITS) as a big-endian bit string, INDEX_BITS bits each."""
    flat = np.asarray(codes, dtype=np.int64).ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= 1 << INDEX_BITS):
        raise ValueError("a codebook index does not fit in 10 bits")
    bits = ((flat[:, None] >> np.arange(INDEX_BITS - 1, -1, -1)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel()).tobytes()


def unpack_indices(data: bytes, count: int) -> np.ndarray:
    """``count`` indices from :func:`pack_indices`'s bytes."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * INDEX_BITS].reshape(count, INDEX_BITS)
    return (bits.astype(np.int64) << np.arange(INDEX_BITS - 1, -1, -1)).sum(axis=1)


class BaselineCodec(ClassicCodec):
    """``encodec-N`` / ``dac-N``: a published neural audio codec at one of its rates."""

    version = 1

    def __init__(self, model: Model, point: str) -> None:
        self.spec = model
        self.family = model.family
        self.codebooks = model.points[point]
        self.name = f"{model.family}-{point}"
        self.nominal_kbps = round(model.kbps(self.codebooks), 2)
        label = "EnCodec" if model.family == "encodec" else "Descript Audio Codec"
        self.description = (f"{label} ({model.repo}, {model.rate / 1000:g} kHz) with {self.codebooks} codebooks: "
                            f"{self.nominal_kbps:g} kbit/s of 10-bit indices")

    def availability(self) -> Availability:
        why = transformers_missing()
        if why is None and find_weights(self.spec) is None:
            why = missing_message(self.spec)
        return Availability(why is None, "" if why is None else f"{self.name} cannot run here: {why}.")

    def model_id(self) -> str | None:
        folder = find_weights(self.spec)
        weights = hub.weights_file(folder) if folder is not None else None
        return file_model_id(weights) if weights is not None else None

    def _net(self, config: PipelineConfig) -> tuple[Any, torch.device]:
        availability = self.availability()
        if not availability.ok:
            raise ModelError(availability.reason)
        device = resolve_device(config.device)
        return load_model(self.spec, device), device

    def encode(self, samples: np.ndarray, config: PipelineConfig) -> Encoded:
        x = check_audio(samples, self.name)
        net, device = self._net(config)
        m = self.spec
        y = resample(x, PIPELINE_SAMPLE_RATE, m.rate) if m.rate != PIPELINE_SAMPLE_RATE else x
        frames = max(1, math.ceil(y.shape[1] / m.frame_hop))
        padded = np.zeros((y.shape[0], frames * m.frame_hop), dtype=np.float32)
        padded[:, : y.shape[1]] = y
        with torch.no_grad():
            batch = torch.from_numpy(padded)[:, None, :].to(device)  # channels as the batch
            if m.family == "encodec":
                codes = net.encode(batch, bandwidth=m.kbps(self.codebooks)).audio_codes[0]  # (channels, n_q, frames)
            else:
                codes = net.encode(batch, n_quantizers=self.codebooks).audio_codes[:, : self.codebooks]
        codes = codes.cpu().numpy()
        if codes.shape != (y.shape[0], self.codebooks, frames):
            raise ModelError(f"The {m.repo} model gave codes of shape {codes.shape}, not "
                             f"{(y.shape[0], self.codebooks, frames)}: these are not its weights.")
        payload = pack_indices(codes)
        return Encoded(codec=self.name, codec_version=self.version, sample_rate=PIPELINE_SAMPLE_RATE,
                       n_samples=x.shape[1], channels=x.shape[0],
                       params={"frames": frames, "codebooks": self.codebooks}, payload=payload,
                       model=self.model_id())

    def decode(self, encoded: Encoded, config: PipelineConfig) -> np.ndarray:
        self._check_encoded(encoded)
        m = self.spec
        frames, codebooks = encoded.params.get("frames"), encoded.params.get("codebooks")
        expected = math.ceil(encoded.n_samples * m.rate / PIPELINE_SAMPLE_RATE / m.frame_hop)
        if not isinstance(frames, int) or isinstance(frames, bool) or frames != max(1, expected) \
                or codebooks != self.codebooks:
            raise InvalidStreamError(f"the {self.name} stream's frames or codebooks ({frames}, {codebooks}) do not "
                                     f"match its length and rate")
        count = encoded.channels * codebooks * frames
        if len(encoded.payload) != math.ceil(count * INDEX_BITS / 8):
            raise InvalidStreamError(f"the {self.name} payload holds {len(encoded.payload)} bytes, not the "
                                     f"{math.ceil(count * INDEX_BITS / 8)} its indices take")
        codes = unpack_indices(encoded.payload, count).reshape(encoded.channels, codebooks, frames)
        net, device = self._net(config)
        with torch.no_grad():
            c = torch.from_numpy(codes).to(device)
            if m.family == "encodec":
                out = net.decode(c[None], [None]).audio_values[:, 0]  # (channels, samples)
            else:
                out = net.decode(audio_codes=c).audio_values
        y = out.float().cpu().numpy().reshape(encoded.channels, -1)
        if m.rate != PIPELINE_SAMPLE_RATE:
            y = resample(y, m.rate, PIPELINE_SAMPLE_RATE)
        return fit(y, encoded.n_samples)


def _factory(name: str) -> BaselineCodec | None:
    family, _, point = name.partition("-")
    model = MODELS.get(family)
    if model is None or point not in model.points:
        return None
    return BaselineCodec(model, point)


def _advertised(model: Model) -> Callable[[], list[str]]:
    return lambda: [f"{model.family}-{p}" for p in model.points]


for _model in (ENCODEC, DAC):
    register_family(_model.family, _factory, _advertised(_model))

__all__ = ["DAC", "ENCODEC", "ENV_DIR", "BaselineCodec", "Model", "find_weights", "load_model",
           "pack_indices", "unpack_indices"]
