"""Training data: each track's spectrogram image, cached on disk, and random patches of them.

An image is float16, made by the codecs' own step (:func:`mosapp.core.dsp.spectrogram_image`:
scaled to the track's own peak with the 100 dB mapping), kept in ``[data] cache`` as ``<key>.npy`` where
the key hashes the file's real path, size, modification time, the geometry and the band.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from mosapp.codecs.twoband import BANDS_TAG, band_images
from mosapp.core import dsp
from mosapp.core.audio import read_audio
from mosapp.core.config import get_geometry
from mosapp.core.errors import ConfigError
from mosapp.core.files import atomic_write


def _cache_file(path: str, geometry: object, cache: str, band: str) -> Path:
    """Where ``path``'s image for ``band`` is cached: the key hashes the file's real path, size,
    modification time, the geometry and the band."""
    st = os.stat(path)
    tag = "v1" if band == "thesis" else f"{band}|{BANDS_TAG}|v1"
    key = hashlib.sha256(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}|{geometry}|{tag}".encode()).hexdigest()[:24]
    cdir = Path(os.path.expanduser(cache))
    cdir.mkdir(parents=True, exist_ok=True)
    return cdir / f"{key}.npy"


def _save(cfile: Path, image: np.ndarray) -> None:
    def save(fh: BinaryIO) -> None:
        np.save(fh, image)

    atomic_write(cfile, save, suffix=".npy")


def track_image(path: str, geometry_name: str, cache: str, band: str = "thesis") -> np.ndarray:
    """The file's log-magnitude image (float16) scaled to its own peak, cached on disk.

    ``band``: ``thesis`` (256 rows of the geometry), or ``low`` / ``high`` (the two-band
    images of :mod:`mosapp.codecs.twoband`: 128 and 256 rows). A band image is made with
    the other band's, and both are cached: the band split runs once per file.
    """
    geometry = get_geometry(geometry_name)
    cfile = _cache_file(path, geometry, cache, band)
    if cfile.exists():
        return np.load(cfile, mmap_mode="r")
    audio = read_audio(path)
    if band != "thesis":
        low, _, high, _ = band_images(audio.samples[0], torch.device("cpu"))
        images = {"low": low.to(torch.float16).numpy(), "high": high[:256].to(torch.float16).numpy()}
        for name, image in images.items():
            _save(_cache_file(path, geometry, cache, name), image)
    else:
        chunks, _ = dsp.spectrogram_image(torch.from_numpy(audio.samples[0]), geometry)
        _save(cfile, torch.cat(chunks, dim=1)[:256].to(torch.float16).numpy())
    return np.load(cfile, mmap_mode="r")


class PatchSampler:
    """Random (rows × patch_frames) patches, tracks drawn in proportion to their length.

    Patches that are nearly empty (mean pixel below ``min_mean``, 0.15: silence between
    pieces) are redrawn up to three times, so the batch is mostly music.
    """

    def __init__(self, images: list[np.ndarray], patch_frames: int, seed: int, min_mean: float = 0.15) -> None:
        self.images = [im for im in images if im.shape[1] > patch_frames]
        if not self.images:
            raise ConfigError("Every training file is shorter than one patch.")
        lengths = np.array([im.shape[1] for im in self.images], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.w = patch_frames
        self.rng = np.random.default_rng(seed)
        self.min_mean = min_mean

    def batch(self, size: int) -> torch.Tensor:
        out = np.empty((size, 1, self.images[0].shape[0], self.w), dtype=np.float32)
        for i in range(size):
            for _ in range(4):
                im = self.images[self.rng.choice(len(self.images), p=self.p)]
                t0 = int(self.rng.integers(0, im.shape[1] - self.w))
                patch = np.asarray(im[:, t0: t0 + self.w], dtype=np.float32)
                if patch.mean() >= self.min_mean:
                    break
            out[i, 0] = patch
        return torch.from_numpy(out)
