"""The desktop app: the only package that imports Qt (PySide6) and pyqtgraph.

``mosapp.gui.app.run_app(argv)`` opens the main window. Modules whose names end in
``_data`` or ``jobs`` are plain Python (no Qt) so they can be tested and benchmarked alone.
"""
