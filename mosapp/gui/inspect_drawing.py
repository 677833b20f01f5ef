"""The background work behind what the Inspect panes draw (not the codec run):

* the original of a newly opened clip, read and drawn as it is read (:meth:`DrawingJobs.preview`);
* the pair on screen analysed again with another analysis, keeping the view (:meth:`DrawingJobs.reanalyse`);
* a zoomed stretch of a pooled overview at full resolution (:meth:`DrawingJobs.detail`).

Each runs on a :class:`~mosapp.gui.workers.GeneratorWorker`; a newer job of the same kind
replaces the one running, whose result is then dropped.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from mosapp.gui.spectrogram_widgets import SpectrogramPanes
from mosapp.gui.workers import GeneratorWorker, WorkerSet
from mosapp.views.jobs import AudioSource, OriginalPreview, preview
from mosapp.views.spectrogram_data import Analysis, SpectrogramPair, analyse_excerpt_steps, analyse_pair_steps


class DrawingJobs(QObject):
    """Previews, re-analyses and detail for the panes.

    Signals:
        original(object): an :class:`OriginalPreview` to draw (a long file's grows; the last is complete).
        preview_done(object): the complete :class:`OriginalPreview` (the file is read).
        reanalysed(object, object): the pair drawn from the new analysis (already on the panes), and
            the reference waveform it was drawn from.
        failed(str): a job ended with this sentence.
    """

    original = Signal(object)
    preview_done = Signal(object)
    reanalysed = Signal(object, object)
    failed = Signal(str)

    def __init__(self, panes: SpectrogramPanes, workers: WorkerSet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panes = panes
        self.workers = workers
        self._preview: GeneratorWorker | None = None
        self._analysis: GeneratorWorker | None = None
        self._detail: GeneratorWorker | None = None

    @property
    def previewing(self) -> bool:
        """Whether a clip's original is being read."""
        return self._preview is not None

    @property
    def analysing(self) -> bool:
        """Whether a re-analysis for a new analysis is in progress."""
        return self._analysis is not None

    # ------------------------------------------------------------------ the original of a new clip

    def preview(self, source: AudioSource, analysis: Analysis) -> None:
        """Read ``source`` and draw its original (growing while a long file is read)."""
        worker = self.workers.add(lambda: preview(source, analysis), finished=self._on_preview,
                                  failed=self._on_preview_failed)
        worker.progress.connect(
            lambda p, w=worker: self.original.emit(p) if w is self._preview and isinstance(p, OriginalPreview)
            else None)
        self._preview = worker
        worker.start()

    def stop_preview(self) -> None:
        if self._preview is not None:
            self._preview.cancel()
            self._preview = None

    def _on_preview(self, worker: GeneratorWorker, p: OriginalPreview) -> None:
        if worker is self._preview:
            self._preview = None
            self.preview_done.emit(p)

    def _on_preview_failed(self, worker: GeneratorWorker, message: str) -> None:
        if worker is self._preview:
            self._preview = None
            self.failed.emit(message)

    # ------------------------------------------------------------------ another analysis

    def reanalyse(self, reference: np.ndarray, reconstruction: np.ndarray, analysis: Analysis) -> None:
        """Analyse the pair with ``analysis``, then draw it keeping the view (and announce :attr:`reanalysed`)."""
        self.stop_analysis()
        worker = self.workers.add(lambda: analyse_pair_steps(reference, reconstruction, analysis=analysis),
                                  finished=lambda w, pair: self._on_reanalysed(w, pair, reference),
                                  failed=self._on_analysis_failed)
        worker.cancelled.connect(lambda w=worker: setattr(self, "_analysis", None) if w is self._analysis else None)
        self._analysis = worker
        worker.start()

    def stop_analysis(self) -> None:
        if self._analysis is not None:
            self._analysis.cancel()
            self._analysis = None

    def _on_reanalysed(self, worker: GeneratorWorker, pair: SpectrogramPair, reference: np.ndarray) -> None:
        if worker is not self._analysis:
            return
        self._analysis = None
        self.stop_detail()
        self.panes.set_pair(pair, keep_view=True)
        self.reanalysed.emit(pair, reference)

    def _on_analysis_failed(self, worker: GeneratorWorker, message: str) -> None:
        if worker is self._analysis:
            self._analysis = None
        self.failed.emit(message)

    # ------------------------------------------------------------------ detail of a zoom

    def detail(self, reference: np.ndarray, reconstruction: np.ndarray, start_s: float, end_s: float) -> None:
        """Analyse [start_s, end_s) of the pair on screen at full resolution, then draw it over the overview."""
        pair = self.panes.pair
        if pair is None:
            return
        self.stop_detail()

        def finished(w: GeneratorWorker, detail: SpectrogramPair) -> None:
            if w is self._detail and self.panes.pair is pair:
                self._detail = None
                self.panes.set_detail(detail)

        worker = self.workers.add(lambda: analyse_excerpt_steps(reference, reconstruction, start_s, end_s,
                                                                top_db=pair.top_db, analysis=pair.analysis),
                                  finished=finished, failed=lambda _w, message: self.failed.emit(message))
        self._detail = worker
        worker.start()

    def stop_detail(self) -> None:
        if self._detail is not None:
            self._detail.cancel()
            self._detail = None


__all__ = ["DrawingJobs"]
