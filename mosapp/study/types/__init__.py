"""Test types as plug-ins: every kind of listening test (DCR, ACR, MUSHRA, CCR …) by name.

>>> from mosapp.study.types import get_test_type, type_names
>>> type_names()
('dcr', 'acr', 'mushra', 'ccr')
>>> get_test_type("mushra").score_range
(0, 100)

A test type is one module of this package that registers a :class:`~mosapp.study.types.base.TestType`
when imported (``register_test_type(MyType())``): its trial and session classes, rating scale,
labels, what the study file may say, how a listener's plan is written, how the player's
measurements become a rating, its export columns and its report. The rest of
:mod:`mosapp.study` asks the registry and never names a type; the Listen view finds the type's
panel in :mod:`mosapp.gui.listen_panels` the same way. The built-in types load first, in
:data:`BUILTIN_MODULES` order; any other module here is found and loaded after them, so adding a
type is adding its module (and its panel), as the codec registry (:mod:`mosapp.codecs`) is.
"""

from __future__ import annotations

import importlib
import pkgutil

from mosapp.study.errors import StudyError
from mosapp.study.types.base import TestType

#: The modules of the built-in types, in the order their names are listed.
BUILTIN_MODULES = ("five_grade", "mushra", "ccr")

_TYPES: dict[str, TestType] = {}
_LOADED = False


def register_test_type(test_type: TestType) -> TestType:
    """Register ``test_type`` under its name (a later registration of the same name replaces it)."""
    if not test_type.name or test_type.name != test_type.name.lower():
        raise ValueError(f"A test type needs a lower-case name, not {test_type.name!r}.")
    _TYPES[test_type.name] = test_type
    return test_type


def unregister_test_type(name: str) -> None:
    """Forget the test type ``name`` (a plug-in loaded for a while, e.g. by a test); unknown names are ignored."""
    _TYPES.pop(name, None)


def _load_all() -> None:
    """Import the built-in type modules, then every other module of this package, once."""
    global _LOADED
    if _LOADED:
        return
    others = sorted(m.name for m in pkgutil.iter_modules(__path__)
                    if m.name not in BUILTIN_MODULES and m.name != "base" and not m.name.startswith("_"))
    for module in (*BUILTIN_MODULES, *others):
        importlib.import_module(f"{__name__}.{module}")  # each registers its type(s) on import
    _LOADED = True


def type_names() -> tuple[str, ...]:
    """Every registered test type's name (the built-in ones first: dcr, acr, mushra, ccr)."""
    _load_all()
    rank = {f"{__name__}.{m}": i for i, m in enumerate(BUILTIN_MODULES)}
    return tuple(sorted(_TYPES, key=lambda n: rank.get(type(_TYPES[n]).__module__, len(rank))))


def get_test_type(name: str) -> TestType:
    """The test type called ``name``.

    Raises:
        StudyError: unknown name; the sentence lists the known ones.
    """
    _load_all()
    try:
        return _TYPES[name]
    except KeyError:
        raise StudyError(f'Unknown test type "{name}"; use {known_names()}.') from None


def known_names() -> str:
    """The registered names for a sentence: ``"dcr", "acr", "mushra" or "ccr"``."""
    names = [f'"{n}"' for n in type_names()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def type_of_trial(trial: object) -> TestType:
    """The test type whose trial class ``trial`` is (a listener's trial names no type itself)."""
    _load_all()
    for test_type in _TYPES.values():
        if isinstance(trial, test_type.trial_class):
            return test_type
    raise StudyError(f"{type(trial).__name__} is not the trial of any test type; pass what next_trial returned.")


__all__ = ["BUILTIN_MODULES", "TestType", "get_test_type", "known_names", "register_test_type", "type_names", "unregister_test_type",
           "type_of_trial"]
