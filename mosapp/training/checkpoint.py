"""``<out>/checkpoint.pt``: what a stopped ``mosapp train`` resumes from, and the log it trims.

A checkpoint is ``torch.save`` of ``{"model": state_dict, "opt": Adam state, "aux_opt":
Adam state, "step": int}``, written atomically every ``checkpoint_every`` steps. It holds
only tensors and plain values (the optimisers' states are dicts, lists, tuples, numbers,
booleans and None; :func:`plain` makes sure of it on save), so it is read back with
``torch.load(weights_only=True)`` (:func:`mosapp.models.weights.read_torch_file`), like a
weights file. Checkpoints written before this module have the same layout and load the
same way.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from mosapp.core.errors import ModelError
from mosapp.core.files import atomic_write
from mosapp.models.weights import read_torch_file, write_torch_file

#: The file in ``[output] dir``.
CHECKPOINT_NAME = "checkpoint.pt"
_KEYS = ("model", "opt", "aux_opt", "step")


def plain(obj: Any) -> Any:
    """``obj`` with every value a tensor or a plain value ``weights_only`` loading accepts.

    NumPy scalars become Python numbers; dicts, lists and tuples are rebuilt; anything
    else raises TypeError (a checkpoint must never need unpickling code to read).
    """
    if isinstance(obj, np.generic):  # before float: np.float64 is a float, but pickles as a NumPy object
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, dict):
        return {plain(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    raise TypeError(f"a training checkpoint holds only tensors and plain values, not {type(obj).__name__}")


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer,
                    step: int) -> None:
    """Write the checkpoint of ``step`` atomically."""
    write_torch_file(path, {"model": model.state_dict(), "opt": plain(opt.state_dict()),
                            "aux_opt": plain(aux_opt.state_dict()), "step": int(step)})


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The checkpoint's dict, read as weights only.

    Raises:
        ModelError: the file is unreadable, unsafe, or not a ``mosapp train`` checkpoint.
    """
    state = read_torch_file(path, map_location, what="training checkpoint")
    if not isinstance(state, dict) or any(k not in state for k in _KEYS):
        raise ModelError(f"{path} is not a mosapp train checkpoint (it lacks {', '.join(_KEYS)}).")
    return state


def resume(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, aux_opt: torch.optim.Optimizer,
           map_location: Any) -> int:
    """Load the checkpoint into the model and both optimisers; returns its step."""
    state = load_checkpoint(path, map_location)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    aux_opt.load_state_dict(state["aux_opt"])
    return int(state["step"])


def trim_log(log_path: Path, step: int) -> None:
    """Drop the log rows after ``step`` (logged after the last checkpoint by a run that was
    stopped): the resumed run logs those steps again."""
    if not log_path.exists():
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
    if len(keep) != len(rows):
        text = io.StringIO(newline="")
        csv.writer(text).writerows(keep)

        def write(fh: BinaryIO) -> None:
            fh.write(text.getvalue().encode())

        atomic_write(log_path, write, suffix=".csv")


def logged_seconds(log_path: Path) -> float:
    """The last ``seconds`` in a log (training time before a resume), 0 when there is none."""
    try:
        with open(log_path) as f:
            rows = list(csv.DictReader(f))
        return float(rows[-1]["seconds"]) if rows else 0.0
    except (OSError, KeyError, ValueError):
        return 0.0


