"""The sgc network's shapes: the hyperprior's time stride, tiles of any width, and weights files
of earlier architectures rebuilding exactly."""

from __future__ import annotations

import pytest
import torch

from mosapp.models import sgc_net


def test_a_hyperprior_time_stride_of_4_makes_z_sixteen_times_sparser_in_time():
    torch.manual_seed(0)
    base = sgc_net.build_network({"n": 8, "m": 8, "representation": "two-band"})
    sparse = sgc_net.build_network({"n": 8, "m": 8, "representation": "two-band", "high_hyper_time_stride": 4})
    assert base.architecture() == {"n": 8, "m": 8, "representation": "two-band"}  # as written before the option
    assert sparse.architecture()["high_hyper_time_stride"] == 4
    assert (base.high.time_multiple, sparse.high.time_multiple, sparse.low.time_multiple) == (64, 256, 64)
    x = torch.rand(1, 1, 256, 512)
    a, b = base.high(x), sparse.high(x)
    assert a["likelihoods"]["y"].shape == b["likelihoods"]["y"].shape == (1, 8, 16, 32)
    assert a["likelihoods"]["z"].shape[-1] == 8 and b["likelihoods"]["z"].shape[-1] == 2
    assert b["x_hat"].shape == x.shape
    # Both state dicts have the same tensors (the strides differ, not the kernels): one initialises the other.
    sparse.load_state_dict(base.state_dict())


@pytest.mark.parametrize("frames", [1, 255, 256, 700])
def test_tiles_of_any_width_round_trip_through_the_coder(frames):
    torch.manual_seed(1)
    net = sgc_net.build_network({"n": 8, "m": 8, "representation": "two-band", "high_hyper_time_stride": 4})
    net.update(force=True)
    net.eval()
    image = torch.rand(257, frames)
    with torch.no_grad():
        data = sgc_net.compress_tile(net.high, image, 1.0, 256)
        out = sgc_net.decompress_tile(net.high, data, 257, frames, torch.device("cpu"), 1.0, 256)
        assert out.shape == (257, frames) and bool((out[256] == 0).all())  # the Nyquist row is silence
        with pytest.raises(ValueError, match="does not match"):
            sgc_net.decompress_tile(net.high, data, 257, frames + 256, torch.device("cpu"), 1.0, 256)


def _smooth_images(b: int, rows: int, frames: int, seed: int = 0) -> torch.Tensor:
    """Spectrogram-like test images in [0, 1]: smooth in time, a few horizontal lines."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 1, rows, frames // 32 + 2, generator=g)
    x = torch.nn.functional.interpolate(base, size=(rows, frames), mode="bilinear", align_corners=False)
    return (0.6 * x + 0.4 * (torch.arange(rows)[:, None] % 9 == 0).float()).clamp(0, 1)


KLT = {"n": 8, "m": 64, "representation": "two-band", "transform": "klt", "block_frames": 32,
       "high_block_frames": 64}


def test_a_block_transform_network_is_described_by_its_weights_file():
    net = sgc_net.build_network(KLT)
    assert net.architecture() == KLT
    rebuilt = sgc_net.build_network(net.architecture())
    rebuilt.load_state_dict(net.state_dict())
    assert (net.low.arch.block_frames, net.high.arch.block_frames) == (32, 64)
    assert (net.low.time_multiple, net.high.time_multiple) == (32 * 4, 64 * 4)
    x = torch.rand(2, 1, 128, 256)
    assert net.low(x)["likelihoods"]["y"].shape == (2, 64, 8, 8)
    with pytest.raises(ValueError, match="block transform"):
        sgc_net.build_network({**KLT, "m": 16 * 32 + 1})
    with pytest.raises(ValueError, match="block transform"):
        sgc_net.build_network({**KLT, "block_frames": 48})


def test_the_block_transform_starts_as_the_images_klt():
    """With every principal direction kept, analysis then synthesis is the identity; with the
    first m it is the best m-dimensional linear code, better than any other m directions;
    the post-filter starts at zero, so the network's own synthesis is the basis alone."""
    images = _smooth_images(8, 128, 256)
    full = sgc_net.build_network({**KLT, "m": 16 * 32}).low
    sgc_net.init_block_transform(full, images, 0.1)
    with torch.no_grad():
        assert torch.allclose(full.g_s(full.g_a(images)), images, atol=1e-4)
    part = sgc_net.build_network(KLT).low
    sgc_net.init_block_transform(part, images, 0.1)
    other = sgc_net.build_network(KLT).low  # random directions of the same count
    with torch.no_grad():
        err = float(((part.g_s(part.g_a(images)) - images) ** 2).mean())
        q, _ = torch.linalg.qr(torch.randn(16 * 32, 64))
        other.g_a.weight.copy_(q.T.reshape(64, 1, 16, 32))
        other.g_a.bias.zero_()
        other.g_s.basis.weight.copy_(q.T.reshape(64, 1, 16, 32))
        other.g_s.basis.bias.zero_()
        assert err < 0.5 * float(((other.g_s(other.g_a(images)) - images) ** 2).mean())
    with pytest.raises(ValueError, match="klt"):
        sgc_net.init_block_transform(sgc_net.build_network({"n": 8, "m": 8}), images, 0.1)


def _klt_low_network(arch: dict | None = None) -> sgc_net.SpectrogramHyperprior:
    """The low network of ``arch`` (default :data:`KLT`), started as the KLT of smooth test images, ready to code."""
    net = sgc_net.build_network(arch or KLT).low
    sgc_net.init_block_transform(net, _smooth_images(8, 128, 512, seed=1), 0.05)
    net.update(force=True)
    return net.eval()


def test_a_block_transform_codes_before_any_training_and_its_step_sets_the_rate():
    net = _klt_low_network()
    image = _smooth_images(1, 128, 700, seed=2)[0, 0]
    sizes, errors = [], []
    with torch.no_grad():
        for step in (0.5, 1.0, 2.0):
            data = sgc_net.compress_tile(net, image, step, 128)
            out = sgc_net.decompress_tile(net, data, 128, 700, torch.device("cpu"), step, 128)
            sizes.append(len(data))
            errors.append(float(((out - image) ** 2).mean()))
    assert sizes[0] > sizes[1] > sizes[2]
    assert errors[0] < errors[1] < errors[2]
    assert 10 * torch.log10(torch.tensor(1 / errors[1])) > 28  # a working codec at step 0


def test_the_forward_at_a_step_prices_and_decodes_the_latents_as_the_coder_does():
    torch.manual_seed(3)
    net = sgc_net.build_network(KLT).low
    sgc_net.init_block_transform(net, _smooth_images(4, 128, 256), 0.05)
    x = _smooth_images(2, 128, 256, seed=4)
    net.eval()  # z rounded, not noisy: the means below are the forward's own
    with torch.no_grad():
        res = sgc_net.forward_at_step(net, x, 2.0, ste=True)
        y = net.g_a(x)
        scales, means = net.h_s(net.entropy_bottleneck(net.h_a(y))[0]).chunk(2, 1)
        rounded = torch.round((y - means) / 2.0) * 2.0 + means
        assert torch.allclose(res["x_hat"], net.g_s(rounded), atol=1e-5)  # decoded from rounded latents
        assert not torch.allclose(res["x_hat"], net.g_s(y), atol=1e-3)
    net.train()
    res = sgc_net.forward_at_step(net, x, 2.0, ste=True)
    (res["x_hat"] - x).pow(2).mean().backward()
    first = net.g_a.weight.grad
    assert first is not None and float(first.abs().sum()) > 0  # the straight-through gradient reaches g_a
    # Step 1 without rounding is compressai's own forward (noise included: same seed, same draw).
    torch.manual_seed(5)
    a = sgc_net.forward_at_step(net, x, 1.0)["likelihoods"]["y"]
    torch.manual_seed(5)
    b = net(x)["likelihoods"]["y"]
    assert torch.allclose(a, b)


def test_a_step_per_latent_row_spends_the_bits_unevenly_over_frequency():
    net = _klt_low_network()
    image = _smooth_images(1, 128, 640, seed=3)[0, 0]
    coarse_top = sgc_net.row_steps(1.0, [1.0] * 4 + [4.0] * 4)  # 8 latent rows of 16 image rows
    assert sgc_net.row_steps(1.0, None) == 1.0 and coarse_top.shape == (1, 1, 8, 1)
    with torch.no_grad():
        tile = sgc_net.analyse_tile(net, image, 128)
        out = {}
        for name, step in (("flat", 1.0), ("coarse top", coarse_top)):
            data = sgc_net.code_tile(net, tile, step)
            assert abs(len(data) * 8 - sgc_net.estimated_bits(net, tile, step)) < 0.1 * len(data) * 8 + 64
            out[name] = (len(data), sgc_net.decompress_tile(net, data, 128, 640, torch.device("cpu"), step, 128))
        with pytest.raises(ValueError, match="3 row steps for a latent of 8 rows"):
            sgc_net.code_tile(net, tile, sgc_net.row_steps(1.0, [1.0, 2.0, 3.0]))
    assert out["coarse top"][0] < out["flat"][0]
    err = {k: ((v[1] - image) ** 2) for k, v in out.items()}
    # The bottom half keeps its error, the top half's grows.
    assert float(err["coarse top"][:56].mean()) == pytest.approx(float(err["flat"][:56].mean()), rel=0.05)
    assert float(err["coarse top"][72:].mean()) > 2 * float(err["flat"][72:].mean())


def test_a_temporal_context_predicts_each_latent_column_from_the_one_decoded_before_it():
    arch = {**KLT, "context": "temporal"}
    net = sgc_net.build_network(arch)
    assert net.architecture()["context"] == "temporal" and net.low.context.weight.shape == (1, 64, 8, 1)
    assert net.high.context.weight.shape[2] == 16
    assert "context" not in sgc_net.build_network(KLT).architecture()
    with pytest.raises(ValueError, match="unknown sgc context"):
        sgc_net.build_network({**KLT, "context": "spatial"})
    low = _klt_low_network(arch)
    # Held notes: the same lines for seconds, a slowly drifting level.
    image = (_smooth_images(1, 128, 2048, seed=4)[0, 0, :, :1].repeat(1, 2048)
             * torch.linspace(0.8, 1.0, 2048)).clamp(0, 1)
    with torch.no_grad():
        tile = sgc_net.analyse_tile(low, image, 128)
        before = sgc_net.code_tile(low, tile, 1.0)
        sgc_net.fit_temporal_context(low, [image])
        assert float(low.context.weight.max()) > 0.5
        after = sgc_net.code_tile(low, tile, 1.0)
        assert abs(len(after) * 8 - sgc_net.estimated_bits(low, tile, 1.0)) < 0.1 * len(after) * 8 + 64
        out = sgc_net.decompress_tile(low, after, 128, 2048, torch.device("cpu"), 1.0, 128)
        again = sgc_net.decompress_tile(low, after, 128, 2048, torch.device("cpu"), 1.0, 128)
        low.context.weight.zero_()
        low.context.log_gain.zero_()
        flat = sgc_net.decompress_tile(low, before, 128, 2048, torch.device("cpu"), 1.0, 128)
    assert len(after) < 0.8 * len(before)
    assert torch.equal(out, again)
    # Closed loop: the prediction does not let the quantisation error build up along time.
    assert float(((out - image) ** 2).mean()) < 1.3 * float(((flat - image) ** 2).mean())
    assert float(((out[:, -256:] - image[:, -256:]) ** 2).mean()) < 1.3 * float(((flat[:, -256:] - image[:, -256:]) ** 2).mean())
