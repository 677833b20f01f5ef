"""The memory ceiling: sizes, the refusal sentence, bounded inflate, and readers that check headers before decoding."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import soundfile as sf

from mosapp.core import memory
from mosapp.core.audio import (
    probe_audio,
    read_audio,
    read_excerpt,
    resample,
    resample_blocks,
    restore_format,
    restore_format_blocks,
    write_audio,
    write_audio_blocks,
)
from mosapp.core.errors import AudioError, BitstreamError, MemoryLimitError, MosappError
from tests.cli.hostile import sparse_wav, zeros_zlib


@pytest.fixture(autouse=True)
def _default_ceiling(monkeypatch):
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    memory.set_max_memory(None)
    yield
    memory.set_max_memory(None)


@pytest.mark.parametrize("text,size", [("2G", 2 << 30), ("1500M", 1500 << 20), ("3.5GB", int(3.5 * 2**30)),
                                       ("2GiB", 2 << 30), ("100000000", 100_000_000), (" 64m ", 64 << 20)])
def test_sizes(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "two", "2X", "-1G", "1K"])
def test_bad_sizes_are_one_sentence(text):
    with pytest.raises(MosappError) as info:
        memory.parse_size(text)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)


def test_the_ceiling_is_2_gb_unless_set(monkeypatch):
    assert memory.max_memory() == 2 << 30
    monkeypatch.setenv(memory.ENV_VAR, "3G")
    assert memory.max_memory() == 3 << 30
    memory.set_max_memory("5G")
    assert memory.max_memory() == 5 << 30


def test_require_refuses_in_one_sentence():
    memory.require(1 << 30, "Small work")
    with pytest.raises(MemoryLimitError) as info:
        memory.require(5 << 30, "Decoding x.sgc (60.0 minutes)")
    msg = str(info.value)
    assert msg == ("Decoding x.sgc (60.0 minutes) would need about 5.0 GB of memory, more than mosapp's ceiling of "
                   "2.0 GB; raise it with --max-memory 7G (or MOSAPP_MAX_MEMORY) where the machine has that much, or "
                   "give a shorter file.")


def test_inflate_is_bounded_by_what_the_header_announces():
    assert memory.inflate_exact(zlib.compress(bytes(1000)), 1000, "t") == bytes(1000)
    bomb = zeros_zlib(8 << 30)  # 8 GB of zeros in 8 MB: only 1001 bytes are ever inflated
    with pytest.raises(BitstreamError, match="expands to more than the 1000 bytes"):
        memory.inflate_exact(bomb, 1000, "The payload")
    with pytest.raises(BitstreamError, match="wrong size"):
        memory.inflate_exact(zlib.compress(bytes(999)), 1000, "The payload")
    with pytest.raises(BitstreamError, match="damaged"):
        memory.inflate_exact(b"not zlib at all", 1000, "The payload")


def test_a_pghi_only_tile_bomb_is_refused_without_inflating_it(tmp_path):
    from mosapp.codecs import get_codec
    from mosapp.codecs.container import read_sgc
    from mosapp.core.config import PipelineConfig
    from tests.cli.hostile import zlib_bomb

    encoded, _ = read_sgc(zlib_bomb(tmp_path / "bomb.sgc", gigabytes=16))
    with pytest.raises(BitstreamError, match="expands to more than"):
        get_codec("pghi-only").decode(encoded, PipelineConfig(phase="pghi", device="cpu"))


def test_a_six_hour_wav_is_refused_from_its_header_before_decoding(tmp_path):
    path = sparse_wav(tmp_path / "long.wav")
    assert probe_audio(path).frames == 6 * 3600 * 44_100
    with pytest.raises(MemoryLimitError) as info:
        read_audio(path)
    assert "Reading " in str(info.value) and "(360.0 minutes)" in str(info.value)


def test_an_excerpt_is_read_by_seeking_and_equals_the_slice_of_the_whole_file(tmp_path):
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((44_100 * 4, 2))).astype(np.float32)
    path = tmp_path / "s.flac"
    sf.write(path, x, 44_100, subtype="PCM_24")
    whole = read_audio(path).samples
    part = read_excerpt(path, 1.5, 1.25).samples
    start = int(round(1.5 * 44_100))
    np.testing.assert_array_equal(part, whole[:, start: start + int(round(1.25 * 44_100))])
    # three hours into a six-hour file: only the excerpt is decoded
    deep = read_excerpt(sparse_wav(tmp_path / "long.wav"), 3 * 3600.0, 2.0, mono=False)
    assert deep.samples.shape == (2, 88_200) and np.abs(deep.samples).max() > 0.2


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_a_device_is_refused_not_read(tmp_path, kind):
    if kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        path = tmp_path / "in.wav"
        os.mkfifo(path)
    else:
        path = "/dev/zero"
        if not os.path.exists(path):
            pytest.skip("no /dev/zero here")
    for reader in (read_audio, probe_audio):
        with pytest.raises(AudioError) as info:
            reader(path)  # opening a FIFO would block until a writer comes; /dev/zero never ends
        assert "mosapp reads regular files only" in str(info.value)


def test_streamed_resampling_and_restoring_give_what_the_whole_does(tmp_path):
    from mosapp.core.audio import AudioInfo

    rng = np.random.default_rng(5)
    x = (0.3 * rng.standard_normal((2, 300_001))).astype(np.float32)
    blocks = [x[:, i: i + 70_000] for i in range(0, x.shape[1], 70_000)]
    whole = resample(x, 44_100, 48_000)
    streamed = np.concatenate(list(resample_blocks(blocks, 44_100, 48_000, 2)), axis=1)[:, : whole.shape[1]]
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    info = AudioInfo(path=None, sample_rate=96_000, channels=2, frames=650_000, subtype="PCM_16", format="WAV")
    mono = x[:1]
    restored = np.concatenate(list(restore_format_blocks([mono[:, :100_000], mono[:, 100_000:]], 44_100, 1, info)),
                              axis=1)
    np.testing.assert_allclose(restored, restore_format(mono, 44_100, info), atol=1e-6)
    write_audio_blocks(tmp_path / "a.wav", [restored[:, :1000], restored[:, 1000:]], 96_000, 2, subtype="FLOAT")
    write_audio(tmp_path / "b.wav", restored, 96_000, subtype="FLOAT")
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0])
