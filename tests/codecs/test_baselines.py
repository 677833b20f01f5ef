"""EnCodec and DAC conditions: the real architectures (transformers), random weights saved as local checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from mosapp.codecs import get_codec
from mosapp.codecs.baselines import DAC, ENCODEC, ENV_DIR, pack_indices, unpack_indices
from mosapp.core import metrics
from mosapp.core.config import PipelineConfig
from tests.cli.common import run_main
from tests.helpers import RATE, music_like, require_module

require_module("transformers", "the baselines extra (scripts/setup installs it)")


def _save_models(folder):
    from mosapp.models._torchvision import ensure_importable

    ensure_importable()
    import torch
    from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel

    torch.manual_seed(0)
    # EnCodec 24 kHz exactly as published (15 M parameters); DAC 44.1 kHz's architecture with narrower layers
    # (the same strides, hop 512, 9 codebooks of 1024), as the MS-ILLM tests shrink HiFiC.
    encodec = EncodecModel(EncodecConfig()).eval()
    with torch.no_grad():
        # Its codebooks start as zeros (training initialises them by k-means on the encoder's output): draw them
        # around that output, as k-means would place them, so that different audio gets different codes.
        h = encodec.encoder(0.3 * torch.randn(1, 1, 24_000))[0]  # (dim, frames)
        centre, spread = h.mean(dim=1), h.std(dim=1)
        for k, layer in enumerate(encodec.quantizer.layers):
            embed = layer.codebook.embed
            embed.copy_((centre if k == 0 else 0.0) + torch.randn_like(embed) * spread * 0.7**k)
    encodec.save_pretrained(folder / ENCODEC.folder_name)
    DacModel(DacConfig(sampling_rate=44_100, hop_length=512, n_codebooks=9, codebook_size=1024,
                       encoder_hidden_size=8, decoder_hidden_size=32, downsampling_ratios=[2, 4, 8, 8],
                       upsampling_ratios=[8, 8, 4, 2])).save_pretrained(folder / DAC.folder_name)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("baselines")
    _save_models(folder)
    return folder


def test_indices_pack_at_ten_bits_each():
    codes = np.random.default_rng(0).integers(0, 1024, size=(2, 9, 37))
    data = pack_indices(codes)
    assert len(data) == math.ceil(codes.size * 10 / 8)
    np.testing.assert_array_equal(unpack_indices(data, codes.size).reshape(codes.shape), codes)


def test_without_weights_each_is_one_sentence_naming_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("encodec-12", "dac-8"):
        a = get_codec(name).availability()
        assert not a.ok and a.reason.endswith(".") and "\n" not in a.reason
        assert "snapshot_download(" in a.reason and str(tmp_path / "empty") in a.reason


@pytest.mark.slow
@pytest.mark.parametrize("name", ["encodec-12", "dac-8"])
def test_encode_and_decode_through_the_command_line(name, weights, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(ENV_DIR, str(weights))
    codec = get_codec(name)
    assert codec.availability().ok
    x = music_like(2.3, seed=5, channels=2)
    wav = tmp_path / "in.wav"
    sf.write(str(wav), x.T, RATE, subtype="FLOAT")
    rc, out, err = run_main(capsys, "encode", wav, tmp_path / "x.sgc", "--codec", name, "--per-channel", "--json")
    assert rc == 0, err
    rc, out2, err = run_main(capsys, "decode", tmp_path / "x.sgc", tmp_path / "out.wav")
    assert rc == 0, err
    y, rate = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
    assert rate == RATE and y.shape == x.T.shape  # length, rate and channels restored
    # Honest kbps: the payload is exactly codebooks x frames x 10 bits per channel.
    spec = DAC if name.startswith("dac") else ENCODEC
    frames = math.ceil(x.shape[1] * spec.rate / RATE / spec.frame_hop)
    encoded = codec.encode(x, PipelineConfig())
    assert len(encoded.payload) == math.ceil(2 * codec.codebooks * frames * 10 / 8)
    size = (tmp_path / "x.sgc").stat().st_size
    import json

    facts = json.loads(out)
    seconds = x.shape[1] / RATE
    assert facts["file_kbps"] == pytest.approx(metrics.kbps(size, seconds), rel=1e-12)
    assert facts["payload_kbps"] == pytest.approx(8 * len(encoded.payload) / seconds / 1000, rel=1e-12)
    assert facts["payload_kbps"] == pytest.approx(2 * codec.nominal_kbps, rel=0.02)  # two channels at the nominal rate
    # Aligned: the output follows the input in time (no shift from resampling, padding or cropping). The
    # difference a burst makes to the decoding of silence starts where the burst starts: EnCodec is causal,
    # so not a sample before it; DAC's convolutions see a little ahead, but no more than they reach.
    silence = np.zeros((1, RATE * 2), np.float32)
    burst = silence.copy()
    burst[:, RATE: RATE + RATE // 5] = music_like(0.2, seed=1)[:, : RATE // 5] * 2
    d = np.abs(codec.decode(codec.encode(burst, PipelineConfig()), PipelineConfig())
               - codec.decode(codec.encode(silence, PipelineConfig()), PipelineConfig()))[0]
    assert d.max() > 0
    changed = np.flatnonzero(d > 1e-3 * d.max())
    ahead = int(0.002 * RATE) if name.startswith("encodec") else int(0.2 * RATE)
    assert RATE - ahead <= changed.min() <= RATE + int(0.05 * RATE), (changed.min(), RATE)
    centre = float((np.arange(d.size) * d**2).sum() / (d**2).sum())
    assert RATE - 0.05 * RATE <= centre <= RATE + 0.4 * RATE, centre  # the burst is 1.0-1.2 s


@pytest.mark.slow
def test_a_study_prepares_with_a_baseline_condition(weights, monkeypatch, tmp_path):
    from tests.study.conftest import prepare, write_study

    monkeypatch.setenv(ENV_DIR, str(weights))
    path = write_study(tmp_path, "b", conditions=["reference", "dac-8"], starts=(0.0,), length_s=1.0,
                       database=str(tmp_path / "b.sqlite"), stimuli_dir=str(tmp_path / "stim"))
    result = prepare(path)
    assert result.rendered == result.total == 2
