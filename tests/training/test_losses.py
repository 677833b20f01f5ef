"""The loss terms: zero where the decoded patch equals the original, and the bit and rate arithmetic."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mosapp.training.losses import (
    MelLoss,
    bits_per_pixel,
    kbps_from_bpp,
    patch_consistency,
    smoothed_db,
    smoothed_db_l1,
    spectral_convergence_loss,
)


def test_losses_vanish_for_a_perfect_decode_and_grow_with_error():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 256, 64)
    mel = MelLoss("thesis")
    assert float(mel(x, x)) == 0.0 and float(spectral_convergence_loss(x, x)) == 0.0
    worse = (x + 0.05).clamp(0, 1)
    assert float(mel(worse, x)) > 0 and float(spectral_convergence_loss(worse, x)) > 0
    assert float(MelLoss.magnitude(torch.ones(1))) == 1.0  # the image's peak is magnitude 1
    assert float(MelLoss.magnitude(torch.zeros(1))) == pytest.approx(1e-5)  # 100 dB below


def test_bits_per_pixel_and_kbps():
    likelihoods = {"y": torch.full((4,), 0.5), "z": torch.full((2,), 0.25)}
    assert float(bits_per_pixel(likelihoods, 8)) == pytest.approx((4 * 1 + 2 * 2) / 8)
    # 1 bpp × 256 rows × (44100 / hop 64) frames per second = 176.4 kbps on the thesis lattice.
    assert kbps_from_bpp(1.0, "thesis") == pytest.approx(176.4)
    assert kbps_from_bpp(1.0, "thesis", rows=128, sample_rate=5512.5) == pytest.approx(11.025)


def test_patch_consistency_is_a_number():
    assert math.isfinite(patch_consistency(torch.rand(256, 64)))


def test_smoothed_db_l1_sees_what_the_band_metrics_see():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 128, 64)
    assert float(smoothed_db_l1(x, x, 8)) == 0.0
    # Below the -80 dB floor (pixel 0.2 of the 100 dB mapping) nothing counts, whatever the texture.
    quiet = 0.19 * torch.rand(1, 1, 16, 64)
    assert float(smoothed_db_l1(quiet, torch.zeros_like(quiet), 8)) == 0.0
    # Detail finer than the window does not count: a row flickering between -20 and -40 dB every frame
    # has the same smoothed power as a steady row at their power mean; frame by frame it differs by 10 dB.
    flicker = torch.tensor([0.8, 0.6]).repeat(32).reshape(1, 1, 1, 64)
    steady_db = 10 * math.log10((10 ** -2 + 10 ** -4) / 2)
    steady = torch.full_like(flicker, 1 + steady_db / 100)
    assert float(smoothed_db_l1(flicker, steady, 8)) == pytest.approx(0.0, abs=1e-3)
    assert float(smoothed_db_l1(flicker, steady, 1)) > 5.0
    # A harmonic line moved by one row costs its full level difference on both rows.
    line = torch.zeros(1, 1, 8, 64)
    line[..., 3, :] = 1.0
    moved = torch.roll(line, 1, dims=2)
    assert float(smoothed_db_l1(moved, line, 8)) == pytest.approx(2 * 80.0 / 8)
    assert smoothed_db(line, 8).shape[-1] == (64 - 8) // 2 + 1


def test_the_loss_formula_has_one_home():
    """LOSS_FORMULA is what the docs say and what weighted_distortion computes; the card's words follow it."""
    import mosapp.training
    from mosapp.training import losses

    assert losses.LOSS_FORMULA in " ".join(losses.__doc__.split())
    assert losses.LOSS_FORMULA in " ".join(mosapp.training.__doc__.split())
    assert "λ/q²" in losses.LOSS_FORMULA
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "Loss = rate (bpp) + λ/q²·(" in readme and "λ·(" not in readme
    assert losses.card_loss_text().startswith("bpp + lambda / step^2 * (255^2 * MSE(image) + mel_weight * ")
    for name in ("mel_weight", "sc_weight", "sdl_weight"):
        assert name in losses.card_loss_text()
    mse, mel, sc, sdl = (torch.tensor(v) for v in (0.01, 0.2, 0.3, 0.4))
    got = losses.weighted_distortion(0.002, 2.0, mse, mel, sc, sdl, 300.0, 5.0, 40.0)
    assert float(got) == pytest.approx(0.002 / 4.0 * (255.0 ** 2 * 0.01 + 300.0 * 0.2 + 5.0 * 0.3 + 40.0 * 0.4))
