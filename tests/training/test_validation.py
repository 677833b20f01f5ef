"""Held-out scores during training (mosapp.training.validation), on a real tiny run."""

from __future__ import annotations

import csv

import numpy as np

from mosapp.cli.main import main
from mosapp.training.config import TrainConfig, training_files
from mosapp.training.validation import HELDOUT_COLUMNS, heldout_patches, read_heldout
from tests.training.conftest import write_config


def _config(tmp_path, steps: int):
    path = write_config(tmp_path, steps=steps, extra="heldout_every = 1")
    path.write_text(path.read_text().replace("[data]\n", "[data]\nheldout_seconds = 1.0\n"))
    return path


def test_training_scores_the_heldout_music_and_resumes_its_log(tmp_path):
    path = _config(tmp_path, steps=2)
    assert main(["train", "--config", str(path)]) == 0
    log = tmp_path / "run" / "heldout.csv"
    rows = list(csv.DictReader(open(log)))
    assert list(rows[0]) == HELDOUT_COLUMNS
    assert [(int(r["step"]), r["band"]) for r in rows] == [(1, "image"), (2, "image")]
    for r in rows:
        assert float(r["kbps"]) > 0 and 0 < float(r["psnr_db"]) < 100
        assert np.isfinite(float(r["mel_l1"])) and np.isfinite(float(r["sc_linear"]))
    steps, psnr = read_heldout(log)["image"]
    assert steps == [1, 2] and psnr == [float(r["psnr_db"]) for r in rows]
    assert (tmp_path / "run" / "training.png").stat().st_size > 1000  # drawn with the held-out markers
    # A step later the network changed, the patches did not: the figures move, a little.
    assert [rows[0][k] for k in HELDOUT_COLUMNS[2:]] != [rows[1][k] for k in HELDOUT_COLUMNS[2:]]
    # A row logged after the last checkpoint is dropped when the run resumes, then logged again.
    with open(log, "a", newline="") as f:
        csv.writer(f).writerow([3, "image", 1, 1, 1, 1])
    path.write_text(path.read_text().replace("steps = 2", "steps = 3"))
    assert main(["train", "--config", str(path)]) == 0
    again = list(csv.DictReader(open(log)))
    assert [int(r["step"]) for r in again] == [1, 2, 3]
    assert again[:2] == rows and again[2]["kbps"] != "1"


def test_heldout_patches_are_fixed_and_only_heldout(tmp_path):
    """The same patches every time (a resumed run scores what the first scored), drawn from the
    held-out file, never from a training file."""
    cfg = TrainConfig.load(_config(tmp_path, steps=1))
    files, heldout = training_files(cfg)
    a = heldout_patches(cfg, heldout, "image", 0.0)
    b = heldout_patches(cfg, heldout, "image", 0.0)
    assert a is not None and b is not None and a.shape[0] == 4  # ceil(1 s / 192 frames of 1.45 ms)
    assert np.array_equal(a.numpy(), b.numpy())
    assert heldout_patches(cfg, [], "image", 0.0) is None
    training = heldout_patches(cfg, files, "image", 0.0)
    assert training is not None and not np.array_equal(training.numpy(), a.numpy())


def test_read_heldout_of_a_missing_or_damaged_file(tmp_path):
    assert read_heldout(tmp_path / "none.csv") == {}
    (tmp_path / "bad.csv").write_text("step,band,kbps,psnr_db\nx,low,1,2\n")
    assert read_heldout(tmp_path / "bad.csv") == {}
