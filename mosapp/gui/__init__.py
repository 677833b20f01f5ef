"""The desktop app: the only package that imports Qt (PySide6) and pyqtgraph.

``mosapp.gui.app.run_app(argv)`` opens the main window. What its views compute without Qt
(the spectrogram analysis, the Inspect run and its controller) lives in :mod:`mosapp.views`,
so it can be tested and benchmarked alone.
"""
