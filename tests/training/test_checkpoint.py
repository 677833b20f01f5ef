"""Checkpoints: tensors and plain values only, read as weights only; old ones still resume; the log trim."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from mosapp.core.errors import ModelError
from mosapp.models.sgc_net import SgcArchitecture, SpectrogramHyperprior
from mosapp.training.checkpoint import load_checkpoint, logged_seconds, plain, resume, save_checkpoint, trim_log


def _model_and_optimisers():
    torch.manual_seed(0)
    model = SpectrogramHyperprior(SgcArchitecture(8, 8))
    opt = torch.optim.Adam([p for n, p in model.named_parameters() if not n.endswith(".quantiles")], lr=1e-3)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.endswith(".quantiles")], lr=1e-3)
    out = model(torch.rand(1, 1, 64, 64))
    (out["x_hat"].mean() + model.aux_loss()).backward()
    opt.step()
    aux_opt.step()
    return model, opt, aux_opt


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_checkpoint_round_trip_as_weights_only(tmp_path):
    model, opt, aux_opt = _model_and_optimisers()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, opt, aux_opt, 7)
    raw = torch.load(path, weights_only=True)  # loadable without trusting the file
    assert raw["step"] == 7 and set(raw) == {"model", "opt", "aux_opt", "step"}
    model2, opt2, aux_opt2 = _model_and_optimisers()
    for p in model2.parameters():
        p.data.zero_()
    assert resume(path, model2, opt2, aux_opt2, "cpu") == 7
    _same_state(model.state_dict(), model2.state_dict())
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    state, state2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert state and state.keys() == state2.keys()
    for k in state:
        assert torch.equal(state2[k]["exp_avg"], state[k]["exp_avg"])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_checkpoint_written_by_earlier_versions_still_resumes(tmp_path):
    """mosapp 0.1.0 wrote checkpoints with a plain torch.save of the same dict."""
    model, opt, aux_opt = _model_and_optimisers()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(), "step": 3}, path)
    model2, opt2, aux_opt2 = _model_and_optimisers()
    assert resume(path, model2, opt2, aux_opt2, "cpu") == 3
    _same_state(model.state_dict(), model2.state_dict())


def test_checkpoint_that_is_not_one_is_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 1}, path)
    with pytest.raises(ModelError, match="not a mosapp train checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="training checkpoint .* cannot be read"):
        load_checkpoint(path)


def test_plain_keeps_plain_values_and_refuses_objects():
    t = torch.ones(2)
    out = plain({"state": {0: {"step": t}}, "param_groups": [{"betas": (0.9, 0.999), "lr": np.float64(0.5),
                                                             "foreach": None, "amsgrad": False}]})
    assert out["state"][0]["step"] is t
    group = out["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and type(group["lr"]) is float and group["foreach"] is None
    with pytest.raises(TypeError, match="plain values, not object"):
        plain({"x": object()})


def test_trim_log_drops_rows_after_the_checkpoint(tmp_path):
    log = tmp_path / "log.csv"
    with open(log, "w", newline="") as f:
        csv.writer(f).writerows([["step", "seconds"], [1, 0.5], [2, 1.0], [3, 1.5]])
    trim_log(log, 2)
    assert list(csv.reader(open(log, newline=""))) == [["step", "seconds"], ["1", "0.5"], ["2", "1.0"]]
    assert logged_seconds(log) == 1.0
    assert os.listdir(tmp_path) == ["log.csv"]
    trim_log(tmp_path / "none.csv", 2)  # no log yet: nothing to do
    assert logged_seconds(tmp_path / "none.csv") == 0.0
