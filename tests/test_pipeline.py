import threading
import time

import numpy as np
import pytest
import soundfile as sf

from mosapp.core import job, metrics
from mosapp.core.audio import read_audio
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import AudioError
from mosapp.pipeline import roundtrip, run_to_end
from tests.helpers import music_like


def _file(tmp_path, signal: np.ndarray, rate: int, subtype="PCM_16", name="in.wav"):
    path = tmp_path / name
    sf.write(path, signal.T, rate, subtype=subtype)
    return str(path)


def test_output_has_the_inputs_length_rate_and_channels(tmp_path, device):
    path = _file(tmp_path, music_like(1.3, 48_000, channels=2), 48_000, "PCM_24")
    audio = read_audio(path)
    result = run_to_end(roundtrip(audio, PipelineConfig(device=device), visqol=False))
    assert result.output.shape == (2, int(1.3 * 48_000))
    assert result.info.sample_rate == 48_000
    assert result.output.dtype == np.float32
    # Mono mix-down: both output channels carry the same reconstruction.
    assert np.array_equal(result.output[0], result.output[1])
    assert result.metrics.spectral_convergence_db < -12
    assert result.metrics.mel_distance is not None and result.metrics.visqol is None
    # The band metrics, over the kept waveforms (the mono mix of the reference).
    band = metrics.band_metrics(result.reference, result.reconstruction, 44_100)
    assert result.metrics.low_band_distance_db == pytest.approx(band["low_band_distance_db"])
    assert 0 < result.metrics.low_band_distance_db < 10 and 0.5 < result.metrics.low_band_correlation <= 1
    assert result.metrics.high_band_correlation is not None
    assert set(result.timings_s) >= {"analysis", "phase", "synthesis", "metrics"}


def test_per_channel_processing_keeps_channels_apart(tmp_path):
    left = music_like(1.0, 44_100, seed=1)[0]
    right = music_like(1.0, 44_100, seed=2)[0]
    path = _file(tmp_path, np.stack([left, right]), 44_100)
    result = run_to_end(roundtrip(read_audio(path, mono=False), PipelineConfig(mono=False), visqol=False))
    assert result.output.shape == (2, 44_100)
    assert not np.allclose(result.output[0], result.output[1])


def test_blocks_match_one_pass_quality_and_report_progress(tmp_path):
    audio = read_audio(_file(tmp_path, music_like(3.0, 44_100, seed=3), 44_100))
    one = run_to_end(roundtrip(audio, PipelineConfig(block_seconds=1000.0), visqol=False))
    events = []
    blocks = run_to_end(roundtrip(audio, PipelineConfig(block_seconds=0.75, context_frames=32), visqol=False),
                        events.append)
    frames = [e.done for e in events if e.stage == "frames"]
    assert len(frames) > 3 and frames == sorted(frames) and frames[-1] == events[0].total
    assert blocks.metrics.spectral_convergence_db <= one.metrics.spectral_convergence_db + 0.5


@pytest.mark.parametrize("phase", ["tifresi", "fgla", "pghi+fgla"])
def test_every_backend_runs_through_the_pipeline(tmp_path, phase):
    audio = read_audio(_file(tmp_path, music_like(1.0, 44_100), 44_100))
    config = PipelineConfig(geometry="thesis", phase=phase, fgla_iterations=8, block_seconds=0.45)
    result = run_to_end(roundtrip(audio, config, visqol=False))
    assert result.output.shape == (1, 44_100)
    assert result.metrics.spectral_convergence_db < -5


def test_silent_and_too_short_inputs_are_refused(tmp_path):
    silent = read_audio(_file(tmp_path, np.zeros((1, 44_100), np.float32), 44_100, name="silent.wav"))
    with pytest.raises(AudioError, match="silent.wav is silent"):
        run_to_end(roundtrip(silent))
    short = read_audio(_file(tmp_path, music_like(0.01, 44_100), 44_100, name="short.wav"))
    with pytest.raises(AudioError, match="shorter than one analysis window"):
        run_to_end(roundtrip(short))


def test_visqol_runs_when_asked(tmp_path):
    audio = read_audio(_file(tmp_path, music_like(2.0, 44_100), 44_100))
    result = run_to_end(roundtrip(audio, visqol=True))
    assert 3.0 < result.metrics.visqol <= 5.0


def test_the_output_block_by_block_equals_the_whole_output(tmp_path):
    """What `mosapp roundtrip` writes (output_blocks) is the output, here resampled and upmixed."""
    path = _file(tmp_path, music_like(2.3, 48_000, channels=2), 48_000, "PCM_24")
    result = run_to_end(roundtrip(read_audio(path), PipelineConfig(device="cpu"), compute_metrics=False))
    blocks = np.concatenate(list(result.output_blocks()), axis=1)
    assert blocks.dtype == np.float32 and blocks.shape == (2, int(2.3 * 48_000))
    assert np.array_equal(blocks, result.output)
    # Once made, the output is kept and handed out whole.
    assert list(result.output_blocks())[0] is result.output


def test_the_reconstruction_is_the_inputs_length_and_channels(tmp_path):
    left, right = music_like(1.2, 44_100, seed=5)[0], music_like(1.2, 44_100, seed=6)[0]
    path = _file(tmp_path, np.stack([left, right]), 44_100)
    result = run_to_end(roundtrip(read_audio(path, mono=False), PipelineConfig(mono=False, device="cpu"),
                                  compute_metrics=False))
    assert result.reconstruction.shape == result.reference.shape == (2, left.size)
    assert metrics.spectral_convergence_db(np.abs(np.fft.rfft(result.reference[1])),
                                           np.abs(np.fft.rfft(result.reconstruction[1]))) < -10


@pytest.mark.parametrize("stage", ["frames", "metrics"])
def test_a_cancel_takes_effect_within_a_second(tmp_path, stage):
    """Cancelled while blocks are in flight (the phase on one thread, reading, synthesis and the
    spectral tally on the other) or while the metrics run on their threads: the run stops
    within a second."""
    audio = read_audio(_file(tmp_path, music_like(40.0, 44_100, seed=7), 44_100))
    control = job.JobControl()
    cancelled_at: list[float] = []

    def on_progress(p) -> None:
        if p.stage == stage and not cancelled_at and (stage == "metrics" or p.done >= p.total // 3):
            timer = threading.Timer(0.2, lambda: (cancelled_at.append(time.perf_counter()), control.cancel()))
            timer.start()

    config = PipelineConfig(device="cpu", block_seconds=8.0)
    with pytest.raises(job.Cancelled):
        job.drive(roundtrip(audio, config, visqol=False), on_progress, control)
    assert cancelled_at and time.perf_counter() - cancelled_at[0] < 1.0
