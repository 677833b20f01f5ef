"""Phase reconstruction backends behind one signature, registered under kebab-case names.

Every backend is ``fn(magnitude, geometry, *, seed=None, **options) -> coefficients``:

* ``magnitude``: real tensor (bins, frames) on the device the work runs on;
* ``seed``: optional complex tensor (bins, k): the first ``k`` frames are already final
  (they come from the previous block) and must be continued, not changed;
* returns complex coefficients (bins, frames) on the same device whose modulus is the
  target magnitude (FGLA's may deviate slightly where the magnitude is inconsistent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from mosapp.core.config import StftGeometry
from mosapp.core.errors import ConfigError


class PhaseBackend(Protocol):
    def __call__(self, magnitude: torch.Tensor, geometry: StftGeometry, *, seed: torch.Tensor | None = None,
                 **options: Any) -> torch.Tensor: ...


_BACKENDS: dict[str, PhaseBackend] = {}
#: Whether a backend can continue from seed frames, so long inputs can run in blocks.
_SUPPORTS_BLOCKS: dict[str, bool] = {}


def register_backend(name: str, *, blocks: bool = True) -> Callable[[PhaseBackend], PhaseBackend]:
    """Class/function decorator registering a phase backend under ``name``."""

    def deco(fn: PhaseBackend) -> PhaseBackend:
        _BACKENDS[name] = fn
        _SUPPORTS_BLOCKS[name] = blocks
        return fn

    return deco


def backend_names() -> list[str]:
    _load_all()
    return sorted(_BACKENDS)


def get_backend(name: str) -> PhaseBackend:
    """Look a backend up by name.

    Raises:
        ConfigError: unknown name; the message lists the known ones.
    """
    _load_all()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ConfigError(f'Unknown phase backend "{name}"; known backends: {", ".join(sorted(_BACKENDS))}.') from None


def supports_blocks(name: str) -> bool:
    _load_all()
    return _SUPPORTS_BLOCKS[name]


def _load_all() -> None:
    # Each backend module registers itself when imported.
    from mosapp.phase import fgla, pghi, tifresi_backend  # noqa: F401, PLC0415 — lazy: `import mosapp` must not pay for numba compilation or tifresi


