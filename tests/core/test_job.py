"""Cancellation inside long library calls (mosapp.core.job), the way the desktop app cancels a run.

Before this, Cancel on a 10-minute file waited for the step in progress to end: 110-125 s
(the whole encode, a 32 s phase block, the whole-track metrics). Every long call now checks
the job's flag inside its loops; here each one is cancelled at its first report (or before it
starts) and must raise :class:`mosapp.core.job.Cancelled` instead of running to its end.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf
import torch

from mosapp.codecs import get_codec
from mosapp.core import job, metrics
from mosapp.core.audio import read_audio
from mosapp.core.config import PipelineConfig, get_geometry
from mosapp.evaluation import evaluate
from mosapp.phase.fgla import fgla
from mosapp.phase.pghi import pghi_phase
from tests.helpers import RATE, music_like, require_codec


def cancelled_at_first_report(fn, *args, **kwargs) -> list[job.Progress]:
    """Run ``fn`` under a control that cancels at the first report; returns the reports seen."""
    seen: list[job.Progress] = []
    control = job.JobControl()

    def on_progress(p: job.Progress) -> None:
        seen.append(p)
        control.cancel()

    control.on_progress = on_progress
    with control.active(), pytest.raises(job.Cancelled):
        fn(*args, **kwargs)
    return seen


def test_outside_a_job_checks_and_reports_do_nothing():
    job.check()
    job.report(1, 2, "frames")
    assert job.current() is None and job.cancel_flag()[0] == 0
    assert job.call(lambda x: x + 1, 1) == 2


def test_reading_a_file_stops_between_blocks(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, music_like(20.0).T, RATE)
    seen = cancelled_at_first_report(read_audio, path)
    assert seen and seen[0].unit == "frames read" and seen[0].total == 20 * RATE


@pytest.mark.parametrize("name", ["pghi-only", "opus-12", "sgc-12", "sgc-thesis-12", "avif-12"])
def test_encoding_stops_inside_the_codec(name):
    codec = require_codec(name)
    x = music_like(12.0)
    seen = cancelled_at_first_report(codec.encode, x, PipelineConfig())
    assert seen and seen[0].total > 1 and seen[0].unit


def test_decoding_tiles_stops_inside_the_codec():
    codec = get_codec("pghi-only")
    config = PipelineConfig(phase="pghi")
    encoded = codec.encode(music_like(12.0), config)
    device = torch.device("cpu")
    seen = cancelled_at_first_report(lambda: list(codec.decode_images(encoded, device)))
    assert seen[0].unit == "frames decoded"


def test_the_pghi_kernel_returns_when_the_flag_is_set():
    geometry = get_geometry("thesis")
    magnitude = torch.from_numpy(np.random.default_rng(0).random((geometry.bins, 4000)).astype(np.float32))
    pghi_phase(magnitude[:, :100], geometry)  # compiled before the clock starts
    control = job.JobControl()
    control.cancel()
    with control.active(), pytest.raises(job.Cancelled):
        pghi_phase(magnitude, geometry)
    # The same call outside a cancelled job runs to its end.
    assert pghi_phase(magnitude, geometry).shape == magnitude.shape


def test_the_pghi_kernel_stops_mid_block_from_another_thread():
    """The GUI thread sets the flag while the compiled loop runs (it holds no GIL): the call
    ends well before the uncancelled one would (a ratio, so a busy machine does not matter)."""
    geometry = get_geometry("thesis")
    magnitude = torch.from_numpy(np.random.default_rng(1).random((geometry.bins, 20_000)).astype(np.float32))
    pghi_phase(magnitude[:, :100], geometry)
    start = time.perf_counter()
    pghi_phase(magnitude, geometry)
    whole = time.perf_counter() - start
    control = job.JobControl()
    outcome: dict[str, object] = {}

    def run() -> None:
        with control.active():
            try:
                pghi_phase(magnitude, geometry)
                outcome["result"] = "finished"
            except job.Cancelled:
                outcome["result"] = "cancelled"
        outcome["end"] = time.perf_counter()

    thread = threading.Thread(target=run)
    started = time.perf_counter()
    thread.start()
    time.sleep(0.5 * whole)  # past the records, inside the heap integration
    cancelled_at = time.perf_counter()
    control.cancel()
    thread.join(120)
    assert outcome["result"] == "cancelled"
    assert outcome["end"] - cancelled_at < 0.25 * whole, (outcome["end"] - cancelled_at, whole)
    assert outcome["end"] - started < 0.8 * whole


def test_fgla_stops_between_iterations():
    geometry = get_geometry("thesis")
    magnitude = torch.rand(geometry.bins, 500)
    control = job.JobControl()
    control.cancel()
    with control.active(), pytest.raises(job.Cancelled):
        fgla(magnitude, geometry, iterations=32)


def test_a_call_that_cannot_check_is_abandoned_at_once():
    control = job.JobControl()
    threading.Timer(0.1, control.cancel).start()
    start = time.perf_counter()
    with control.active(), pytest.raises(job.Cancelled):
        job.call(time.sleep, 10)
    assert time.perf_counter() - start < 1.0


def test_metrics_come_in_small_steps_and_equal_the_whole_track_ones():
    """score_steps (what a run's Measuring stage yields between) gives the numbers of the
    whole-array metric functions, in many steps instead of four long calls."""
    x = music_like(12.0, seed=2)
    y = (0.7 * x + 0.01 * np.random.default_rng(3).standard_normal(x.shape)).astype(np.float32)
    steps = evaluate.score_steps(x, y, visqol=False)
    events: list[job.Progress] = []
    scores = job.drive(steps, events.append)
    assert len(events) >= 20 and [e.done for e in events] == list(range(len(events)))
    assert events[-1].total == len(events)
    geometry = get_geometry("thesis")
    from mosapp.core import dsp

    mag = lambda a: dsp.stft(dsp.pad_for_lattice(torch.from_numpy(a[0]), geometry)[0], geometry).abs()  # noqa: E731
    assert scores["mel_distance"] == pytest.approx(metrics.mel_distance(x, y, RATE), rel=1e-5)
    assert scores["spectral_convergence_db"] == pytest.approx(metrics.spectral_convergence_db(mag(x), mag(y)), rel=1e-9)
    assert scores["decoded_consistency"] == pytest.approx(
        metrics.consistency(metrics.log_spectrogram_for_consistency(mag(y))), rel=1e-7)
    assert scores["si_sdr_db"] == pytest.approx(metrics.si_sdr_db(x, y))


def _counting(n: int, closed: list[str], name: str = "inner"):
    try:
        for i in range(n):
            yield job.Progress("count", i, n, unit="things")
        return f"{name} done"
    finally:
        closed.append(name)


def test_drive_passes_every_event_and_returns_the_result():
    closed: list[str] = []
    seen: list[job.Progress] = []
    assert job.drive(_counting(3, closed), seen.append) == "inner done"
    assert [p.done for p in seen] == [0, 1, 2] and closed == ["inner"]
    assert job.drive(_counting(2, closed)) == "inner done"


def test_drive_with_a_control_stops_between_steps_and_closes_the_generator():
    closed: list[str] = []
    control = job.JobControl()
    seen: list[job.Progress] = []

    def on_progress(p: job.Progress) -> None:
        seen.append(p)
        if p.done == 1:
            control.cancel()

    with pytest.raises(job.Cancelled):
        job.drive(_counting(10, closed), on_progress, control)
    assert [p.done for p in seen] == [0, 1] and closed == ["inner"]  # closed at once, not at garbage collection
    assert job.current() is None  # the control was the job's only while it ran


def test_drive_makes_the_control_the_jobs_for_library_calls():
    control = job.JobControl()
    reports: list[job.Progress] = []
    control.on_progress = reports.append

    def gen():
        job.report(5, 10, "tiles")  # what a library call inside a step does
        yield job.Progress("encode", 0, 1)
        return job.current()

    assert job.drive(gen(), control=control) is control
    assert reports == [job.Progress(job.STEP, 5, 10, "tiles")]


def test_relay_converts_events_returns_the_result_and_closes_the_inner_generator():
    closed: list[str] = []

    def outer():
        result = yield from job.relay(_counting(4, closed), lambda p: job.Progress("outer", p.done * 10, 40))
        return result.upper()

    seen: list[job.Progress] = []
    assert job.drive(outer(), seen.append) == "INNER DONE"
    assert [(p.stage, p.done) for p in seen] == [("outer", 0), ("outer", 10), ("outer", 20), ("outer", 30)]
    gen = outer()
    next(gen)
    gen.close()
    assert closed == ["inner", "inner"]
