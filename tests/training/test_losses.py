"""The loss terms: zero where the decoded patch equals the original, and the bit and rate arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from mosapp.training.losses import (
    MelLoss,
    bits_per_pixel,
    kbps_from_bpp,
    patch_consistency,
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
