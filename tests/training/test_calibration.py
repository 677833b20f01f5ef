"""Fitting the decoder's level maps (mosapp.training.calibration) on a real tiny two-band run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mosapp.cli.main import main
from mosapp.codecs import get_codec
from mosapp.codecs.levelmap import MAX_OFFSET_DB, LevelMap
from mosapp.codecs.twoband import band_images
from mosapp.core import metrics
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import ModelError
from mosapp.models.weights import load_weights
from mosapp.training.calibration import analysis_levels, calibrate, write_calibrated
from mosapp.training.config import TrainConfig
from tests.helpers import music_like
from tests.training.conftest import write_config


def _two_band_run(tmp_path):
    cfg_path = write_config(tmp_path, steps=1)
    text = cfg_path.read_text().replace('name = "sgc-8"', 'name = "tiny"\nrepresentation = "two-band"')
    text = text.replace('export = "' + f"{tmp_path}/models/sgc-8" + '"',
                        f'export = "{tmp_path}/models/tiny"\noperating_points = ["sgc-7:7:0.3", "sgc-20:20:0.5"]')
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 0
    return cfg_path, tmp_path / "models"


@pytest.mark.parametrize("band, hz", [("low", 300.0), ("high", 5000.0)])
def test_analysis_levels_line_up_with_the_band_metrics_frames(band, hz):
    """A tone burst: the decoded image's level, carried onto the band metrics' analysis, is loudest in
    the analysis frames and bins where that analysis itself finds the burst."""
    sr = 44100
    x = np.zeros(3 * sr, dtype=np.float32)
    t = np.arange(int(0.2 * sr)) / sr
    start = int(1.37 * sr)
    x[start: start + t.size] = 0.5 * np.sin(2 * np.pi * hz * t) * np.hanning(t.size)
    low, low_top, high, high_top = band_images(x, torch.device("cpu"))
    image = (low if band == "low" else high).numpy()
    ref = metrics.band_db(x, sr)
    level = analysis_levels(image, 100.0, band, ref.shape[0])
    assert level.shape == ref.shape
    bin_ = int(round(hz / (sr / 4096)))
    assert abs(int(np.argmax(level[:, bin_])) - int(np.argmax(ref[:, bin_]))) <= 1
    assert abs(int(np.argmax(level.max(axis=0))) - bin_) <= (8 if band == "high" else 2)
    assert level.max() == pytest.approx(0.0, abs=6.0)  # the peak cell is near the image's peak
    if band == "low":
        assert (level[:, 129:] == -200).all()  # the low image has nothing above its 128 rows


def test_calibrate_writes_new_weights_whose_decoder_applies_the_maps(tmp_path, monkeypatch):
    cfg_path, models = _two_band_run(tmp_path)
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    cfg = TrainConfig.load(cfg_path)
    target = models / "tiny-cal.pt"
    said = []
    assert calibrate(cfg, models / "tiny.pt", target, count=2, seconds=2.0, passes=2, say=said.append) == target
    state = load_weights(target)
    source = load_weights(models / "tiny.pt")
    assert set(state["state_dict"]) == set(source["state_dict"]) and "level_maps" not in source
    maps = {b: LevelMap.from_dict(v, b) for b, v in state["level_maps"].items()}
    assert set(maps) == {"low", "high"}
    for m in maps.values():  # the maps only raise levels
        assert len(m.steps) in (1, 2) and m.levels == 8 and 0 <= m.offsets_db.min() <= m.offsets_db.max() <= MAX_OFFSET_DB
    report = state["calibration"]
    assert report["from"] == "tiny.pt" and len(report["excerpts"]) == 2 and report["passes"] == 2
    assert set(report["operating_points"]) == {"sgc-7", "sgc-20"}
    for point in report["operating_points"].values():
        for band in ("low", "high"):
            assert len(point[band]["distance_db_by_pass"]) == 2 and point[band]["step"] > 0
    assert not list(models.glob("*.pass*.pt"))  # the second pass's scratch weights are gone
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["name"] == "tiny-cal" and card["weights"] == "tiny-cal.pt"
    assert card["calibration"]["from"] == "tiny.pt" and "--calibrate" in card["calibration"]["command"]
    assert any("2/2" in line for line in said)

    # The operating point on calibrated weights: the same bits, the maps applied on decoding. The fitted
    # maps of a one-step network may be all zero, so these weights carry known ones (+2 dB everywhere).
    known = {b: LevelMap(m.rows, m.level_step_db, m.steps, np.full_like(m.offsets_db, 2.0)) for b, m in maps.items()}
    write_calibrated(models / "tiny.pt", target, known, report)
    maps = {b: LevelMap.from_dict(v, b) for b, v in load_weights(target)["level_maps"].items()}
    x = music_like(2.0, seed=5)
    config = PipelineConfig(device="cpu", phase="pghi")
    plain = get_codec("sgc-20")
    encoded = plain.encode(x, config)
    for point in ("sgc-7", "sgc-20"):  # both points move to the calibrated weights, as shipping them does
        card_path = models / f"{point}.json"
        card_path.write_text(card_path.read_text().replace('"tiny.pt"', '"tiny-cal.pt"'))
    calibrated = get_codec("sgc-20")
    again = calibrated.encode(x, config)
    assert again.payload == encoded.payload and again.model != encoded.model
    before = next(plain.decode_band_images(encoded, torch.device("cpu")))[1]
    after = next(calibrated.decode_band_images(again, torch.device("cpu")))[1]
    step = again.params["step"]
    assert torch.allclose(after.high, maps["high"].apply(before.high, step[1], 100.0))
    assert torch.allclose(after.low, maps["low"].apply(before.low, step[0], 100.0))
    sounding = before.high > 0
    assert sounding.any() and torch.allclose(after.high[sounding] - before.high[sounding], torch.tensor(0.02), atol=1e-5)
    assert torch.equal(after.high[before.high == 0], before.high[before.high == 0])
    # a stream of the uncalibrated weights still decodes with them, as before (they are kept as earlier weights)
    assert np.array_equal(calibrated.decode(encoded, config), plain.decode(encoded, config))


def test_calibrate_refuses_what_it_cannot_calibrate(tmp_path, monkeypatch, capsys):
    cfg_path, models = _two_band_run(tmp_path)
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    cfg = TrainConfig.load(cfg_path)
    with pytest.raises(ModelError, match="new file"):
        calibrate(cfg, models / "tiny.pt", models / "tiny.pt")
    (models / "lonely.pt").write_bytes((models / "tiny.pt").read_bytes())
    with pytest.raises(ModelError, match="no model card lonely.json"):
        calibrate(cfg, models / "lonely.pt", models / "x.pt")
    calibrate(cfg, models / "tiny.pt", models / "once.pt", count=1, seconds=2.0, passes=1, say=lambda _: None)
    with pytest.raises(ModelError, match="already has level maps"):
        calibrate(cfg, models / "once.pt", models / "twice.pt")
    assert main(["train", "--config", str(cfg_path), "--calibrate", str(models / "tiny.pt")]) != 0
    assert "--calibrate IN.pt and --to OUT.pt go together" in capsys.readouterr().err
