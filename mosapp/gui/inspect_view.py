"""The Inspect view: one clip through one codec, seen, measured and heard.

::

    [Open…] [Study clip…] source   codec ▾ geometry ▾ phase ▾ device ▾ ViSQOL ▾  [Run] [Cancel] ▓▓▓░░ progress
    message (errors in one sentence)
    ┌ SpectrogramPanes ───────────────────────────────┐ ┌ Metrics ────────┐
    │ original | reconstructed                        │ │ kbit/s, mel …   │
    │ difference | per-band error                     │ ├ View ───────────┤
    └─────────────────────────────────────────────────┘ │ log / 0–500 Hz  │
                                                        │ analysis, levels│
    crosshair read-out                                  ├ Listen ─────────┤
                                                        │ play, A/B, loop │

The view is panels around the panes: :class:`~mosapp.gui.inspect_controls.RunControls` (the
rows above), :class:`~mosapp.gui.inspect_controls.MetricsPanel`,
:class:`~mosapp.gui.inspect_display.ViewPanel` and :class:`~mosapp.gui.inspect_listen.ListenPanel`
(the side panel). Its state (the clip, the result, the run in progress, its progress and ETA,
what is on screen) is :class:`mosapp.views.inspect_controller.InspectController`'s, which
needs no Qt. The run itself is :func:`mosapp.views.jobs.inspect` on a :class:`GeneratorWorker`;
the view only starts it, follows its progress and shows what it returns.

The spectrograms come from an analysis chosen in the View panel, independent of the codec:
a Hann STFT (window 1024 … 16384, overlap 50 … 93.75 %) or the codec lattice. Changing it
re-analyses the shown pair in the background and keeps the zoom; the low-frequency mode
switches to :data:`LOW_FREQUENCY_ANALYSIS` (8192 samples) when the analysis is coarser than
4096 samples, and back when it is turned off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from mosapp import playback
from mosapp.core.job import Progress
from mosapp.gui.inspect_controls import MetricsPanel, RatingsPanel, RunControls
from mosapp.gui.inspect_display import SpectrogramArea, ViewPanel, save_widget_png, side_panel
from mosapp.gui.inspect_drawing import DrawingJobs
from mosapp.gui.inspect_listen import ListenPanel
from mosapp.gui.workers import GeneratorWorker, WorkerSet, describe_error
from mosapp.views.inspect_controller import InspectController, mono, run_info, study_clips
from mosapp.views.jobs import AudioSource, InspectRequest, InspectResult, OriginalPreview, inspect
from mosapp.views.spectrogram_data import MAX_COLUMNS, Analysis, SpectrogramPair, analyse_pair, overview_columns

#: Audio files the open dialog offers.
AUDIO_FILTER = "Audio files (*.wav *.flac *.ogg *.oga *.mp3 *.aif *.aiff);;All files (*)"


class InspectView(QWidget):
    """Open a clip, run a codec on it in the background, and compare original and reconstruction.

    Attributes:
        controller: the clip, the result, the run and what is on screen (no Qt).
        controls, metrics, ratings: the run controls and status line, the figures, a study
            stimulus's ratings (:mod:`mosapp.gui.inspect_controls`).
        area, view_panel: the panes with the hint and read-out, and how they draw
            (:mod:`mosapp.gui.inspect_display`).
        listen: the player (:mod:`mosapp.gui.inspect_listen`).
        drawing: previews, re-analyses and detail in the background (:mod:`mosapp.gui.inspect_drawing`).
        workers: every worker of this view (cancelled and waited for by :meth:`shutdown`).
        panes: the spectrograms (``area.panes``).

    Signals:
        result_ready(object): an :class:`InspectResult` is shown.
        run_failed(str): a run ended with this message.
        message(str): a status line for the main window.
        busy_changed(bool): a run started (True) or ended.
    """

    result_ready = Signal(object)
    run_failed = Signal(str)
    message = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspect_view")
        self.controller = InspectController()
        self.workers = WorkerSet(self)
        self._worker: GeneratorWorker | None = None  # the run (the controller's job)
        self._last_dir = os.getcwd()

        self.controls = RunControls()
        self.controls.open_button.clicked.connect(self.open_dialog)
        self.controls.study_button.clicked.connect(self.study_clip_dialog)
        self.controls.run_button.clicked.connect(lambda: self.run())
        self.controls.cancel_button.clicked.connect(self.cancel)
        self.area = SpectrogramArea()
        self.panes, self.readout_label, self.empty_hint = self.area.panes, self.area.readout_label, self.area.empty_hint
        self.panes.seek_requested.connect(self.seek)
        self.panes.detail_wanted.connect(self._compute_detail)
        self.drawing = DrawingJobs(self.panes, self.workers, self)
        self.drawing.original.connect(self.show_original)
        self.drawing.preview_done.connect(self._on_preview)
        self.drawing.reanalysed.connect(self._on_reanalysed)
        self.drawing.failed.connect(lambda text: self.show_message(text, error=True))
        # "codec lattice" follows the codec chosen while only the original is on screen.
        self.controls.codec_combo.currentTextChanged.connect(lambda _name: self._on_analysis_controls())

        self.metrics = MetricsPanel()
        self.view_panel = ViewPanel(self.panes)
        self.view_panel.low_mode_check.toggled.connect(self.set_low_frequency_mode)
        self.view_panel.save_button.clicked.connect(self.save_dialog)
        self.view_panel.analysis_changed.connect(self._on_analysis_controls)
        self.view_panel.level_error.connect(lambda text: self.show_message(text, error=True))
        self.listen = ListenPanel(self.panes)
        self.listen.error.connect(lambda text: self.show_message(text, error=True))
        self.ratings = RatingsPanel()  # a study stimulus opened from Results (show_stimulus)
        self._lay_out()
        self.listen.add_shortcuts(self)
        self._set_busy(False)
        self.listen.update_controls()
        self.view_panel.enable_level_spins()

    def _lay_out(self) -> None:
        self.side_scroll = side_panel(self.metrics, self.view_panel, self.listen, self.ratings)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.area)
        splitter.addWidget(self.side_scroll)
        splitter.setCollapsible(0, False)
        splitter.setCollapsible(1, False)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([1000, 280])
        layout = QVBoxLayout(self)
        layout.addWidget(self.controls)
        layout.addWidget(splitter, 1)

    # ------------------------------------------------------------------ state

    @property
    def source(self) -> AudioSource | None:
        return self.controller.source

    @property
    def result(self) -> InspectResult | None:
        return self.controller.result

    @property
    def original_complete(self) -> bool:
        """False while the original shown is still growing (a long file being read)."""
        return self.controller.screen.original_complete

    @property
    def stimulus_files(self) -> tuple[Path, Path] | None:
        return self.controller.screen.stimulus_files

    @property
    def player(self) -> playback.Player | None:
        return self.listen.player

    @property
    def busy(self) -> bool:
        return self.controller.busy

    @property
    def analysing(self) -> bool:
        """Whether a re-analysis for a new analysis is in progress."""
        return self.drawing.analysing

    # ------------------------------------------------------------------ opening

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", self._last_dir, AUDIO_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str], *, run: bool = True) -> None:
        """Inspect the file at ``path`` (runs the current settings unless ``run`` is False)."""
        path = os.fspath(path)
        self._last_dir = str(Path(path).parent)
        self.open_source(AudioSource(path), run=run)

    def open_source(self, source: AudioSource, *, run: bool = True) -> None:
        """Make ``source`` the clip: the previous clip's result goes at once, the original is
        drawn as soon as it is read (in the background), then the run follows (``run``)."""
        self.drawing.stop_preview()
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
            self.controller.finish(self.controller.job)
            self._set_busy(False)
        self.controller.open(source)
        self.controls.show_source(source)
        self.clear_result()
        if run:
            self.run()
        else:
            self._start_preview(source)

    def clear_result(self) -> None:
        """Forget what is shown (spectrograms, read-out, metrics, the pair in the player)."""
        self.controller.clear()
        self.ratings.setVisible(False)
        self.drawing.stop_detail()
        self.panes.clear_images()
        self._show_panes(False)
        self.area.clear_readout()
        self.metrics.clear()
        self.listen.close_player()

    def show_stimulus(self, stimulus: str | os.PathLike[str], reference: str | os.PathLike[str], *,
                      title: str = "", ratings: Sequence[str] = ()) -> None:
        """Show a study's rendered stimulus (as listeners heard it) against its rendered reference, with its ratings.

        The Results view calls this for a (clip, condition) cell: ``stimulus`` and ``reference``
        are the two files of the study's stimuli folder, ``ratings`` one line per rating. The pair
        is drawn and loaded for listening like a run's (original = reference); nothing is coded.
        """
        try:
            ref, stim = (mono(sf.read(str(p), dtype="float32", always_2d=True)[0]) for p in (reference, stimulus))
        except (OSError, RuntimeError, sf.LibsndfileError) as exc:
            self.show_message(f"The stimulus cannot be read ({describe_error(exc)}).", error=True)
            return
        self.cancel()
        self.clear_result()
        self.controller.screen.stimulus_files = (Path(stimulus), Path(reference))
        self.show_arrays(ref, stim)
        self.ratings.show_ratings(title, list(ratings))
        self.metrics.run_info_label.setText(f"{title} · {Path(stimulus).name} against {Path(reference).name}")
        self._load_player(ref, stim)
        self.show_message(f"{title}: the rendered stimulus against its reference, with {len(ratings)} rating(s).")

    def _start_preview(self, source: AudioSource) -> None:
        self.drawing.preview(source, self.analysis())
        self.show_message(f"Reading {source.name}…")

    def _on_preview(self, p: OriginalPreview) -> None:
        self.show_original(p)
        self._offer_original()
        self.show_message(f"{p.source.name}: {p.reference.shape[-1] / p.display.sample_rate:.1f} s. Press Run.")

    def show_original(self, p: OriginalPreview) -> None:
        """Draw the original alone (its run has not finished): the other panes stay empty."""
        same = self.controller.original_shown(p)
        if same is None:
            return
        again = self.panes.original_only and same
        self.panes.set_original(p.display, keep_view=again)
        self._show_panes(True)
        if self.view_panel.low_mode_check.isChecked() and not again:
            self.panes.show_low_frequencies()

    def study_clip_dialog(self) -> None:
        """Choose one clip of a study in ``studies/``."""
        clips, problems = study_clips()
        for exc in problems:
            self.show_message(describe_error(exc), error=True)
        if not clips:
            self.show_message("No study clips found: put a study file in studies/ (see studies/README.md).",
                              error=True)
            return
        labels = list(clips)
        label, ok = QInputDialog.getItem(self, "Study clip", "Clip:", labels, 0, False)
        if ok and label:
            self.open_source(clips[label])

    # ------------------------------------------------------------------ running

    def request(self) -> InspectRequest | None:
        """The request the controls describe, or None without a source."""
        c = self.controls
        return self.controller.request(c.codec_combo.currentText(), c.config(), c.visqol_combo.currentText(),
                                       self.analysis())

    def run(self, request: InspectRequest | None = None) -> GeneratorWorker | None:
        """Start a run in the background (cancelling one in progress); returns its worker.

        A request for another clip than the current one makes that clip current (as opening it does)."""
        request = request or self.request()
        if request is None:
            self.show_message("Open an audio file first (Open…, or drop one onto the window).", error=True)
            return None
        if request.source != self.source:
            self.open_source(request.source, run=False)
            self.drawing.stop_preview()
        if self._worker is not None:
            self._worker.cancel()
        self.drawing.stop_preview()
        if self.result is not None:
            self.metrics.run_info_label.setText(f"Previous run: {run_info(self.result)}")
        worker = self.workers.add(lambda: inspect(request), finished=self._on_finished, failed=self._on_failed)
        worker.progress.connect(lambda p, w=worker: self._on_progress(w, p))
        worker.cancelled.connect(lambda w=worker: self._on_cancelled(w))
        self._worker = worker
        self.controller.start(worker)
        self.show_message(f"Running {request.codec} on {request.source.name}…")
        self.controls.start_progress()
        self._set_busy(True)
        worker.start()
        return worker

    def cancel(self) -> None:
        """Stop the run in progress at its next step."""
        if self._worker is not None:
            self._worker.cancel()
            self.controller.cancel()
            self.controls.progress_label.setText(self.controller.text)

    def _set_busy(self, busy: bool) -> None:
        self.controls.set_busy(busy)
        self.busy_changed.emit(busy)

    def _end(self, worker: GeneratorWorker) -> bool:
        """``worker`` ended: True when it was the run in progress (now none is)."""
        if not self.controller.finish(worker):
            return False
        self._worker = None
        self._set_busy(False)
        return True

    def _on_progress(self, worker: GeneratorWorker, p: Progress | OriginalPreview) -> None:
        if not self.controller.is_current(worker):
            return
        if isinstance(p, OriginalPreview):
            if self.result is None or self.result.request.source != p.source:
                self.show_original(p)
            return
        if self.controller.progress(p):
            self.controls.show_progress(self.controller.text, self.controller.bar)

    def _on_finished(self, worker: GeneratorWorker, result: InspectResult) -> None:
        if not self._end(worker):
            return
        self.show_result(result)
        seconds = sum(result.timings_s.values())
        self.show_message(f"{result.request.codec} on {result.request.source.name}: done in {seconds:.1f} s.")
        self.result_ready.emit(result)

    def _on_failed(self, worker: GeneratorWorker, message: str) -> None:
        if not self._end(worker):
            return
        self.show_message(message, error=True)
        self._offer_original()
        self.run_failed.emit(message)

    def _on_cancelled(self, worker: GeneratorWorker) -> None:
        if not self._end(worker):
            return
        if self.controller.result_is_current():
            self.show_message("Cancelled; the spectrograms and metrics are still those of the previous run.")
        else:
            self.show_message("Cancelled; no result for this clip (the original is shown, and can be played).")
            self._offer_original()

    def show_message(self, text: str, *, error: bool = False) -> None:
        """A status line above the spectrograms (errors in red) and on the main window."""
        self.controls.show_message(text, error=error)
        self.message.emit(text)

    def message_text(self) -> str:
        return self.controls.message_label.text()

    # ------------------------------------------------------------------ showing

    def show_result(self, result: InspectResult) -> None:
        """Show a finished run: spectrograms, metrics, and the pair loaded for listening."""
        self.controller.result = result
        self.show_pair(result.display, result.reference, result.decoded, source=result.request.source)
        self.metrics.show_result(result)
        self.metrics.run_info_label.setText(run_info(result))
        self._load_player(result.reference, result.decoded)

    def show_pair(self, pair: SpectrogramPair, reference: np.ndarray | None = None,
                  reconstruction: np.ndarray | None = None, *, source: AudioSource | None = None) -> None:
        """Draw a spectrogram pair (keeps the loop region's state); with the waveforms it was
        made from, a zoom into a pooled overview is redrawn at full resolution. A rerun on the
        clip already on screen (``source``) keeps the zoom, the frequency range and the dB levels."""
        self.drawing.stop_detail()
        self.drawing.stop_analysis()
        rerun = self.controller.pair_shown(reference, reconstruction, source, pair_on_screen=self.panes.pair is not None)
        if rerun:
            # A rerun of the clip on screen: keep where the researcher was looking.
            time_range = self.panes.visible_time_range()
            frequency_range = self.panes.visible_frequency_range()
            levels = self.panes.db_bar.levels()
        self.panes.set_pair(pair)
        self._show_panes(True)
        if rerun:
            self.panes.set_db_levels(levels)
            self.panes.show_time_range(*time_range)
            self.panes.show_frequency_range(*frequency_range)
        elif self.view_panel.low_mode_check.isChecked():
            self.panes.show_low_frequencies()
        self._after_pair()
        if reference is not None and pair.analysis != self.analysis():
            self._reanalyse()  # made with another analysis (e.g. chosen while the run went on)

    def _after_pair(self) -> None:
        self.view_panel.show_pair(self.panes.pair)
        if self.listen.loop_check.isChecked():
            self.panes.show_loop_region(True)

    def _show_panes(self, on: bool) -> None:
        """The spectrogram panes (something to draw) or the hint that says how to get there."""
        self.area.show_panes(on)
        self.view_panel.enable_level_spins()

    def show_arrays(self, reference: np.ndarray, reconstruction: np.ndarray, *, frames_per_column: int = 1) -> SpectrogramPair:
        """Draw the pair of two waveforms (float32 (n,) or (1, n) at 44.1 kHz) without a run.

        Long tracks get a quick overview (``frames_per_column`` lattice frames analysed per
        drawn column); short ones are drawn exactly.
        """
        analysis = self.analysis()
        columns = overview_columns(analysis) if frames_per_column is not None else MAX_COLUMNS
        pair = analyse_pair(reference, reconstruction, frames_per_column=frames_per_column, analysis=analysis,
                            max_columns=columns)
        self.show_pair(pair, reference, reconstruction)
        return pair

    def metrics_text(self) -> str:
        """The metrics panel as ``label: value`` lines."""
        return self.metrics.text()

    # ------------------------------------------------------------------ analysis and levels

    def analysis(self) -> Analysis:
        """The analysis the View panel describes (what the next pair is drawn from)."""
        chosen = self.view_panel.stft_choice()
        if chosen is not None:
            return chosen
        # What the codec of the pair on screen coded (before a run: the chosen codec's).
        return self.controller.lattice_analysis(self.controls.codec_combo.currentText(),
                                                self.controls.geometry_combo.currentText())

    def set_analysis(self, analysis: Analysis) -> None:
        """Draw from ``analysis`` (a Hann STFT the menu offers, or a lattice): the shown pair is
        re-analysed in the background, keeping the zoom."""
        self.view_panel.show_analysis(analysis)
        self._on_analysis_controls()

    def _on_analysis_controls(self) -> None:
        self.view_panel.enable_overlap()
        pair = self.panes.pair
        if pair is not None and pair.analysis != self.analysis():
            self._reanalyse()

    def _reanalyse(self) -> None:
        """Analyse the shown waveforms with :meth:`analysis` in the background, then draw (keeping the view)."""
        arrays = self.controller.screen.arrays
        if arrays is None:
            # Only the original's preview is on screen (or a pair without its waveforms): a run
            # in progress draws with the new analysis when it ends; a preview is read again.
            if getattr(self.panes, "original_only", False) and self.source is not None and not self.busy:
                self._start_preview(self.source)
            return
        analysis = self.analysis()
        self.drawing.reanalyse(*arrays, analysis)
        self.view_panel.show_analysing(analysis)

    def _on_reanalysed(self, pair: SpectrogramPair, reference: np.ndarray) -> None:
        self.controller.reanalysed(reference, pair)
        self._after_pair()

    def set_level_range(self, floor_db: float | None, top_db: float | None = None) -> None:
        """Draw both spectrograms from ``floor_db`` to ``top_db`` dB for every pair; None: auto (peak − 100 .. peak)."""
        self.view_panel.set_level_range(floor_db, top_db)

    def hold_difference_range(self, range_db: float | None) -> None:
        """Hold the difference's scale at ±``range_db`` dB across runs (None: per pair)."""
        self.view_panel.hold_difference_range(range_db)

    def _compute_detail(self, start_s: float, end_s: float) -> None:
        """Analyse [start_s, end_s) at full resolution in the background, then draw it."""
        arrays = self.controller.screen.arrays
        if arrays is not None:
            self.drawing.detail(*arrays, start_s, end_s)

    def set_low_frequency_mode(self, on: bool) -> None:
        """Log frequency axis, the 0–500 Hz preset and an analysis of at least 4096 samples
        (:data:`LOW_FREQUENCY_ANALYSIS` replaces a shorter one or the lattice); off: linear axis,
        every frequency, and the analysis from before."""
        with QSignalBlocker(self.view_panel.low_mode_check):
            self.view_panel.low_mode_check.setChecked(on)
        switch = self.controller.low_frequency_switch(on, self.analysis())
        if switch is not None:
            self.set_analysis(switch)
        self.view_panel.log_check.setChecked(on)
        if on:
            self.panes.show_low_frequencies()
        elif self.panes.pair is not None:
            self.panes.show_frequency_range(0.0, self.panes.pair.max_hz)

    # ------------------------------------------------------------------ saving

    def default_image_name(self) -> str:
        """What "Save image…" proposes: the clip, the codec and the analysis on screen
        (``music-sgc-12-hann-2048.png``), not always ``inspect.png``."""
        return self.controller.image_name(self.panes.pair, self.panes.log_frequency)

    def save_dialog(self) -> None:
        default = str(Path(self._last_dir) / self.default_image_name())
        path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", default, "PNG image (*.png)")
        if path:
            self.save_png(path)

    def save_png(self, path: str | os.PathLike[str]) -> Path | None:
        """Save this view (spectrograms, read-out and panels) as a PNG; None (and a message) on failure."""
        saved, text = save_widget_png(self, path)
        self.show_message(text, error=saved is None)
        return saved

    # ------------------------------------------------------------------ listening

    def _offer_original(self) -> None:
        """With no result of this clip on screen (a preview, a cancelled or failed run), the original
        alone can still be heard."""
        original = self.controller.original_to_offer()
        if self.panes.original_only and original is not None:
            self._load_player(original, None)

    def _load_player(self, reference: np.ndarray, reconstruction: np.ndarray | None) -> None:
        self.listen.load(reference, reconstruction, self.result.sample_rate if self.result else 44_100)

    def toggle_play(self) -> None:
        self.listen.toggle_play()

    def select_stimulus(self, index: int) -> None:
        """Hear the original (0) or the reconstruction (1) from the same position."""
        self.listen.select_stimulus(index)

    def seek(self, seconds: float) -> None:
        self.listen.seek(seconds)

    def set_looping(self, on: bool) -> None:
        """Show the loop region (and loop it) or hide it (and play on)."""
        self.listen.set_looping(on)

    # ------------------------------------------------------------------ closing

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Cancel runs, wait for their threads (up to ``timeout_s``) and close the audio output."""
        self.listen.playhead_timer.stop()
        self.workers.shutdown(timeout_s)
        if self.listen.player is not None:
            self.listen.player.close()


__all__ = ["InspectView"]
