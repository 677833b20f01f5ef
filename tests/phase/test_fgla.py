"""FGLA: the CPU kernels, the torch path a GPU runs, and the iteration's definition agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosapp.core import dsp
from mosapp.core.config import GEOMETRIES
from mosapp.core.metrics import spectral_convergence_db
from mosapp.phase import fgla as fgla_module
from mosapp.phase import get_backend
from mosapp.phase.fgla import fgla_refine, project_magnitude


def _magnitude(signal: np.ndarray, name: str, device: str = "cpu", dtype: torch.dtype = torch.float32):
    g = GEOMETRIES[name]
    xp, _ = dsp.pad_for_lattice(torch.from_numpy(signal).to(device, dtype), g)
    return g, dsp.stft(xp, g).abs()


def _sc_of(coeffs: torch.Tensor, target: torch.Tensor, g) -> float:
    """Spectral convergence of the signal the coefficients synthesise, re-analysed."""
    y = dsp.istft(coeffs.to(torch.complex64), g)
    return spectral_convergence_db(target.cpu().numpy(), dsp.stft(y, g).abs().cpu().numpy())


def _by_definition(magnitude: torch.Tensor, init: torch.Tensor, g, iterations: int, seed: torch.Tensor | None,
                   alpha: float = fgla_module.DEFAULT_ALPHA) -> torch.Tensor:
    """FGLA written from its definition with the library's own synthesis and analysis: the
    block's frames overlap-added into a zero buffer wide enough not to wrap, re-analysed."""
    a, lg = g.hop, g.window_length
    frames = init.shape[-1]
    lead = lg // (2 * a)
    length = ((frames - 1) * a + lg + 2 * g.channels) // g.channels * g.channels

    def p_mag(c: torch.Tensor) -> torch.Tensor:
        out = magnitude * torch.exp(1j * torch.angle(c))
        if seed is not None:
            out[:, : seed.shape[-1]] = seed
        return out

    def p_con(c: torch.Tensor) -> torch.Tensor:
        buf = dsp.synthesize(c, g, torch.zeros(length, dtype=magnitude.dtype), frame_start=lead)
        return dsp.stft(buf, g, lead, lead + frames)

    c_prev = t = init
    for _ in range(iterations):
        c = p_con(p_mag(t))
        t = c + alpha * (c - c_prev)
        c_prev = c
    return p_mag(c_prev)


@pytest.mark.parametrize("name", ["thesis", "wide"])
@pytest.mark.parametrize("kernels", [True, False])
def test_both_paths_follow_the_definition(name, kernels, music):
    """The CPU kernels and the torch path are the definition's iteration, seed frames included."""
    g, mag = _magnitude(music[0][:30000], name)
    seed = get_backend("pghi")(mag[:, :60], g)[:, -20:]
    mag = mag[:, 40:]
    init = get_backend("pghi")(mag, g, seed=seed)
    want = _by_definition(mag, init, g, 6, seed)
    got = fgla_refine(mag, init, g, iterations=6, seed=seed, kernels=kernels)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got[:, :20], seed)
    assert float((got - want).abs().max()) < 1e-4 * float(want.abs().max())


def test_threads_split_the_frames_without_changing_the_result(music):
    """With two threads the frames are split in two parts that share overlap-add slabs."""
    g, mag = _magnitude(music[0], "thesis")
    init = get_backend("pghi")(mag, g)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fgla_refine(mag, init, g, iterations=5)
        torch.set_num_threads(2)
        two = fgla_refine(mag, init, g, iterations=5)
    finally:
        torch.set_num_threads(threads)
    assert float((one - two).abs().max()) < 1e-5 * float(one.abs().max())


def test_double_precision_stays_double(music):
    g, mag = _magnitude(music[0][:20000], "thesis", dtype=torch.float64)
    init = get_backend("pghi")(mag, g)
    assert init.dtype == torch.complex128
    got = fgla_refine(mag, init, g, iterations=4)
    want = _by_definition(mag, init, g, 4, None)
    assert got.dtype == torch.complex128
    assert float((got - want).abs().max()) < 1e-9 * float(want.abs().max())


def test_the_caller_s_start_is_left_untouched(music):
    """The start may share storage with the working copy's layout (time-major); it survives."""
    g, mag = _magnitude(music[0][:20000], "thesis")
    init = get_backend("pghi")(mag, g)
    before = init.clone()
    for kernels in (True, False):
        fgla_refine(mag, init, g, iterations=3, kernels=kernels)
        assert torch.equal(init, before)


def test_magnitude_projection_without_transcendentals():
    """mag * t / |t| over the range an STFT of audio reaches (float32 squares stay normal);
    a zero coefficient has no phase to keep and gives zero, not NaN."""
    t = torch.tensor([[3 + 4j, 0j, -1e-15 + 0j, 1e15 - 1e15j, 2e-3j]], dtype=torch.complex64)
    mag = torch.tensor([[10.0, 5.0, 2.0, 1.0, 7.0]])
    out = project_magnitude(t, mag)
    assert torch.allclose(out[0, 0], torch.tensor(6 + 8j, dtype=torch.complex64))
    assert out[0, 1] == 0
    assert torch.allclose(out.abs()[0, 2:], mag[0, 2:], rtol=1e-6)
    assert torch.allclose(out[0, 2:], mag[0, 2:] * torch.exp(1j * torch.angle(t[0, 2:])), rtol=1e-6)


def test_fgla_converges_and_refines_pghi(music):
    g, mag = _magnitude(music[0][:44100], "wide")
    fgla = get_backend("fgla")
    few = _sc_of(fgla(mag, g, iterations=4), mag, g)
    many = _sc_of(fgla(mag, g, iterations=32), mag, g)
    assert many < few - 1.0
    pghi_only = _sc_of(get_backend("pghi")(mag, g), mag, g)
    refined = _sc_of(get_backend("pghi+fgla")(mag, g, iterations=16), mag, g)
    assert refined < pghi_only - 1.0


def test_fgla_runs_on_every_device(device, music):
    g, mag = _magnitude(music[0][:22050], "thesis", device)
    out = get_backend("pghi+fgla")(mag, g, iterations=4)
    assert out.device.type == device and out.shape == mag.shape
    assert _sc_of(out, mag, g) < -10.0


def test_fgla_keeps_seed_frames(music):
    g, mag = _magnitude(music[0][:44100], "thesis")
    seed = get_backend("pghi")(mag[:, :40], g)[:, -20:]
    out = get_backend("pghi+fgla")(mag[:, 20:], g, seed=seed, iterations=4)
    assert torch.allclose(out[:, :20], seed.to(out.dtype))
