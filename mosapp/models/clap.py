"""CLAP audio embeddings for the Fréchet Audio Distance (FAD), from local weights.

The embedding model is LAION's CLAP with the HTSAT-tiny audio encoder, unfused
(``laion/clap-htsat-unfused``: trained on LAION-Audio-630K, 512-dimensional audio embeddings,
48 kHz input): the model family the seed thesis ranked codecs with. It runs through
``transformers``' ``ClapAudioModelWithProjection`` (the audio tower and its projection; the text
tower of the checkpoint is not loaded) and ``ClapFeatureExtractor``.

**Windows.** CLAP sees at most 10 s. Audio is resampled to 48 kHz, cut into consecutive 10 s
windows (the last one is what is left, at least 1 s, else it joins the one before), and each
window is embedded with ``truncation="rand_trunc"`` and ``padding="repeatpad"``, which for a window
of 10 s or less crops nothing and repeats a short window to 10 s: deterministic. A clip gives one
embedding per window.

**Weights**, in this order (never downloaded at run time): ``$MOSAPP_BASELINES_DIR/clap-htsat-unfused/``
(``config.json``, the weights, ``preprocessor_config.json``), then the Hugging Face cache, where
``snapshot_download('laion/clap-htsat-unfused')`` puts them on a connected machine.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mosapp.core.audio import resample
from mosapp.core.errors import ModelError
from mosapp.models import hub

REPO = "laion/clap-htsat-unfused"
FOLDER = "clap-htsat-unfused"
ENV_DIR = hub.ENV_DIR
RATE = 48_000
WINDOW_S = 10.0
MIN_WINDOW_S = 1.0

_CACHE: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def find_weights() -> Path | None:
    return hub.find(REPO)


def unavailable() -> str | None:
    """Why FAD's embedding cannot run here (one sentence), or None."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("transformers") is None:
        return "FAD needs the Python package transformers (pip install -e '.[baselines]', or scripts/setup)."
    if find_weights() is None:
        return hub.missing(REPO, "FAD's embedding model") + "."
    return None


def load(device: str = "cpu") -> tuple[Any, Any]:
    """(audio model with projection, feature extractor), cached per folder and device.

    Raises:
        ModelError: the weights are missing or cannot be loaded.
    """
    why = unavailable()
    if why is not None:
        raise ModelError(why)
    folder = find_weights()
    assert folder is not None
    key = (str(folder), device)
    with _LOCK:
        found = _CACHE.get(key)
    if found is not None:
        return found
    from mosapp.models._torchvision import ensure_importable  # noqa: PLC0415 — transformers imports torchvision

    ensure_importable()
    import transformers  # noqa: PLC0415 — a slow import, only when FAD is asked for

    try:
        model = transformers.ClapAudioModelWithProjection.from_pretrained(str(folder), local_files_only=True)
        extractor = transformers.ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"The CLAP weights in {folder} cannot be loaded ({str(exc).splitlines()[0]}).") from None
    pair = (model.to(device).eval(), extractor)
    with _LOCK:
        _CACHE[key] = pair
    return pair


def windows(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """Mono 48 kHz windows of at most :data:`WINDOW_S` seconds (see the module docstring)."""
    x = np.asarray(samples, dtype=np.float32)
    x = x.mean(axis=0) if x.ndim == 2 else x
    y = resample(x[None, :], rate, RATE)[0] if rate != RATE else x
    size, least = int(WINDOW_S * RATE), int(MIN_WINDOW_S * RATE)
    starts = list(range(0, max(1, y.size), size))
    if len(starts) > 1 and y.size - starts[-1] < least:
        starts.pop()
    return [y[s: (starts[i + 1] if i + 1 < len(starts) else y.size)] for i, s in enumerate(starts)]


def embed(samples: np.ndarray, rate: int, device: str = "cpu") -> np.ndarray:
    """float32 (windows, 512): one CLAP audio embedding per window of ``samples`` ((channels, n) or (n,))."""
    model, extractor = load(device)
    parts = windows(samples, rate)
    out = []
    with torch.no_grad():
        for w in parts:
            features = extractor([w], sampling_rate=RATE, truncation="rand_trunc", padding="repeatpad",
                                 return_tensors="pt")
            features = {k: v.to(device) for k, v in features.items() if k == "input_features"}
            out.append(model(**features).audio_embeds[0].float().cpu().numpy())
    return np.stack(out).astype(np.float32)


__all__ = ["REPO", "embed", "find_weights", "load", "unavailable", "windows"]
