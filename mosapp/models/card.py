"""The sgc model card (``assets/models/<name>.json``), typed: what :mod:`mosapp.codecs.sgc` reads
and :mod:`mosapp.training.card` writes, in one place with the names and ranges both share.

A card is JSON::

    {"name": "sgc-12", "weights": "sgc5.pt", "architecture": {...}, "geometry": "thesis",
     "image": {...}, "training": {...}, "heldout": {"files": [...]}, "measured": {...} | null,
     "rate_control": {"target_kbps": 12.0, "low_share": 0.4, "high_row_slope": 0.5, "high_step_ratio": 0.78,
                      "note": "..."}}

``rate_control`` is only on a two-band operating point's card. :class:`ModelCard` reads the
fields the codec and the trainer use by name and keeps every other key as it was, so a card
read and written again is the same JSON (same keys, same order). Importing this module loads
neither torch nor compressai.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mosapp.core.errors import ModelError

#: Latent quantisation steps (1 = as trained) that rate control may choose and a stream may
#: carry, and the bounds of a training run's ``train.step_range``.
STEP_RANGE = (0.1, 8.0)

#: The keys of a card in the order they are written (any other key follows, as it was).
CARD_KEYS = ("name", "weights", "architecture", "geometry", "image", "training", "heldout", "measured",
             "rate_control")

#: ``<family>-<kbps>``: the rate at the end of an operating point's name (``sgc-12``,
#: ``sgc-thesis-12``, ``sgc3-12``; ``sgc4`` names no rate).
_NAMED_RATE = re.compile(r"(?P<stem>.+)-(?P<kbps>\d+(?:\.\d+)?)")


def name_kbps(name: str) -> float | None:
    """The rate in an operating point's name (``sgc-12`` and ``sgc-thesis-12`` → 12.0), or None."""
    m = _NAMED_RATE.fullmatch(name)
    return float(m.group("kbps")) if m else None


@dataclass(frozen=True)
class RateControl:
    """A two-band operating point's ``rate_control``: its target, the low band's share of the bits
    or the high band's latent step as a multiple of the low band's (``high_step_ratio``, which
    replaces the share where given), and the high image's row slope (as the card gives them:
    :func:`mosapp.codecs.sgc.row_slope` and :func:`mosapp.codecs.sgc.step_ratio` check them)."""

    target_kbps: float | None = None
    low_share: float | None = None
    high_row_slope: Any = None
    note: str = ""
    high_step_ratio: Any = None
    #: The JSON it was read from (written back as it was), or None for one made here.
    raw: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RateControl:
        return cls(target_kbps=_number(obj.get("target_kbps")), low_share=_number(obj.get("low_share")),
                   high_row_slope=obj.get("high_row_slope"), high_step_ratio=obj.get("high_step_ratio"),
                   note=str(obj.get("note", "")), raw=dict(obj))

    def to_json(self) -> dict[str, Any]:
        if self.raw is not None:
            return dict(self.raw)
        return {"target_kbps": self.target_kbps, "low_share": self.low_share,
                **({"high_row_slope": self.high_row_slope} if self.high_row_slope else {}),
                **({"high_step_ratio": self.high_step_ratio} if self.high_step_ratio is not None else {}),
                "note": self.note}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class ModelCard:
    """One model card.

    Attributes:
        name: the operating point (or weights) it describes.
        weights: the weights file, relative to the card's folder.
        geometry: the STFT lattice the network's image is on.
        architecture: :func:`mosapp.models.sgc_net.build_network`'s ``arch``, with ``type`` (in words)
            and ``parameters``.
        image: how the image is made (``representation`` ``"two-band"`` for the two-band codec).
        training: how the weights were trained (``steps``, ``init``, ``lambda``, ``loss``, ...).
        heldout: the held-out files (``{"files": [...]}``).
        measured: kbps and quality on held-out music (None until measured).
        rate_control: a two-band operating point's; None on other cards.
        path: the file it was read from (None: not read from a file).
        extra: any other key, kept as it was.
    """

    name: str
    weights: str = ""
    geometry: str = "thesis"
    architecture: dict[str, Any] = field(default_factory=dict)
    image: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] | None = None
    rate_control: RateControl | None = None
    path: Path | None = field(default=None, compare=False)
    extra: dict[str, Any] = field(default_factory=dict)
    #: The order the card's keys came in (written back in it).
    order: tuple[str, ...] = field(default=CARD_KEYS, compare=False)

    @property
    def is_two_band(self) -> bool:
        return self.image.get("representation") == "two-band"

    @property
    def transform(self) -> str:
        """``gdn`` or ``klt`` (a learned block transform)."""
        return str(self.architecture.get("transform") or "gdn")

    @property
    def context(self) -> str:
        """``none`` or ``temporal``."""
        return str(self.architecture.get("context") or "none")

    @property
    def steps(self) -> Any:
        """The training steps (``"?"`` where the card does not say)."""
        return self.training.get("steps", "?")

    @property
    def init(self) -> str | None:
        """The weights training started from, or None."""
        return self.training.get("init") or None

    def weights_path(self) -> Path | None:
        """The weights file next to the card (None: the card was not read from a file)."""
        if self.path is None:
            return None
        return self.path.parent / (self.weights or f"{self.name}.pt")

    @classmethod
    def from_json(cls, obj: Any, path: Path | None = None) -> ModelCard:
        """A card from its parsed JSON (ModelError when it is not an object)."""
        if not isinstance(obj, dict):
            raise ModelError(f"The model card{f' {path}' if path else ''} is not a JSON object.")
        known = set(CARD_KEYS)
        rc = obj.get("rate_control")
        return cls(
            name=str(obj.get("name", path.stem if path else "")), weights=str(obj.get("weights") or ""),
            geometry=str(obj.get("geometry") or "thesis"), architecture=dict(obj.get("architecture") or {}),
            image=dict(obj.get("image") or {}), training=dict(obj.get("training") or {}),
            heldout=dict(obj.get("heldout") or {}),
            measured=obj["measured"] if isinstance(obj.get("measured"), dict) else None,
            rate_control=RateControl.from_json(rc) if isinstance(rc, dict) else None, path=path,
            extra={k: v for k, v in obj.items() if k not in known}, order=tuple(obj))

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        """The card in ``path``.

        Raises:
            ModelError: the file cannot be read or is not a JSON object.
        """
        try:
            return cls.from_json(json.loads(path.read_text()), path)
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"The model card {path} cannot be read ({exc}).") from None

    def to_json(self) -> dict[str, Any]:
        """The card's JSON object: its keys in the order read (a new card: :data:`CARD_KEYS`), a
        ``rate_control`` only where there is one, every other key as it was."""
        values: dict[str, Any] = {"name": self.name, "weights": self.weights, "architecture": self.architecture,
                                  "geometry": self.geometry, "image": self.image, "training": self.training,
                                  "heldout": self.heldout, "measured": self.measured, **self.extra}
        if self.rate_control is not None:
            values["rate_control"] = self.rate_control.to_json()
        keys = [k for k in self.order if k in values] + [k for k in values if k not in self.order]
        return {k: values[k] for k in keys}

    def dumps(self) -> str:
        """The card as written: indented JSON with a final newline."""
        return json.dumps(self.to_json(), indent=2) + "\n"


__all__ = ["CARD_KEYS", "STEP_RANGE", "ModelCard", "RateControl", "name_kbps"]
