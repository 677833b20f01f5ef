"""MS-ILLM codec: registry, weight loading (the real code path, with checkpoints written here)
and round trips through the model's real entropy coder.

The published weights cannot be fetched in CI, so the tests write checkpoints: a small
``HiFiCAutoencoder`` in the ``{"state_dict", "hific_kwargs"}`` format for the round trips,
and one bare state_dict of the full published architecture (181 M parameters).
"""

from __future__ import annotations

import os
import urllib.error

import numpy as np
import pytest
import torch

from mosapp.codecs import codec_names, get_codec
from mosapp.codecs import msillm as M
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError, ConfigError, ModelError
from tests.helpers import music_like

SMALL = {"latent_features": 8, "hyper_features": 8, "num_residual_blocks": 0}


def _hific():
    from mosapp.models._torchvision import ensure_importable

    ensure_importable()
    from neuralcompression.models import HiFiCAutoencoder

    return HiFiCAutoencoder


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own checkpoint folder and torch.hub cache; no downloads; no models from other tests."""
    ckpt_dir = tmp_path / "weights"
    ckpt_dir.mkdir()
    monkeypatch.setenv(M.ENV_CHECKPOINT_DIR, str(ckpt_dir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(M.ENV_ALLOW_DOWNLOAD, raising=False)
    M.clear_model_cache()
    yield ckpt_dir
    M.clear_model_cache()


@pytest.fixture(scope="module")
def small_checkpoint() -> dict:
    """A small HiFiC autoencoder's checkpoint in the architecture-override format."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _hific()(**SMALL)
    return {"state_dict": model.state_dict(), "hific_kwargs": dict(SMALL)}


def _write(obj, ckpt_dir, quality="q3"):
    path = ckpt_dir / M.checkpoint_file_name(quality)
    torch.save(obj, path)
    return path


CPU = PipelineConfig(device="cpu", phase="fgla", fgla_iterations=2)


# -- registry and names --------------------------------------------------------------------


def test_registry_lists_q1_to_q6():
    names = codec_names()
    listed = [n for n in names if n.startswith("msillm-")]
    assert listed == [f"msillm-q{i}" for i in range(1, 7)]
    codec = get_codec("msillm-q3")
    assert isinstance(codec, M.MsillmCodec)
    assert (codec.family, codec.name, codec.nominal_kbps) == ("msillm", "msillm-q3", 24.8)
    assert get_codec("msillm-vlo1").name == "msillm-vlo1"  # works by name, not advertised
    with pytest.raises(ConfigError):
        get_codec("msillm-q7")


def test_names_and_urls_are_the_published_ones():
    # neuralcompression.zoo._msillm: msillm_quality_1 … 6 → target_0.035 … 0.9 bpp.
    bpps = ["0.035", "0.07", "0.14", "0.3", "0.45", "0.9"]
    for i, bpp in enumerate(bpps, start=1):
        assert M.checkpoint_file_name(f"q{i}") == f"msillm_target_{bpp}bpp.ckpt"
    assert M.checkpoint_url("q3") == (
        "https://dl.fbaipublicfiles.com/NeuralCompression/2023-muckley-msillm/msillm_target_0.14bpp.ckpt"
    )
    assert M.checkpoint_file_name("vlo1") == "msillm_target_0.00218bpp.ckpt"


# -- missing weights -----------------------------------------------------------------------


def test_missing_weights_one_sentence_and_model_error(_isolated):
    codec = get_codec("msillm-q3")
    availability = codec.availability()
    assert not availability.ok
    reason = availability.reason
    assert "msillm_target_0.14bpp.ckpt" in reason
    assert M.checkpoint_url("q3") in reason
    assert str(_isolated) in reason and M.ENV_CHECKPOINT_DIR in reason
    assert str(M.hub_checkpoint_dir()) in reason
    assert "\n" not in reason and reason.endswith(".")
    with pytest.raises(ModelError) as err:
        codec.encode(music_like(0.3), CPU)
    assert str(err.value) == reason
    with pytest.raises(ModelError) as err:
        codec.prepare(torch.device("cpu"))  # what decoding calls first
    assert str(err.value) == reason


def test_lookup_order_env_dir_then_hub_cache(_isolated, small_checkpoint):
    hub = M.hub_checkpoint_dir()
    hub.mkdir(parents=True)
    hub_file = _write(small_checkpoint, hub)
    assert M.find_checkpoint("q3") == hub_file  # only the hub cache has it
    env_file = _write(small_checkpoint, _isolated)
    assert M.find_checkpoint("q3") == env_file  # the explicit folder wins
    assert get_codec("msillm-q3").availability().ok


# -- damaged and mismatched checkpoints ------------------------------------------------------


def _load_error(path) -> str:
    with pytest.raises(ModelError) as err:
        M.load_model("q3", "cpu")
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    return message


def test_corrupt_file_is_a_model_error(_isolated):
    path = _isolated / M.checkpoint_file_name("q3")
    path.write_bytes(b"not a checkpoint at all" * 10)
    assert get_codec("msillm-q3").availability().ok  # present; it is read on first use
    assert "cannot be read" in _load_error(path)
    with pytest.raises(ModelError):
        get_codec("msillm-q3").encode(music_like(0.3), CPU)


def test_truncated_file_is_a_model_error(_isolated, small_checkpoint):
    path = _write(small_checkpoint, _isolated)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert "cannot be read" in _load_error(path)


def test_pickled_code_is_refused(_isolated):
    path = _write({"state_dict": {"w": torch.zeros(1)}, "extra": PipelineConfig()}, _isolated)
    assert "cannot be read" in _load_error(path)  # weights_only load


def test_missing_keys_are_named(_isolated, small_checkpoint):
    state = dict(small_checkpoint["state_dict"])
    del state["encoder.blocks.0.0.weight"]
    path = _write({"state_dict": state, "hific_kwargs": SMALL}, _isolated)
    message = _load_error(path)
    assert "1 missing keys (encoder.blocks.0.0.weight)" in message


def test_wrong_architecture_is_named(_isolated, small_checkpoint):
    # The published format (bare state_dict) means the default, full-size architecture.
    path = _write(small_checkpoint["state_dict"], _isolated)
    message = _load_error(path)
    assert "wrong shape" in message and "missing keys" in message
    path = _write({"state_dict": small_checkpoint["state_dict"], "hific_kwargs": {"in_channels": 1}}, _isolated)
    assert '"in_channels"' in _load_error(path)
    path = _write([1, 2, 3], _isolated)
    assert "not a state_dict" in _load_error(path)


def test_missing_book_keeping_buffers_are_tolerated(_isolated, small_checkpoint):
    # compressai releases differ in such buffers (scale_bound is newer than 1.2.4).
    state = {k: v for k, v in small_checkpoint["state_dict"].items() if not k.endswith(("scale_bound", ".bound"))}
    _write({"state_dict": state, "hific_kwargs": SMALL}, _isolated)
    model = M.load_model("q3", "cpu")
    assert model.latent_bottleneck._offset.numel() > 0  # entropy tables built


# -- download (allowed only on request) -----------------------------------------------------


def test_download_only_when_allowed(_isolated, small_checkpoint, monkeypatch):
    calls = []

    def fake(url, map_location=None, progress=True, file_name=None, weights_only=False, **kw):
        calls.append((url, file_name, weights_only))
        target = M.hub_checkpoint_dir() / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(small_checkpoint, target)
        return torch.load(target, map_location=map_location, weights_only=weights_only)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    assert not get_codec("msillm-q3").availability().ok
    with pytest.raises(ModelError):
        M.load_model("q3", "cpu")
    assert calls == []
    monkeypatch.setenv(M.ENV_ALLOW_DOWNLOAD, "1")
    assert get_codec("msillm-q3").availability().ok
    M.load_model("q3", "cpu")
    assert calls == [(M.checkpoint_url("q3"), "msillm_target_0.14bpp.ckpt", True)]
    assert M.find_checkpoint("q3") == M.hub_checkpoint_dir() / "msillm_target_0.14bpp.ckpt"


def test_failed_download_is_a_model_error(_isolated, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    codec = M.MsillmCodec("q2", allow_download=True)
    assert codec.availability().ok
    with pytest.raises(ModelError) as err:
        codec.prepare(torch.device("cpu"))
    message = str(err.value)
    assert "msillm_target_0.07bpp.ckpt" in message and "download failed" in message and "no route" in message


# -- round trips through the real entropy coder ---------------------------------------------


def test_model_cached_per_quality_and_device(_isolated, small_checkpoint):
    _write(small_checkpoint, _isolated)
    first = M.load_model("q3", "cpu")
    assert M.load_model("q3", torch.device("cpu")) is first
    M.clear_model_cache()
    assert M.load_model("q3", "cpu") is not first


def test_tile_round_trip_is_deterministic(_isolated, small_checkpoint):
    _write(small_checkpoint, _isolated)
    codec = get_codec("msillm-q3")
    image = torch.rand(257, 100, generator=torch.Generator().manual_seed(1))
    data = codec.compress_image(image)
    assert codec.compress_image(image) == data
    a = codec.decompress_image(data, (257, 100), torch.device("cpu"))
    b = codec.decompress_image(data, (257, 100), torch.device("cpu"))
    assert a.shape == (257, 100) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    # A tile narrower than the padding (reflection padding would fail here).
    tail = codec.compress_image(image[:, :5])
    assert codec.decompress_image(tail, (257, 5), torch.device("cpu")).shape == (257, 5)
    with pytest.raises(BitstreamError):
        codec.decompress_image(data[:3], (257, 100), torch.device("cpu"))
    with pytest.raises(BitstreamError):
        codec.decompress_image(b"\xff\xff\x00\x00" + data[4:40], (257, 100), torch.device("cpu"))


def test_audio_round_trip(_isolated, small_checkpoint):
    _write(small_checkpoint, _isolated)
    codec = get_codec("msillm-q3")
    codec.tile_frames = 256  # two tiles, the last one 20 frames wide
    samples = music_like(0.4)
    encoded = codec.encode(samples, CPU)
    assert encoded.codec == "msillm-q3" and encoded.params["tile_frames"] == 256
    images = [img.clone() for _, img, _ in codec.decode_images(encoded, torch.device("cpu"))]
    again = [img.clone() for _, img, _ in codec.decode_images(encoded, torch.device("cpu"))]
    assert images[0].shape[0] == 257 and torch.equal(images[0], again[0])
    decoded = codec.decode(encoded, CPU)
    assert decoded.shape == samples.shape and decoded.dtype == np.float32
    assert np.isfinite(decoded).all()


def test_partial_gpu_stream_decodes_on_cpu(_isolated, small_checkpoint, device):
    if device != "cuda":
        pytest.skip("the partial-GPU path needs CUDA")
    _write(small_checkpoint, _isolated)
    model = M.load_model("q3", "cuda")
    assert model.encoder.blocks[0][0].weight.device.type == "cuda"
    assert model._check_compress_devices()  # hyperprior and entropy models on the CPU
    codec = get_codec("msillm-q3")
    image = torch.rand(257, 100, generator=torch.Generator().manual_seed(2))
    data = codec.compress_image(image.cuda())
    on_gpu = codec.decompress_image(data, (257, 100), torch.device("cuda"))
    on_cpu = codec.decompress_image(data, (257, 100), torch.device("cpu"))
    assert on_gpu.device.type == "cuda" and on_cpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=2e-3, rtol=0)


# -- the published format at full size ------------------------------------------------------


def test_published_format_full_size(_isolated):
    """A bare state_dict of ``HiFiCAutoencoder()`` (what hubconf loads): 0.73 GB, 181 M parameters."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = _hific()()
    assert sum(p.numel() for p in model.parameters()) == 181_481_103
    _write(model.state_dict(), _isolated, quality="q1")
    del model
    codec = get_codec("msillm-q1")
    assert codec.availability().ok
    image = torch.rand(257, 64, generator=torch.Generator().manual_seed(3))
    data = codec.compress_image(image)
    a = codec.decompress_image(data, (257, 64), torch.device("cpu"))
    b = codec.decompress_image(data, (257, 64), torch.device("cpu"))
    assert a.shape == (257, 64) and torch.equal(a, b)
    os.remove(_isolated / M.checkpoint_file_name("q1"))
