import numpy as np
import pytest
import torch

from mosapp.core import dsp
from mosapp.core.config import GEOMETRIES, ImageMapping
from mosapp.core.errors import ConfigError

tifresi_stft = pytest.importorskip("tifresi.stft")


@pytest.mark.parametrize("name", ["thesis", "wide"])
def test_magnitude_matches_tifresi_gausstrunctf(name, music):
    """Our torch STFT's magnitude equals tifresi's GaussTruncTF.dgt to 1e-12 (float64) / 1e-6 (float32)."""
    g = GEOMETRIES[name]
    x = music[0][: g.channels * 60].astype(np.float64)
    ref = np.abs(tifresi_stft.GaussTruncTF(hop_size=g.hop, stft_channels=g.channels).dgt(x))
    ours64 = dsp.stft(torch.from_numpy(x), g).abs().numpy()
    ours32 = dsp.stft(torch.from_numpy(x).float(), g).abs().numpy()
    assert ours64.shape == ref.shape == (g.bins, x.size // g.hop)
    assert np.abs(ours64 - ref).max() <= 1e-12 * ref.max()
    assert np.abs(ours32 - ref).max() <= 1e-6 * ref.max()


@pytest.mark.parametrize("name", ["thesis", "wide"])
def test_istft_inverts_stft(name, device, music):
    g = GEOMETRIES[name]
    x = torch.from_numpy(music[0][: g.channels * 50]).to(device)
    y = dsp.istft(dsp.stft(x, g), g)
    assert y.device.type == device
    assert torch.max(torch.abs(y - x)).item() < 1e-5
    x64 = x.double()
    assert torch.max(torch.abs(dsp.istft(dsp.stft(x64, g), g) - x64)).item() < 1e-12


def test_partial_frames_equal_full_transform(device, music):
    g = GEOMETRIES["thesis"]
    x = torch.from_numpy(music[0][: g.channels * 20]).to(device)
    full = dsp.stft(x, g)
    # Ranges that wrap around either end of the periodic signal, too.
    for start, stop in [(0, 7), (5, 30), (150, 160)]:
        assert torch.allclose(dsp.stft(x, g, start, stop), full[:, start:stop], atol=1e-5)


def test_overlap_add_of_blocks_equals_istft(device, music):
    g = GEOMETRIES["wide"]
    x = torch.from_numpy(music[0][: g.channels * 30]).to(device)
    c = dsp.stft(x, g)
    out = torch.zeros_like(x)
    for b0 in range(0, c.shape[-1], 37):
        block = c[:, b0: b0 + 37]
        dsp.synthesize(block, g, out, frame_start=b0)
    assert torch.allclose(out, dsp.istft(c, g), atol=1e-6)


def test_pad_for_lattice_keeps_audio_and_leaves_room(music):
    g = GEOMETRIES["thesis"]
    x = torch.from_numpy(music[0][:12345])
    xp, offset = dsp.pad_for_lattice(x, g)
    assert xp.shape[-1] % g.channels == 0
    assert offset >= g.window_length // 2 and xp.shape[-1] - offset - x.shape[-1] >= g.window_length // 2
    assert torch.equal(xp[offset: offset + x.shape[-1]], x)


def test_image_mapping_round_trip_restores_absolute_level():
    mapping = ImageMapping(dynamic_range_db=80.0)
    mag = torch.tensor([[3.0, 0.3, 3e-3, 3e-5, 3e-9, 0.0]])
    scale = dsp.image_scale_for(float(mag.max()), mapping)
    image = dsp.magnitude_to_image(mag, scale)
    assert image.min() >= 0 and image.max() <= 1 and image[0, 0] == 1.0
    back = dsp.image_to_magnitude(image, scale)
    # Within the 80 dB range magnitudes come back; below it they become silence.
    assert torch.allclose(back[0, :3], mag[0, :3], rtol=1e-4)
    assert back[0, 3] == 0 and back[0, 4] == 0 and back[0, 5] == 0
    assert scale.top_db == pytest.approx(20 * np.log10(3.0))


def test_resolve_device():
    assert dsp.resolve_device("cpu").type == "cpu"
    with pytest.raises(ConfigError, match="auto, cpu, cuda"):
        dsp.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            dsp.resolve_device("cuda")
