"""The codec registry: every codec (and so every listening-study condition) by kebab-case name.

>>> from mosapp.codecs import get_codec, codec_names
>>> get_codec("opus-12").nominal_kbps
12.0

Families register a *factory*: a function from a name to a codec (or None when the name
is not theirs), plus the list of names to advertise. ``opus-11`` works even though
``mosapp codecs`` lists only the advertised rates.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mosapp.codecs.base import Availability, Codec, Encoded
from mosapp.core.errors import ConfigError

#: What ``mosapp encode`` uses without ``--codec``: the shipped compact spectrogram codec.
DEFAULT_CODEC = "sgc-12"

Factory = Callable[[str], "Codec | None"]

_FACTORIES: list[tuple[str, Factory, Callable[[], list[str]]]] = []
_LOADED = False


def register_family(family: str, factory: Factory, advertised: Callable[[], list[str]]) -> None:
    """Register a family's factory and the names ``mosapp codecs`` lists for it."""
    _FACTORIES.append((family, factory, advertised))


#: The modules that register a codec family when imported, in listing order.
FAMILY_MODULES = ("spectrogram", "twoband", "sgc", "msillm", "classic", "image", "baselines")


def _load_all() -> None:
    """Import every family module once; the registry counts as loaded only when all did.

    A module that fails to import raises here (a bug, not bad input), and the next call
    tries again instead of serving a registry that lacks that family.
    """
    global _LOADED
    if _LOADED:
        return
    for module in FAMILY_MODULES:
        importlib.import_module(f"mosapp.codecs.{module}")  # each registers its family on import
    _LOADED = True


def codec_names() -> list[str]:
    """Every advertised codec name, family by family."""
    _load_all()
    names: list[str] = []
    for _, _, advertised in _FACTORIES:
        names.extend(advertised())
    return names


def get_codec(name: str) -> Codec:
    """The codec called ``name``.

    Raises:
        ConfigError: unknown name; the message lists the known ones.
    """
    _load_all()
    for _, factory, _ in _FACTORIES:
        codec = factory(name)
        if codec is not None:
            return codec
    raise ConfigError(f'Unknown codec "{name}"; known codecs: {", ".join(codec_names())}.')


def all_codecs() -> list[Codec]:
    """Every advertised codec, in listing order."""
    return [get_codec(n) for n in codec_names()]


__all__ = ["DEFAULT_CODEC", "Availability", "Codec", "Encoded", "all_codecs", "codec_names", "get_codec", "register_family"]
