"""sgc weights files: every shipped file loads as weights only, other files are refused with one sentence."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch

from mosapp.core.errors import ModelError
from mosapp.models.weights import WEIGHTS_FORMAT, load_weights, read_torch_file, save_weights

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "assets" / "models").rglob("*.pt"))


def test_every_shipped_weights_file_loads_as_weights_only():
    assert len(SHIPPED) >= 6
    for path in SHIPPED:
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        state = load_weights(path)  # torch.load(weights_only=True) inside
        assert state["format"] == WEIGHTS_FORMAT and state["arch"]["n"] > 0, path
        assert all(isinstance(v, torch.Tensor) for v in state["state_dict"].values()), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # read, never rewritten


class _RunsCode:
    """Unpickling this would call os.system: what a booby-trapped weights file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 5")
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_weights_file_that_would_run_code_is_refused_unrun(tmp_path, layout):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "sgc-evil.pt"
    payload = {"format": WEIGHTS_FORMAT, "arch": {"n": 8, "m": 8}, "state_dict": {}, "hook": _RunsCode(marker)}
    torch.save(payload, evil, _use_new_zipfile_serialization=layout == "zip")
    with pytest.raises(ModelError) as caught:
        load_weights(evil)
    assert str(caught.value) == (f"The weights file {evil} is refused: it holds a Python object (posix.system) rather "
                                 f"than only tensors and plain values, and loading it could run code.")
    assert not marker.exists()
    # A bare pickle (protocol 5) is refused too, at an opcode the weights-only unpickler does not accept.
    evil.write_bytes(pickle.dumps(payload, protocol=5))
    with pytest.raises(ModelError, match="cannot be read"):
        load_weights(evil)
    assert not marker.exists()
    # Control: unpickled without the guard, the same bytes do run the code.
    pickle.loads(evil.read_bytes())
    assert marker.exists()


def test_load_weights_rejects_other_files(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"^The weights file .*junk\.pt cannot be read \(UnpicklingError: .*\)\.$"):
        load_weights(junk)
    with pytest.raises(ModelError, match="does not exist"):
        load_weights(tmp_path / "none.pt")
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(ModelError, match="not mosapp sgc weights"):
        load_weights(other)
    with pytest.raises(ModelError, match="^The training checkpoint"):
        read_torch_file(tmp_path / "none.pt", what="training checkpoint")


def test_save_weights_round_trip(tmp_path):
    state = {"w": torch.arange(4.0)}
    path = save_weights(tmp_path / "sgc-x.pt", name="sgc-x", geometry="thesis", arch={"n": 8, "m": 8}, state_dict=state)
    loaded = load_weights(path)
    assert loaded["version"] == 1 and loaded["name"] == "sgc-x" and torch.equal(loaded["state_dict"]["w"], state["w"])
    two = save_weights(tmp_path / "sgc-y.pt", name="sgc-y", geometry="thesis",
                       arch={"n": 8, "m": 8, "representation": "two-band"}, state_dict=state)
    assert load_weights(two)["version"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sgc-x.pt", "sgc-y.pt"]
    # A training checkpoint reads as state_dict without architecture (finetuning may start from one).
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"model": state, "opt": {}, "aux_opt": {}, "step": 1}, ckpt)
    assert load_weights(ckpt)["arch"] is None
