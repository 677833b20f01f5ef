"""The Inspect view's state without Qt: progress in the run's own units with an ETA (on an
injected clock), which run is current, what is on screen, the low-frequency mode's analysis,
the image name, the study clips offered."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mosapp.core.config import PipelineConfig
from mosapp.core.job import STEP, Progress
from mosapp.views.inspect_controller import (
    InspectController,
    codec_analysis,
    eta_text,
    format_metric,
    metric_texts,
    run_info,
    study_clips,
)
from mosapp.views.jobs import AudioSource, InspectRequest, InspectResult, OriginalPreview, read_source
from mosapp.views.spectrogram_data import DEFAULT_ANALYSIS, LOW_FREQUENCY_ANALYSIS, Analysis, analyse_pair

RATE = 44_100
DEFAULT_CONFIG = PipelineConfig()


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_progress_counts_units_and_shows_an_eta():
    clock = Clock()
    c = InspectController(clock=clock)
    c.start(job := object())
    assert c.busy and c.is_current(job) and c.text == "starting" and c.bar == 0
    # A stage without units of its own shows its library call's: the encoder's tiles.
    c.progress(Progress("encode", 0, 1, detail="sgc-12"))
    c.progress(Progress(STEP, 10, 290, "tiles analysed"))
    clock.t += 1.5
    c.progress(Progress(STEP, 20, 290, "tiles analysed"))
    assert "Encoding" in c.text and "tiles analysed 20 of 290" in c.text and "about 40 s left" in c.text
    assert 60 <= c.bar <= 66  # read 5 % + encode 20 % x 20/290
    c.progress(Progress("decode", 20_000, 400_000, detail="phase pghi: frame 20,000 of 400,000", unit="frames"))
    clock.t += 2.0
    c.progress(Progress("decode", 40_000, 400_000, detail="phase pghi: frame 40,000 of 400,000", unit="frames"))
    assert "frame 40,000 of 400,000" in c.text and "about 36 s left" in c.text  # 20 000 frames per 2 s
    assert c.bar == 300  # read + encode + decode 50 % x 1/10
    # Tile decoding before the phase reconstruction: shown while it runs, neither left in the
    # text afterwards nor counted as the decoding's progress (the bar once read 74 % there).
    c.start(job)  # a fresh bar (it never moves back within a run)
    c.progress(Progress("decode", 0, 1, detail="sgc-12"))
    c.progress(Progress(STEP, 411_648, 413_456, "frames decoded"))
    assert "frames decoded 411,648 of 413,456" in c.text
    assert c.bar == 250
    c.progress(Progress("decode", 110_250, 413_456, detail="phase pghi+fgla: frame 110,250 of 413,456", unit="frames"))
    assert "frames decoded" not in c.text
    assert c.bar == int(1000 * (0.25 + 0.5 * 110_250 / 413_456))


def test_no_eta_before_a_step_has_run_a_second_and_the_bar_never_moves_back():
    clock = Clock()
    c = InspectController(clock=clock)
    c.start(object())
    assert not c.progress(Progress(STEP, 1, 10, "tiles"))  # a library call's units before any stage: nothing to show
    c.progress(Progress("decode", 100, 1000, unit="frames"))
    clock.t += 0.5
    c.progress(Progress("decode", 200, 1000, unit="frames"))
    assert "left" not in c.text  # 0.5 s: the rate is not known yet
    clock.t += 0.5
    c.progress(Progress("decode", 300, 1000, unit="frames"))
    assert "about 4 s left" in c.text  # 200 frames per s since it was first seen, 700 to go
    bar = c.bar
    c.progress(Progress("decode", 10, 1000, unit="frames"))
    assert c.bar == bar


def test_only_the_current_run_ends_and_cancel_is_timed():
    clock = Clock(5.0)
    c = InspectController(clock=clock)
    assert not c.cancel()  # nothing to cancel
    first, second = object(), object()
    c.start(first)
    c.start(second)  # a new run: the first is no longer followed
    assert not c.is_current(first) and not c.finish(first) and c.busy
    clock.t = 7.5
    assert c.cancel() and c.cancel_requested_at == 7.5 and c.text == "cancelling…"
    assert c.finish(second) and not c.busy and c.job is None


def test_what_is_on_screen_follows_the_clip():
    c = InspectController()
    a, b = AudioSource("a.wav"), AudioSource("b.wav")
    x = np.zeros(RATE, dtype=np.float32)
    pair = analyse_pair(x, x)
    c.open(a)
    growing = OriginalPreview(a, x, pair, complete=False)
    assert c.original_shown(growing) is False  # the first time: not the same original again
    assert c.original_shown(growing) is True and not c.screen.original_complete
    assert c.original_to_offer() is None  # still being read
    assert c.original_shown(OriginalPreview(a, x, pair, complete=True)) is True
    assert c.screen.original_complete and c.original_to_offer() is x
    assert c.original_shown(OriginalPreview(b, x, pair, complete=True)) is None  # another clip's: not drawn
    assert not c.pair_shown(x, x, a, pair_on_screen=False)  # the first pair of a
    assert c.screen.arrays is not None and c.pair_shown(x, x, a, pair_on_screen=True)  # a rerun keeps the view
    assert not c.pair_shown(None, None, None, pair_on_screen=True) and c.screen.arrays is None
    c.open(b)
    assert c.source == b and c.screen.shown_source is None and c.screen.original_source is None
    assert c.request("pghi-only", DEFAULT_CONFIG, "off", DEFAULT_ANALYSIS).visqol is False
    assert InspectController().request("pghi-only", DEFAULT_CONFIG, "auto", DEFAULT_ANALYSIS) is None  # no clip


def test_the_low_frequency_mode_switches_the_analysis_and_back():
    c = InspectController()
    lattice = codec_analysis("pghi-only", "thesis")
    assert lattice == Analysis.lattice("thesis") and codec_analysis("pghi-only-two-band", "thesis").is_two_band
    assert c.low_frequency_switch(True, lattice) == LOW_FREQUENCY_ANALYSIS
    assert c.low_frequency_switch(False, LOW_FREQUENCY_ANALYSIS) == lattice
    assert c.low_frequency_switch(False, lattice) is None  # nothing to restore
    long_enough = Analysis.stft(4096)
    assert c.low_frequency_switch(True, long_enough) is None  # kept: fine enough already
    assert c.low_frequency_switch(False, long_enough) is None


def test_the_image_name_says_what_is_drawn():
    c = InspectController()
    assert c.image_name(None, False) == "inspect.png"
    c.open(AudioSource("/music/My Song.flac"))
    pair = analyse_pair(np.zeros(RATE, np.float32), np.zeros(RATE, np.float32), analysis=Analysis.stft(2048))
    assert c.image_name(pair, True) == "my-song-original-hann-2048-log.png"
    c.screen.stimulus_files = (Path("st/clip1__sgc-12.wav"), Path("st/clip1__reference.wav"))
    assert c.image_name(None, False) == "clip1__sgc-12.png"


def test_figures_and_times_are_written_for_the_panel():
    assert format_metric("file_kbps", 12.3456) == "12.35 kbit/s"
    assert format_metric("si_sdr_db", -3.21) == "-3.21 dB"
    assert format_metric("visqol", float("nan")) == "—" and format_metric("visqol", None) == "—"
    assert format_metric("mel_distance", 0.8766) == "0.877"
    assert eta_text(39.6) == "about 40 s left" and eta_text(190) == "about 3 min 10 s left" and eta_text(-2) == "about 0 s left"


def test_run_info_names_a_phase_only_for_spectrogram_codecs_and_the_metrics_say_why_one_is_missing():
    x = np.zeros((1, RATE), np.float32)
    pair = analyse_pair(x, x)

    def result(codec: str) -> InspectResult:
        return InspectResult(InspectRequest(AudioSource("a.wav"), codec, PipelineConfig(phase="pghi")), x, x, 1000, 8.0,
                             {"mel_distance": 0.5, "visqol": float("nan")}, {"visqol": "not run: longer than 120 s"},
                             pair, "cpu", {"encode": 0.5, "decode": 1.0})

    assert run_info(result("opus-12")) == "opus-12 · 1.00 s of audio in 1.5 s"
    assert run_info(result("pghi-only")) == "pghi-only · thesis · phase pghi · cpu · 1.00 s of audio in 1.5 s"
    texts = metric_texts(result("pghi-only"))
    assert texts["file_kbps"][0] == "8.00 kbit/s (1,000 bytes)"
    assert texts["mel_distance"][0] == "0.500" and texts["si_sdr_db"][0] == "—"
    assert texts["visqol"][0] == "—" and texts["visqol"][1].endswith("\nnot run: longer than 120 s")


def test_study_clips_are_offered(tmp_path):
    clips, problems = study_clips()
    demo = [label for label in clips if label.startswith("demo: ")]
    assert demo, "studies/demo.toml and its clip are shipped"
    source = clips[demo[0]]
    assert Path(source.path).is_file() and source.length_s > 0 and source.label.startswith("demo / ")
    audio = read_source(source)
    assert audio.samples.shape == (1, round(source.length_s * RATE))
    (tmp_path / "broken.toml").write_text("this is not [ a study", encoding="utf-8")
    clips, problems = study_clips((tmp_path,))
    assert clips == {} and len(problems) == 1

