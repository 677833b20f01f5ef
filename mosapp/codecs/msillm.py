"""MS-ILLM as the image codec of a spectrogram codec (``msillm-q1`` … ``msillm-q6``).

MS-ILLM (Muckley, El-Nouby, Ullrich, Jégou, Verbeek: *Improving Statistical Fidelity for
Neural Image Compression with Implicit Local Likelihood Models*, ICML 2023) is the HiFiC
mean-scale hyperprior autoencoder of ``neuralcompression`` (``HiFiCAutoencoder()`` with
its defaults: 3 image channels, 220 latent and 320 hyper-latent features, 9 residual
blocks; 181 M parameters) fine-tuned with a local-likelihood discriminator. The weights
are built exactly as ``neuralcompression.zoo`` / the repository's ``hubconf.py`` build
them: ``HiFiCAutoencoder()`` plus the bare ``state_dict`` published at
``https://dl.fbaipublicfiles.com/NeuralCompression/2023-muckley-msillm/msillm_target_<bpp>bpp.ckpt``
(CC-BY-NC 4.0), one per target rate:

======  ===========  =======================  ======================================
name    hub entry    target (natural images)  ``nominal_kbps`` (estimate, see below)
======  ===========  =======================  ======================================
q1      quality_1    0.035 bpp                6.2
q2      quality_2    0.07 bpp                 12.4
q3      quality_3    0.14 bpp                 24.8
q4      quality_4    0.3 bpp                  53.1
q5      quality_5    0.45 bpp                 79.7
q6      quality_6    0.9 bpp                  159
vlo1    quality_vlo1 0.00218 bpp              0.386 (works by name, not advertised)
vlo2    quality_vlo2 0.00438 bpp              0.776 (works by name, not advertised)
======  ===========  =======================  ======================================

``nominal_kbps`` is an **estimate**: the model's natural-image target bpp times the image
rate, 257 rows × 689 frames/s ≈ 177 kpixel/s (the ``wide`` geometry has the same pixel
rate). What a spectrogram really costs is whatever the entropy coder writes; the payload
reports it (:attr:`~mosapp.codecs.base.Encoded.payload_kbps`).

**Where the weights come from**, in this order:

1. ``$MOSAPP_MSILLM_CHECKPOINT_DIR/<file name>``;
2. torch.hub's cache, ``torch.hub.get_dir()/checkpoints/<file name>`` — where
   ``torch.hub.load_state_dict_from_url`` (and so ``torch.hub.load(... "msillm_quality_3")``)
   stores it;
3. a download through ``torch.hub.load_state_dict_from_url`` into that cache, only when
   the user allows it (``MOSAPP_ALLOW_DOWNLOAD=1`` or ``MsillmCodec(..., allow_download=True)``).

Otherwise :meth:`MsillmCodec.availability` is False with one sentence naming the file, its
URL and the two places to put it, and encoding/decoding raise :class:`~mosapp.core.errors.ModelError`
with it. A checkpoint is either the published bare ``state_dict`` or
``{"state_dict": ..., "hific_kwargs": {...}}`` whose ``hific_kwargs`` (``latent_features``,
``hyper_features``, ``num_residual_blocks``) override the architecture (small models for
tests and experiments). Loaded models are cached per (quality, device, checkpoint file).

**One tile** (float32 ``(bins, frames)`` in [0, 1]) is replicated to 3 channels,
edge-padded to a multiple of the model's total downsampling (64), and coded by the model's
own ``compress``: on CUDA the analysis/synthesis transforms run on the GPU while the
hyperprior networks and the entropy coder (compressai's rANS) stay on the CPU —
neuralcompression's partial-GPU compression (``update_tensor_devices("compress")``,
``force_cpu=False``) — so a stream written on a GPU decodes on a CPU. Decoding crops the
padding and averages the 3 channels back to one. Tile payload: ``u32`` byte count of the
hyper-latent string, that string, then the latent string.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mosapp.codecs import register_family
from mosapp.codecs.base import Availability, file_model_id
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.core.config import PIPELINE_SAMPLE_RATE, get_geometry
from mosapp.core.errors import BitstreamError, ModelError
from mosapp.models._torchvision import ensure_importable

#: Target bits per pixel (on natural images) of each published MS-ILLM model, by quality.
QUALITIES: dict[str, str] = {
    "q1": "0.035",
    "q2": "0.07",
    "q3": "0.14",
    "q4": "0.3",
    "q5": "0.45",
    "q6": "0.9",
    "vlo1": "0.00218",
    "vlo2": "0.00438",
}
ADVERTISED = ["q1", "q2", "q3", "q4", "q5", "q6"]

CHECKPOINT_URL_BASE = "https://dl.fbaipublicfiles.com/NeuralCompression/2023-muckley-msillm/"
ENV_CHECKPOINT_DIR = "MOSAPP_MSILLM_CHECKPOINT_DIR"
ENV_ALLOW_DOWNLOAD = "MOSAPP_ALLOW_DOWNLOAD"

#: ``HiFiCAutoencoder`` arguments a checkpoint may override (``in_channels`` stays 3).
ARCH_KWARGS = ("latent_features", "hyper_features", "num_residual_blocks")

#: Frames per tile. The full model's activations on a 320 × 1024 tile (257 bins padded)
#: peak near 0.45 GB above the 0.73 GB of weights on CPU (0.85 GB at 2048 frames,
#: measured); the ``wide`` geometry (576 padded rows) about 1.8 times that.
MSILLM_TILE_FRAMES = 1024

#: Pixels per second of a spectrogram image (both geometries: 257 × 44100/64 ≈ 513 × 44100/128).
_PIXELS_PER_SECOND = get_geometry("thesis").bins * PIPELINE_SAMPLE_RATE / get_geometry("thesis").hop


def checkpoint_file_name(quality: str) -> str:
    """The published file name, e.g. ``msillm_target_0.14bpp.ckpt`` for ``q3``."""
    return f"msillm_target_{QUALITIES[quality]}bpp.ckpt"


def checkpoint_url(quality: str) -> str:
    """The URL ``neuralcompression.zoo`` loads the weights of ``quality`` from."""
    return CHECKPOINT_URL_BASE + checkpoint_file_name(quality)


def hub_checkpoint_dir() -> Path:
    """torch.hub's checkpoint cache (where ``load_state_dict_from_url`` stores files)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def checkpoint_candidates(quality: str) -> list[Path]:
    """Where the weights of ``quality`` are looked for, in order."""
    name = checkpoint_file_name(quality)
    places: list[Path] = []
    env_dir = os.environ.get(ENV_CHECKPOINT_DIR, "").strip()
    if env_dir:
        places.append(Path(env_dir).expanduser() / name)
    places.append(hub_checkpoint_dir() / name)
    return places


def find_checkpoint(quality: str) -> Path | None:
    """The first existing checkpoint file of ``quality``, or None."""
    for path in checkpoint_candidates(quality):
        if path.is_file():
            return path
    return None


def downloads_allowed(explicit: bool | None = None) -> bool:
    """``explicit`` when given, else whether ``MOSAPP_ALLOW_DOWNLOAD`` is 1/true/yes."""
    if explicit is not None:
        return bool(explicit)
    return os.environ.get(ENV_ALLOW_DOWNLOAD, "").strip().lower() in ("1", "true", "yes", "on")


def missing_weights_message(quality: str) -> str:
    """One sentence: which file is missing, where it comes from, where to put it."""
    name = checkpoint_file_name(quality)
    env_dir = os.environ.get(ENV_CHECKPOINT_DIR, "").strip()
    env_part = f"the folder named by {ENV_CHECKPOINT_DIR} (now {env_dir})" if env_dir else (
        f"a folder named by {ENV_CHECKPOINT_DIR}"
    )
    return (
        f"The MS-ILLM weights of msillm-{quality} are missing: download {name} from "
        f"{checkpoint_url(quality)} (CC-BY-NC 4.0) into {env_part} or into torch.hub's cache "
        f"{hub_checkpoint_dir()}, or set {ENV_ALLOW_DOWNLOAD}=1 to let mosapp download it there."
    )


# -- loading -------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    """Forget every loaded model (frees their memory once no codec holds them)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _device_key(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return device.type


def _short(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= 200 else text[:197] + "..."


def _list_keys(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_checkpoint(path: Path) -> Any:
    """``torch.load`` a checkpoint on the CPU as weights only.

    Raises:
        ModelError: the file cannot be read (truncated, not a torch file, pickled code).
    """
    try:
        # Zip-format files are memory-mapped: the 0.73 GB of weights are not held twice.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 — torch.load raises many kinds for a damaged file
        raise ModelError(f"The MS-ILLM checkpoint {path} cannot be read as PyTorch weights ({_short(exc)}).") from None


def split_checkpoint(obj: Any, source: str) -> tuple[Mapping[str, torch.Tensor], dict[str, int]]:
    """(state_dict, HiFiCAutoencoder keyword arguments) of a loaded checkpoint.

    A bare state_dict is the published format (the default architecture);
    ``{"state_dict": ..., "hific_kwargs": {...}}`` overrides the architecture.

    Raises:
        ModelError: neither format, or arguments that are not accepted.
    """
    kwargs: dict[str, int] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        raw_kwargs = obj.get("hific_kwargs", {}) or {}
        if not isinstance(raw_kwargs, Mapping):
            raise ModelError(f"The MS-ILLM checkpoint {source} has hific_kwargs that are not a dict.")
        for key, value in raw_kwargs.items():
            if key not in ARCH_KWARGS:
                raise ModelError(
                    f'The MS-ILLM checkpoint {source} sets "{key}" in hific_kwargs; accepted: {", ".join(ARCH_KWARGS)}.'
                )
            low = 0 if key == "num_residual_blocks" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ModelError(
                    f'The MS-ILLM checkpoint {source} sets "{key}" to {value!r}; it must be an integer of at least {low}.'
                )
            kwargs[key] = int(value)
        state = obj["state_dict"]
    elif isinstance(obj, Mapping):
        state = obj
    else:
        raise ModelError(f"The MS-ILLM checkpoint {source} holds a {type(obj).__name__}, not a state_dict.")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad or not state:
        why = f"entries that are not tensors ({_list_keys(bad)})" if bad else "no tensors"
        raise ModelError(f"The MS-ILLM checkpoint {source} is not a model state_dict: it has {why}.")
    return state, kwargs


def build_model(state: Mapping[str, torch.Tensor], kwargs: dict[str, int], source: str):
    """``HiFiCAutoencoder(**kwargs)`` on the CPU with ``state`` loaded, in eval mode.

    Every parameter must be present with its shape. Buffers may be missing (compressai
    versions differ in book-keeping buffers such as ``latent_bottleneck.scale_bound``;
    the entropy tables are rebuilt by ``update()``), and extra entries under the entropy
    models are ignored; any other extra entry means another architecture.

    Raises:
        ModelError: the checkpoint does not fit the architecture.
    """
    ensure_importable()
    # Imported here, after ensure_importable(), and only when MS-ILLM is used: neuralcompression
    # (and compressai under it) take seconds to import and need the torchvision fix-up first.
    from compressai.models.utils import remap_old_keys  # noqa: PLC0415 — heavy, needs ensure_importable() first
    from neuralcompression.models import HiFiCAutoencoder  # noqa: PLC0415 — heavy, needs ensure_importable() first

    model = HiFiCAutoencoder(**kwargs)
    # compressai renamed the EntropyBottleneck's _matrix0 … to matrices.0 …: accept both.
    state = remap_old_keys("hyper_bottleneck", dict(state))
    expected = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    missing = [k for k in expected if k not in state and k in params]
    unexpected = [k for k in state if k not in expected and not k.startswith(("hyper_bottleneck.", "latent_bottleneck."))]
    mismatched = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(expected[k].shape)}"
        for k in expected
        if k in params and k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_list_keys(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_list_keys(unexpected)})")
        if mismatched:
            problems.append(f"{len(mismatched)} tensors of the wrong shape ({_list_keys(mismatched, 2)})")
        arch = f"HiFiCAutoencoder({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
        raise ModelError(f"The MS-ILLM checkpoint {source} does not fit {arch}: {'; '.join(problems)}.")
    loadable = {k: v for k, v in state.items() if k in expected}
    for key, value in expected.items():
        loadable.setdefault(key, value)  # a missing buffer keeps its default
    try:
        model.load_state_dict(loadable)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelError(f"The MS-ILLM checkpoint {source} does not fit the model ({_short(exc)}).") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    # Entropy tables: kept from the checkpoint when it has them (as upstream's
    # model.update() does), else computed here, on the CPU, so every device agrees.
    model.update()
    return model


def _download(quality: str) -> tuple[Any, str]:
    url = checkpoint_url(quality)
    name = checkpoint_file_name(quality)
    try:
        obj = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, file_name=name, weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 — network, HTTP and file errors of a download
        raise ModelError(f"{missing_weights_message(quality)[:-1]} (the download failed: {_short(exc)}).") from None
    return obj, str(hub_checkpoint_dir() / name)


def load_model(quality: str, device: torch.device | str = "cpu", allow_download: bool | None = None):
    """The MS-ILLM model of ``quality`` ready to ``compress``/``decompress`` on ``device``.

    On CUDA the model is set up for neuralcompression's partial-GPU compression: the
    autoencoder on the GPU, hyperprior networks and entropy models on the CPU. Cached per
    (quality, device, checkpoint file).

    Raises:
        ModelError: weights missing (and no download allowed), unreadable or not fitting.
    """
    if quality not in QUALITIES:
        raise ModelError(f'Unknown MS-ILLM quality "{quality}"; known: {", ".join(QUALITIES)}.')
    device = torch.device(device)
    dkey = _device_key(device)
    path = find_checkpoint(quality)
    if path is None and not downloads_allowed(allow_download):
        raise ModelError(missing_weights_message(quality))
    with _CACHE_LOCK:
        if path is None:
            obj, source = _download(quality)
            path = Path(source)
        else:
            obj, source = None, str(path)
        stat = path.stat()
        key = (quality, dkey, str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        model = _CACHE.get(key)
        if model is not None:
            return model
        if obj is None:
            obj = read_checkpoint(path)
        state, kwargs = split_checkpoint(obj, source)
        model = build_model(state, kwargs, source)
        del obj, state
        if device.type != "cpu":
            model.to(device)
            # Hyperprior networks and entropy models back to the CPU (partial-GPU compression).
            model.update_tensor_devices("compress")
        for old in [k for k in _CACHE if k[:2] == (quality, dkey)]:
            del _CACHE[old]  # an older file of the same quality
        _CACHE[key] = model
        return model


# -- the codec -----------------------------------------------------------------------------


def _significant(x: float) -> float:
    return float(f"{x:.3g}")


class MsillmCodec(SpectrogramCodec):
    """Spectrogram codec whose image codec is the MS-ILLM model of one quality."""

    family = "msillm"
    version = 1
    tile_frames = MSILLM_TILE_FRAMES

    def __init__(self, quality: str, allow_download: bool | None = None):
        if quality not in QUALITIES:
            raise ValueError(f"unknown MS-ILLM quality {quality!r}")
        self.quality = quality
        self.name = f"msillm-{quality}"
        self.allow_download = allow_download
        self.bpp = float(QUALITIES[quality])
        self.nominal_kbps = _significant(self.bpp * _PIXELS_PER_SECOND / 1000.0)
        self.description = (
            f"MS-ILLM image codec (HiFiC + local likelihood GAN, ICML 2023) at its {QUALITIES[quality]} bpp target; "
            f"{self.nominal_kbps} kbit/s is that target times the image's pixel rate (an estimate), phase rebuilt"
        )

    @property
    def checkpoint_name(self) -> str:
        return checkpoint_file_name(self.quality)

    def availability(self) -> Availability:
        if find_checkpoint(self.quality) is not None or downloads_allowed(self.allow_download):
            return Availability(True)
        return Availability(False, missing_weights_message(self.quality))

    def model_id(self) -> str | None:
        """:func:`~mosapp.codecs.base.file_model_id` of the checkpoint found (None before it is there)."""
        path = find_checkpoint(self.quality)
        return file_model_id(path) if path is not None else None

    def model(self, device: torch.device | str):
        """The loaded model for ``device`` (cached process-wide)."""
        return load_model(self.quality, device, self.allow_download)

    def prepare(self, device: torch.device) -> None:
        self.model(device)

    def compress_image(self, image: torch.Tensor) -> bytes:
        if image.ndim != 2:
            raise ValueError(f"image must be (bins, frames), got shape {tuple(image.shape)}")
        model = self.model(image.device)
        h, w = image.shape
        factor = int(model.factor)
        with torch.inference_mode():
            x = image.to(torch.float32).clamp(0.0, 1.0).expand(1, 3, h, w)
            pad_h, pad_w = (-h) % factor, (-w) % factor
            if pad_h or pad_w:
                # Edge padding: the model would reflect-pad, which fails on tiles shorter
                # than the padding, and flat edges cost the fewest bits.
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
            out = model.compress(x.contiguous(), force_cpu=x.device.type == "cpu")
        hyper = bytes(out.hyper_latent_strings[0])
        latent = bytes(out.latent_strings[0])
        return struct.pack("<I", len(hyper)) + hyper + latent

    def decompress_image(self, data: bytes, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        device = torch.device(device)
        model = self.model(device)  # also makes neuralcompression importable
        from neuralcompression import HyperpriorCompressedOutput  # noqa: PLC0415 — heavy; loaded with the model

        h, w = int(shape[0]), int(shape[1])
        if len(data) < 4:
            raise BitstreamError(f"The {self.name} tile payload is {len(data)} bytes, too short to decode.")
        (hyper_len,) = struct.unpack_from("<I", data, 0)
        if 4 + hyper_len > len(data):
            raise BitstreamError(f"The {self.name} tile payload ends inside its hyper-latent ({len(data)} bytes).")
        factor = int(model.factor)
        padded = (math.ceil(h / factor) * factor, math.ceil(w / factor) * factor)
        compressed = HyperpriorCompressedOutput(
            latent_strings=[bytes(data[4 + hyper_len:])],
            hyper_latent_strings=[bytes(data[4: 4 + hyper_len])],
            image_size=padded,
            padded_size=padded,
        )
        try:
            with torch.inference_mode():
                y = model.decompress(compressed, force_cpu=device.type == "cpu")
        except (RuntimeError, ValueError, OverflowError, IndexError) as exc:
            raise BitstreamError(f"The {self.name} tile payload cannot be decoded ({_short(exc)}).") from None
        return y[0, :, :h, :w].mean(dim=0).clamp(0.0, 1.0).to(device=device, dtype=torch.float32)


def _factory(name: str) -> MsillmCodec | None:
    prefix = "msillm-"
    if name.startswith(prefix) and name[len(prefix):] in QUALITIES:
        return MsillmCodec(name[len(prefix):])
    return None


register_family("msillm", _factory, lambda: [f"msillm-{q}" for q in ADVERTISED])

__all__ = [
    "ADVERTISED",
    "CHECKPOINT_URL_BASE",
    "ENV_ALLOW_DOWNLOAD",
    "ENV_CHECKPOINT_DIR",
    "MsillmCodec",
    "QUALITIES",
    "build_model",
    "checkpoint_candidates",
    "checkpoint_file_name",
    "checkpoint_url",
    "clear_model_cache",
    "find_checkpoint",
    "load_model",
    "missing_weights_message",
    "read_checkpoint",
    "split_checkpoint",
]
