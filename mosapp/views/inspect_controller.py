"""The Inspect view's state, without a window: :class:`InspectController`.

::

    controller.open(source)                 the clip; what was shown of the last one is forgotten
    controller.request(codec, config, …)    ─► InspectRequest (None without a clip)
    controller.start(job)                   the run in progress (any token: the view's worker)
        controller.progress(p)              ─► True when ``text`` / ``bar`` changed
        controller.cancel()                 records when Cancel was pressed
    controller.finish(job)                  ─► True when ``job`` was the run in progress
    controller.original_shown(preview)      what is on screen: the original alone …
    controller.pair_shown(ref, rec, source) … or a pair (a rerun of the clip keeps its view)

The controller owns what the Inspect view knows besides its widgets: the clip, the result,
which run is current, the run's progress in its own units with an ETA once a step's rate is
known (the clock is injected, so tests drive it), and what is on screen (whose original,
whose pair, the waveforms it was drawn from, the analysis to restore after the
low-frequency mode). The view (:mod:`mosapp.gui.inspect_view`) draws it and starts the
workers; nothing here imports Qt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mosapp.codecs import get_codec
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.codecs.twoband import TwoBandCodec
from mosapp.core.config import GEOMETRIES, PipelineConfig
from mosapp.core.job import STEP, Progress
from mosapp.core.metrics import METRICS
from mosapp.evaluation.evaluate import METRIC_NAMES
from mosapp.study.definition import STUDIES_DIR, load_study
from mosapp.views.jobs import (
    STAGE_WEIGHTS,
    AudioSource,
    InspectRequest,
    InspectResult,
    OriginalPreview,
    job_fraction,
    stage_text,
)
from mosapp.views.spectrogram_data import LOW_FREQUENCY_ANALYSIS, Analysis, SpectrogramPair

#: What the Inspect view runs first: the README's default codec, or the seed's upper bound
#: (no weights needed) where that one cannot run.
DEFAULT_INSPECT_CODEC = "sgc-12"
FALLBACK_INSPECT_CODEC = "pghi-only"
#: An ETA is shown once a step has run this long (its rate is known by then).
ETA_AFTER_S = 1.0
#: The analysis menu's entry for the codec's own lattice.
CODEC_LATTICE = "codec lattice"
#: Shortest window the low-frequency mode keeps (a shorter one is switched to LOW_FREQUENCY_ANALYSIS).
LOW_FREQUENCY_MIN_WINDOW = 4096
#: The ViSQOL menu's entries: run it always, never, or (None) up to the pipeline's limit.
VISQOL_CHOICES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}

#: The metrics panel's words for each figure of the codec table (:data:`mosapp.evaluation.evaluate.METRIC_NAMES`,
#: names of the registry :data:`mosapp.core.metrics.METRICS`): (label, tooltip). The two words that name two
#: quantities (bitrate, consistency) take the registry's label, which says which one.
_METRIC_TEXT = {
    "file_kbps": (METRICS["file_kbps"].label, "8 × .sgc file bytes / seconds / 1000 (header included)"),
    "mel_distance": ("mel distance", "DAC multi-scale mel distance; lower is better"),
    "spectral_convergence_db": ("spectral convergence", "thesis-lattice STFT magnitude; lower is better"),
    "si_sdr_db": ("SI-SDR", "scale-invariant SDR; phase-sensitive, so low for every rebuilt phase"),
    "visqol": ("ViSQOL MOS-LQO", "ViSQOL v3 audio mode at 48 kHz, 1–5; higher is better"),
    "decoded_consistency": (METRICS["decoded_consistency"].label, "of the decoded audio's log spectrogram; higher is more consistent"),
    "low_band_distance_db": (
        "low band 20–1000 Hz: distance",
        "mean |dB difference| over 20–1000 Hz of a 4096-point Hann STFT, floored at the original's peak − 80 dB; "
        "lower is better"),
    "low_band_correlation": (
        "low band: correlation",
        "per-frame Pearson correlation of the two dB spectra over 20–1000 Hz (do the harmonics survive?); 1 is best"),
    "high_band_distance_db": ("high band > 1 kHz: distance", "the same distance above 1 kHz; lower is better"),
    "high_band_correlation": ("high band: correlation", "the same correlation above 1 kHz; 1 is best"),
}
#: Metrics panel rows: (registry name, label, tooltip), in the codec table's order.
METRIC_ROWS = tuple((name, *_METRIC_TEXT[name]) for name in METRIC_NAMES)


def mono(frames: np.ndarray) -> np.ndarray:
    """(n, channels) samples as one float32 channel (the mean of the channels)."""
    return np.ascontiguousarray(frames.mean(axis=1), dtype=np.float32)


def format_metric(key: str, value: float | None) -> str:
    """A metric's value for the panel: ``12.34 kbit/s``, ``-3.21 dB``, ``0.876``; ``—`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if key == "file_kbps":
        return f"{value:.2f} kbit/s"
    if key.endswith("_db"):
        return f"{value:.2f} dB"
    return f"{value:.3f}"


def metric_texts(result: InspectResult) -> dict[str, tuple[str, str]]:
    """The metrics panel for ``result``: (value, tooltip) by metric name, a missing score's reason
    added to its tooltip; the bitrate also gives the file's bytes."""
    values = {"file_kbps": result.file_kbps, **result.scores}
    out = {}
    for key, _label, tooltip in METRIC_ROWS:
        note = result.notes.get(key)
        out[key] = (format_metric(key, values.get(key, math.nan)), f"{tooltip}\n{note}" if note else tooltip)
    out["file_kbps"] = (f"{result.file_kbps:.2f} kbit/s ({result.file_bytes:,} bytes)", out["file_kbps"][1])
    return out


def eta_text(seconds: float) -> str:
    """``about 40 s left`` / ``about 3 min 10 s left``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"about {seconds} s left"
    return f"about {seconds // 60} min {seconds % 60:02d} s left"


def is_spectrogram_codec(name: str) -> bool:
    """Whether the codec codes the spectrogram image (so geometry and phase apply to it)."""
    try:
        return isinstance(get_codec(name), SpectrogramCodec)
    except Exception:  # noqa: BLE001 — an unknown name is refused when the run starts
        return True


def is_two_band_codec(name: str) -> bool:
    """Whether the codec codes the two-band representation (its lattice is two lattices joined at the crossover)."""
    try:
        return isinstance(get_codec(name), TwoBandCodec)
    except Exception:  # noqa: BLE001 — an unknown name is refused when the run starts
        return False


def run_info(result: InspectResult) -> str:
    """``sgc-12 · thesis · phase pghi+fgla · cpu · …``; a waveform codec (Opus, MP3, AAC, a
    low-pass anchor) has no spectrogram geometry or phase backend, so none is named."""
    r = result.request
    exact = "" if result.display.exact else " (overview)"
    if is_spectrogram_codec(r.codec):
        geometry = getattr(get_codec(r.codec), "geometry", None) or r.config.geometry
        what = f"{r.codec} · {geometry} · phase {r.config.phase} · {result.device}"
    else:
        what = r.codec
    return f"{what} · {result.seconds:.2f} s of audio in {sum(result.timings_s.values()):.1f} s{exact}"


def codec_analysis(codec: str, geometry: str) -> Analysis:
    """The lattice ``codec`` coded (``geometry`` where the codec has none of its own): what
    the analysis menu's "codec lattice" draws."""
    try:
        own = getattr(get_codec(codec), "geometry", None)
    except Exception:  # noqa: BLE001 — an unknown or broken codec is refused when the run starts
        own = None
    geometry = own if own in GEOMETRIES else geometry
    if is_two_band_codec(codec):
        return Analysis.two_band(geometry)
    return Analysis.lattice(geometry)


def study_clips(folders: tuple[Path, ...] | None = None) -> tuple[dict[str, AudioSource], list[Exception]]:
    """Every clip of the studies in ``folders`` (default: ``studies/`` here and the installed
    studies) by the label the chooser shows, and the error of each study that could not be read."""
    clips: dict[str, AudioSource] = {}
    problems: list[Exception] = []
    if folders is None:
        folders = tuple(sorted({Path("studies").resolve(), STUDIES_DIR.resolve()}))
    for folder in folders:
        for path in sorted(folder.glob("*.toml")):
            try:
                study = load_study(path, check_codecs=False)
            except Exception as exc:  # noqa: BLE001 — one broken study must not hide the others
                problems.append(exc)
                continue
            for clip in study.clips:
                end = clip.start_s + clip.length_s
                label = f"{study.name}: {clip.name} ({clip.start_s:g}–{end:g} s)"
                clips[label] = AudioSource(str(clip.path), clip.start_s, clip.length_s,
                                           label=f"{study.name} / {clip.name}")
    return clips, problems


@dataclass
class _Rate:
    """Where the ETA's rate is measured from: the (stage, unit) it counts, and when and at what count it began."""

    key: tuple[str, str] | None = None
    start: tuple[float, int] = (0.0, 0)


@dataclass
class Screen:
    """What the Inspect view shows of its clip.

    Attributes:
        shown_source: whose pair is on screen (None: no result of this clip drawn yet).
        original_source: whose original alone is on screen.
        original_complete: False while the original shown is still growing (a long file being read).
        original_audio: the original on screen, once read to its end.
        arrays: the waveforms the pair on screen was drawn from (None: no pair, or one drawn without them).
        stimulus_files: a study stimulus opened from Results: (stimulus, reference).
    """

    shown_source: AudioSource | None = None
    original_source: AudioSource | None = None
    original_complete: bool = False
    original_audio: np.ndarray | None = None
    arrays: tuple[np.ndarray, np.ndarray] | None = None
    stimulus_files: tuple[Path, Path] | None = None


class InspectController:
    """The Inspect view's clip, run, progress and screen state, without Qt.

    Args:
        clock: seconds, monotonic (default :func:`time.perf_counter`); the ETA's time base.
    """

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.source: AudioSource | None = None
        self.result: InspectResult | None = None
        self.screen = Screen()
        #: The analysis the low-frequency mode replaced (restored when it ends).
        self.analysis_before_low: Analysis | None = None
        #: The run in progress (the view's worker), or None.
        self.job: object | None = None
        #: The job's stage, and a library call's units inside it (stage ``STEP``).
        self.stage: Progress | None = None
        self.step: Progress | None = None
        #: The progress line and the bar (0 … 1000, never moving back within a run).
        self.text = ""
        self.bar = 0
        #: When Cancel was pressed for the run in progress.
        self.cancel_requested_at: float | None = None
        self._rate = _Rate()

    # ------------------------------------------------------------------ the clip and the screen

    def open(self, source: AudioSource) -> None:
        """Make ``source`` the clip; what is shown is forgotten (:meth:`clear`)."""
        self.source = source
        self.clear()

    def clear(self) -> None:
        """Forget the result and what is on screen (the clip stays)."""
        self.result = None
        self.screen = Screen()

    def original_shown(self, p: OriginalPreview) -> bool | None:
        """Record that ``p``'s original alone is drawn; None when it is not the clip's (not to be
        drawn), else whether it is the same original growing (drawn again keeping the view)."""
        if p.source != self.source:
            return None
        again = self.screen.original_source == p.source
        self.screen.original_source = p.source
        self.screen.original_complete = p.complete
        self.screen.original_audio = p.reference if p.complete else None
        self.screen.shown_source = None  # no result of this clip on screen yet
        return again

    def pair_shown(self, reference: np.ndarray | None, reconstruction: np.ndarray | None,
                   source: AudioSource | None, *, pair_on_screen: bool) -> bool:
        """Record a pair drawn from these waveforms (when both are given) for ``source``; whether it
        reruns the clip already on screen (whose zoom, frequency range and levels are kept)."""
        self.screen.arrays = ((reference, reconstruction) if reference is not None and reconstruction is not None
                              else None)
        rerun = source is not None and source == self.screen.shown_source and pair_on_screen
        self.screen.shown_source = source
        return rerun

    def reanalysed(self, reference: np.ndarray, pair: SpectrogramPair) -> None:
        """A new analysis of the waveforms on screen: the result drawn from them shows it."""
        if self.result is not None and self.result.reference is reference:
            self.result.display = pair

    def original_to_offer(self) -> np.ndarray | None:
        """With no result of this clip on screen (a preview, a cancelled or failed run), the
        original that can still be heard (None while it is being read)."""
        return self.screen.original_audio if self.result is None else None

    def result_is_current(self) -> bool:
        """Whether the result on screen is the clip's (after a cancel: the previous run's)."""
        return self.result is not None and self.result.request.source == self.source

    # ------------------------------------------------------------------ the run

    def request(self, codec: str, config: PipelineConfig, visqol: str, analysis: Analysis) -> InspectRequest | None:
        """The request the controls describe (``visqol``: a :data:`VISQOL_CHOICES` entry), or None without a clip."""
        if self.source is None:
            return None
        return InspectRequest(self.source, codec, config, VISQOL_CHOICES[visqol], analysis)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(self, job: object) -> None:
        """``job`` is the run in progress (the previous one is no longer followed); progress starts at 0."""
        self.job = job
        self.stage = self.step = None
        self._rate = _Rate()
        self.bar = 0
        self.text = "starting"
        self.cancel_requested_at = None

    def is_current(self, job: object) -> bool:
        return job is self.job

    def finish(self, job: object) -> bool:
        """``job`` ended; False (nothing to do) when it is not the run in progress."""
        if job is not self.job:
            return False
        self.job = None
        return True

    def cancel(self) -> bool:
        """Cancel was pressed; False when no run is in progress."""
        if self.job is None:
            return False
        self.cancel_requested_at = self.clock()
        self.text = "cancelling…"
        return True

    def progress(self, p: Progress) -> bool:
        """Follow the run's progress event ``p``; True when :attr:`text` and :attr:`bar` were updated."""
        if p.stage == STEP:
            self.step = p
        else:
            self.step = None  # a library call's units belong to the step they came from
            self.stage = p
        if self.stage is None:
            return False
        self.text = self._progress_text()
        self.bar = max(self.bar, int(1000 * self.fraction()))
        return True

    def fraction(self) -> float:
        """The run's share done (the stages' weights, and inside a one-call stage its call's units)."""
        stage, step = self.stage, self.step
        if stage is None:
            return 0.0
        done = job_fraction(stage)
        if (step is not None and step.total > 0 and stage.done < stage.total and stage.total <= 1
                and stage.stage in ("read", "encode")):
            # A stage that is one library call (reading, encoding): that call's units. (Decoding
            # reports lattice frames itself; its tile decoding before them is shown, not counted.)
            done += STAGE_WEIGHTS.get(stage.stage, 0.0) * min(1.0, step.done / step.total)
        return min(1.0, done)

    def _progress_text(self) -> str:
        """What the run is doing, in its own units, and an ETA for that step once it is known:
        ``Encoding — sgc-12 · tiles analysed 120 of 290 · about 40 s left``."""
        stage, step = self.stage, self.step
        if stage is None:
            return ""
        text = stage_text(stage)
        key: tuple[str, str] | None
        if stage.total > 1:
            key, done, total = (stage.stage, stage.unit), stage.done, stage.total
        elif step is not None:
            key, done, total = (stage.stage, step.unit), step.done, step.total
        else:
            key = None
        if step is not None:
            text += f" · {step.unit} {step.done:,} of {step.total:,}"
        if key is None:
            return text
        now = self.clock()
        if key != self._rate.key:
            self._rate = _Rate(key, (now, done))
            return text
        t0, done0 = self._rate.start
        if done > done0 and now - t0 >= ETA_AFTER_S and total > done:
            text += f" · {eta_text((now - t0) / (done - done0) * (total - done))}"
        return text

    # ------------------------------------------------------------------ analysis and naming

    def lattice_analysis(self, chosen_codec: str, geometry: str) -> Analysis:
        """The "codec lattice": the lattice of the codec whose pair is on screen (before a run: the chosen codec's)."""
        codec = self.result.request.codec if self.result is not None else chosen_codec
        return codec_analysis(codec, geometry)

    def low_frequency_switch(self, on: bool, current: Analysis) -> Analysis | None:
        """The analysis to change to when the low-frequency mode turns ``on`` (or off), or None to keep
        ``current``: on, at least :data:`LOW_FREQUENCY_MIN_WINDOW` samples (:data:`LOW_FREQUENCY_ANALYSIS`
        replaces a shorter window or a lattice); off, the analysis from before."""
        if on and (current.is_lattice or current.window_length < LOW_FREQUENCY_MIN_WINDOW):
            self.analysis_before_low = current
            return LOW_FREQUENCY_ANALYSIS
        if not on and self.analysis_before_low is not None:
            before, self.analysis_before_low = self.analysis_before_low, None
            return before
        return None

    def image_name(self, pair: SpectrogramPair | None, log_frequency: bool) -> str:
        """What "Save image…" proposes: the clip, the codec and the analysis on screen
        (``music-sgc-12-hann-2048.png``), not always ``inspect.png``."""
        parts = []
        if self.screen.stimulus_files is not None:
            parts.append(self.screen.stimulus_files[0].stem)
        elif self.source is not None:
            parts.append(Path(self.source.name).stem)
            parts.append(self.result.request.codec if self.result is not None else "original")
        if pair is not None:
            parts.append(pair.analysis.short_name)
        if log_frequency:
            parts.append("log")
        text = "-".join(parts) or "inspect"
        safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in text.lower())
        return "-".join(filter(None, safe.split("-"))) + ".png"


__all__ = [
    "CODEC_LATTICE",
    "DEFAULT_INSPECT_CODEC",
    "ETA_AFTER_S",
    "FALLBACK_INSPECT_CODEC",
    "LOW_FREQUENCY_MIN_WINDOW",
    "METRIC_ROWS",
    "InspectController",
    "Screen",
    "codec_analysis",
    "eta_text",
    "format_metric",
    "is_spectrogram_codec",
    "is_two_band_codec",
    "metric_texts",
    "mono",
    "run_info",
    "study_clips",
]
