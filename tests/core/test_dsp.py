import numpy as np
import pytest
import torch

from mosapp.core import dsp, job
from mosapp.core.config import GEOMETRIES, ImageMapping
from mosapp.core.errors import ConfigError
from tests.helpers import require_module

tifresi_stft = require_module("tifresi.stft", "a dependency of mosapp (pyproject.toml)")


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


def _image_by_hand(x: torch.Tensor, g, mapping: ImageMapping, chunk: int, first: int, stop: int):
    """The pad → peak → scale → image step as the codecs and training wrote it before it was one function."""
    xp, _ = dsp.pad_for_lattice(x, g)
    n_frames = g.frames_for(xp.shape[-1])
    mags = [dsp.stft(xp, g, t0, min(t0 + chunk, n_frames)).abs()[:stop] for t0 in range(0, n_frames, chunk)]
    scale = dsp.image_scale_for(max(float(m[first:].max()) for m in mags), mapping)
    image = torch.cat([dsp.magnitude_to_image(m, scale) for m in mags], dim=1)
    image[:first] = 0.0
    return image, scale


@pytest.mark.parametrize("chunk, rows", [(8192, None), (100, None), (37, (11, 257)), (64, (0, 128))])
def test_spectrogram_image_is_the_step_by_hand(chunk, rows, music):
    """One function makes every image: bit-identical to the step written out, in chunks of the
    requested size (the last one shorter), the peak taken over the kept rows only."""
    g = GEOMETRIES["thesis"]
    x = torch.from_numpy(music[0][:30_000])
    mapping = ImageMapping(dynamic_range_db=90.0)
    chunks, scale = dsp.spectrogram_image(x, g, mapping, chunk_frames=chunk, rows=rows)
    first, stop = rows or (0, g.bins)
    want, want_scale = _image_by_hand(x, g, mapping, chunk, first, stop)
    n_frames = g.frames_for(dsp.padded_length(x.shape[-1], g))
    assert [c.shape[1] for c in chunks] == [min(chunk, n_frames - t0) for t0 in range(0, n_frames, chunk)]
    assert scale == want_scale and scale.dynamic_range_db == 90.0
    assert torch.equal(torch.cat(chunks, dim=1), want)
    assert want.shape[0] == stop and (first == 0 or not want[:first].any())


def test_spectrogram_image_scales_to_the_peak_of_the_kept_rows():
    """A loud tone below the band's first row does not set the band's scale: the band's own peak does."""
    g = GEOMETRIES["thesis"]
    t = torch.arange(20_000, dtype=torch.float32) / 44_100
    x = 0.9 * torch.sin(2 * torch.pi * 200 * t) + 0.01 * torch.sin(2 * torch.pi * 5000 * t)
    (_, whole), (chunks, band) = (dsp.spectrogram_image(x, g), dsp.spectrogram_image(x, g, rows=(11, g.bins)))
    mag = dsp.stft(dsp.pad_for_lattice(x, g)[0], g).abs()
    assert whole.top_db == dsp.image_scale_for(float(mag.max())).top_db
    assert band.top_db == dsp.image_scale_for(float(mag[11:].max())).top_db < whole.top_db - 15
    assert torch.cat(chunks, dim=1)[11:].max() == 1.0


def test_spectrogram_image_reports_its_two_units(music):
    """With ``progress`` the measuring and the imaging are reported in frames, each unit starting at 0."""
    g = GEOMETRIES["thesis"]
    seen = []
    with job.JobControl(on_progress=seen.append).active():
        dsp.spectrogram_image(torch.from_numpy(music[0]), g, chunk_frames=500, progress=("measured", "imaged"))
        dsp.spectrogram_image(torch.from_numpy(music[0]), g, chunk_frames=500)  # no progress: no reports
    units = [p.unit for p in seen]
    assert units[0] == "measured" and "imaged" in units and set(units) == {"measured", "imaged"}
    assert seen[units.index("imaged")].done == 0
