"""The Listen view's trial panels by test type: the screen a listener rates one trial of a study on.

A test type (:mod:`mosapp.study.types`, which may not import Qt) has its panel here: a
:class:`~mosapp.gui.trial_widgets.TrialPanel` subclass registered against the type's name
(``register_panel("mushra", MushraPanel)``) by its module, which this package finds and imports
the first time a panel is asked for, the built-in ones first (:data:`BUILTIN_MODULES`), as
:mod:`mosapp.study.types` finds the types. The Listen view asks :func:`panel_class` for the open
study's type and never names one.

What a panel does (:class:`~mosapp.gui.trial_widgets.TrialPanel`): ``show_trial(trial, progress)``
once the view has loaded the trial's streams into its player; ``tick()`` from the view's timer;
``handle_key(event)`` for the keys of a trial; ``keys_text()`` for the instructions page;
``not_saved(message)`` when a save failed. It rates through ``view.rate(score)``, which commits
on the view's worker thread (:meth:`mosapp.study.listening.ListenController.rate`).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mosapp.study.errors import StudyError

if TYPE_CHECKING:
    from mosapp.gui.trial_widgets import TrialPanel

#: The modules of the built-in types' panels.
BUILTIN_MODULES = ("five_grade", "mushra", "ccr")

#: What makes a panel: its class, called with the Listen view.
PanelFactory = Callable[[Any], "TrialPanel"]

_PANELS: dict[str, PanelFactory] = {}
_LOADED = False


def register_panel(test_type: str, panel: PanelFactory) -> PanelFactory:
    """Show the trials of ``test_type`` on ``panel`` (a later registration of the same type replaces it)."""
    _PANELS[test_type] = panel
    return panel


def unregister_panel(test_type: str) -> None:
    """Forget the panel of ``test_type`` (a plug-in loaded for a while, e.g. by a test)."""
    _PANELS.pop(test_type, None)


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    others = sorted(m.name for m in pkgutil.iter_modules(__path__)
                    if m.name not in BUILTIN_MODULES and not m.name.startswith("_"))
    for module in (*BUILTIN_MODULES, *others):
        importlib.import_module(f"{__name__}.{module}")  # each registers its panel(s) on import
    _LOADED = True


def panel_class(test_type: str) -> PanelFactory:
    """The panel that shows ``test_type``'s trials.

    Raises:
        StudyError: no panel is registered for it (its module under ``mosapp/gui/listen_panels`` is missing).
    """
    _load_all()
    try:
        return _PANELS[test_type]
    except KeyError:
        raise StudyError(f'The Listen view has no panel for the test type "{test_type}"; add its module to '
                         f"mosapp/gui/listen_panels/.") from None


__all__ = ["BUILTIN_MODULES", "PanelFactory", "panel_class", "register_panel", "unregister_panel"]
