"""What the desktop views show, computed without Qt: the half of each view that can be tested alone.

* :mod:`mosapp.views.spectrogram_data`: the STFT analysis behind the spectrogram panes (torch).
* :mod:`mosapp.views.jobs`: the Inspect view's run as a plain generator (read → encode → decode → measure → draw).
* :mod:`mosapp.views.inspect_controller`: the Inspect view's state: the run, its progress and
  ETA, and what is on screen.
* :mod:`mosapp.views.results`: the Results view's report, loaded in the background, and its tables' rows.
* :mod:`mosapp.views.platform`: whether Qt can open a window here (asked before Qt starts).

Nothing here imports Qt (the "No Qt outside mosapp.gui" contract in ``pyproject.toml``);
:mod:`mosapp.gui` draws what these modules compute.
"""
