"""invert_magnitude: the block-wise phase reconstruction every magnitude decoder runs."""

from __future__ import annotations

import torch

from mosapp.core import dsp, job
from mosapp.core.config import GEOMETRIES, PipelineConfig
from mosapp.core.metrics import spectral_convergence_db
from mosapp.phase import get_backend
from mosapp.phase.invert import StageTimer, frame_blocks, invert_magnitude


def test_frame_blocks_cover_every_frame_once():
    blocks = list(frame_blocks(1000, 300, 20))
    assert [(b0, b1) for b0, b1, _, _ in blocks] == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert blocks[1][2:] == (280, 620) and blocks[0][2] == 0 and blocks[-1][3] == 1000


def _invert(music, config: PipelineConfig):
    g = GEOMETRIES["thesis"]
    xp, _ = dsp.pad_for_lattice(torch.from_numpy(music[0]), g)
    magnitude = dsp.stft(xp, g).abs()
    asked: list[tuple[int, int]] = []
    finals: list[int] = []

    def frames(start: int, stop: int) -> torch.Tensor:
        asked.append((start, stop))
        return magnitude[:, start:stop]

    timer = StageTimer(torch.device("cpu"))
    progress: list[job.Progress] = []
    y = job.drive(invert_magnitude(frames, magnitude.shape[1], xp.shape[-1], g, config, device=torch.device("cpu"),
                                   timer=timer, on_final=lambda y, n: finals.append(n)), progress.append)
    sc = spectral_convergence_db(magnitude.numpy(), dsp.stft(y, g).abs().numpy())
    return magnitude.shape[1], y, sc, asked, finals, progress, timer


def test_blocks_rebuild_the_magnitude_reporting_frames(music):
    """In blocks with context, the waveform's magnitude is the target's; progress counts the
    committed frames up to all of them; on_final's frontier only grows and ends at every frame."""
    config = PipelineConfig(phase="pghi", block_seconds=0.5, context_frames=16)
    n_frames, y, sc, asked, finals, progress, timer = _invert(music, config)
    block = config.block_frames(GEOMETRIES["thesis"])
    assert y.shape == (n_frames * GEOMETRIES["thesis"].hop,) and y.dtype == torch.float32
    assert sc < -15.0
    assert asked == [(s, e) for _, _, s, e in frame_blocks(n_frames, block, 16)] and len(asked) > 2
    assert [(p.stage, p.unit, p.total) for p in progress] == [("frames", "frames", n_frames)] * len(asked)
    assert [p.done for p in progress] == [b1 for _, b1, _, _ in frame_blocks(n_frames, block, 16)]
    assert finals == sorted(finals) and finals[-1] == n_frames
    assert {"analysis", "phase", "synthesis"} <= set(timer.totals)


def test_one_block_equals_the_backend_on_the_whole_spectrogram(music):
    """With one block the result is the backend's own on the whole magnitude, synthesised."""
    config = PipelineConfig(phase="pghi", block_seconds=1000.0)
    n_frames, y, _, asked, _, _, _ = _invert(music, config)
    assert asked == [(0, n_frames)]
    g = GEOMETRIES["thesis"]
    xp, _ = dsp.pad_for_lattice(torch.from_numpy(music[0]), g)
    coeffs = get_backend("pghi")(dsp.stft(xp, g).abs(), g, seed=None, frame_offset=0,
                                  iterations=config.fgla_iterations)
    assert torch.equal(y, dsp.istft(coeffs.to(torch.complex64), g, xp.shape[-1]))
