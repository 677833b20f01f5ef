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
