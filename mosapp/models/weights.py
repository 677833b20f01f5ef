"""sgc weights files: the one reader and writer of ``assets/models/<name>.pt``.

A weights file (written by ``mosapp train``, read by the ``sgc-*`` codecs) is ``torch.save`` of::

    {"format": "mosapp-sgc", "version": 1 (thesis image) | 2 (two-band),
     "name": "sgc2", "geometry": "thesis",
     "arch": {"n": 48, "m": 64[, "representation": "two-band"]},
     "state_dict": {parameter or buffer name: tensor}}

Every torch file is read with ``torch.load(weights_only=True)`` (:func:`read_torch_file`):
only tensors and plain values (dict, list, tuple, str, numbers, None) are unpickled, so a
downloaded file cannot run code; a file that holds any other Python object is refused
before that object is built. This module needs torch only, not the network (compressai).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

from mosapp.core.errors import ModelError
from mosapp.core.files import atomic_write

#: The ``format`` tag of an sgc weights file.
WEIGHTS_FORMAT = "mosapp-sgc"

_GLOBAL_RE = re.compile(r"unsupported GLOBAL (\S+)")


def _reason(exc: BaseException) -> str:
    """The informative line of a torch.load error (torch's weights-only errors are a paragraph)."""
    inner = exc.__context__ if isinstance(exc, pickle.UnpicklingError) and exc.__context__ is not None else exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_torch_file(path: str | os.PathLike[str], map_location: Any = "cpu", what: str = "weights file") -> Any:
    """``torch.load(path, weights_only=True)``, every failure worded as one sentence naming the file.

    Raises:
        ModelError: the file does not exist, cannot be read, or holds a Python object other
            than tensors and plain values (refused unbuilt: unpickling it could run code).
    """
    p = Path(path)
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"The {what} {p} does not exist.") from None
    except MemoryError:
        raise
    except pickle.UnpicklingError as exc:
        found = _GLOBAL_RE.search(str(exc))
        if found:
            raise ModelError(f"The {what} {p} is refused: it holds a Python object ({found.group(1).rstrip('.')}) "
                             f"rather than only tensors and plain values, and loading it could run code.") from None
        raise ModelError(f"The {what} {p} cannot be read ({type(exc).__name__}: {_reason(exc)}).") from None
    except Exception as exc:  # noqa: BLE001 — torch.load raises many kinds for a damaged file
        raise ModelError(f"The {what} {p} cannot be read ({type(exc).__name__}: {_reason(exc)}).") from None


def load_weights(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read an sgc weights file (or a ``mosapp train`` checkpoint, as ``arch`` None).

    Raises:
        ModelError: naming the file, when it is missing, unreadable, unsafe, or not sgc weights.
    """
    p = Path(path)
    state = read_torch_file(p, map_location)
    if isinstance(state, dict) and "model" in state and "step" in state:
        return {"state_dict": state["model"], "arch": None}
    if not isinstance(state, dict) or state.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{p} is not mosapp sgc weights (no \"{WEIGHTS_FORMAT}\" format tag).")
    return state


def save_weights(path: str | os.PathLike[str], *, name: str, geometry: str, arch: Mapping[str, Any],
                 state_dict: Mapping[str, torch.Tensor]) -> Path:
    """Write a weights file atomically (version 2 when ``arch`` says two-band, else 1)."""
    p = Path(path)
    two_band = arch.get("representation") == "two-band"
    payload = {"format": WEIGHTS_FORMAT, "version": 2 if two_band else 1, "name": name, "geometry": geometry,
               "arch": dict(arch), "state_dict": state_dict}
    write_torch_file(p, payload)
    return p


def write_torch_file(path: str | os.PathLike[str], obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` through :func:`mosapp.core.files.atomic_write`."""
    def save(fh: BinaryIO) -> None:
        torch.save(obj, fh)

    atomic_write(path, save, suffix=Path(path).suffix or ".pt", error=ModelError)
