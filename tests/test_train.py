"""mosapp train: config parsing, a few real optimisation steps, resume, export, and the exported weights coding audio."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from mosapp.cli.main import main
from mosapp.core.errors import ConfigError
from mosapp.training.train import TrainConfig, load_weights
from tests.conftest import music_like


def write_config(tmp_path, steps=2, extra=""):
    audio_dir = tmp_path / "music"
    audio_dir.mkdir(exist_ok=True)
    for i in range(2):
        sf.write(audio_dir / f"t{i}.wav", music_like(3.0, seed=i)[0], 44100)
    sf.write(audio_dir / "held.wav", music_like(3.0, seed=9)[0], 44100)
    cfg = tmp_path / "sgc-test.toml"
    cfg.write_text(f"""
[model]
name = "sgc-8"
n = 16
m = 24
[data]
train = ["{audio_dir}/*.wav"]
heldout = ["{audio_dir}/held.wav"]
cache = "{tmp_path}/cache"
[train]
steps = {steps}
batch = 2
patch_frames = 192
log_every = 1
checkpoint_every = 1
threads = 2
device = "cpu"
{extra}
[output]
dir = "{tmp_path}/run"
export = "{tmp_path}/models/sgc-8"
""")
    return cfg


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "sgc-1"\n[train]\nsteps = "many"\n')
    with pytest.raises(ConfigError, match=r"train\.steps must be a int"):
        TrainConfig.load(bad)
    bad.write_text('[model]\nname = "sgc-1"\n[train]\nstepz = 3\n')
    with pytest.raises(ConfigError, match=r"unknown field train\.stepz"):
        TrainConfig.load(bad)
    bad.write_text('[model\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.load(tmp_path / "missing.toml")


def test_heldout_files_are_never_trained_on(tmp_path):
    from mosapp.training.train import training_files

    cfg = TrainConfig.load(write_config(tmp_path))
    train_files, held = training_files(cfg)
    assert len(train_files) == 2 and len(held) == 1
    assert not set(train_files) & set(held)


def test_train_logs_checkpoints_resumes_and_exports(tmp_path, monkeypatch, capsys):
    cfg_path = write_config(tmp_path, steps=2)
    assert main(["train", "--config", str(cfg_path)]) == 0
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]
    for key in ("bpp", "kbps", "psnr_db", "ms_ssim", "consistency"):
        assert np.isfinite(float(rows[-1][key])), key
    assert (run / "training.png").stat().st_size > 1000
    # Export: weights + card next to the log copies.
    weights = tmp_path / "models" / "sgc-8.pt"
    card = json.loads((tmp_path / "models" / "sgc-8.json").read_text())
    assert card["training"]["steps"] == 2 and card["geometry"] == "thesis"
    assert card["architecture"]["n"] == 16
    assert load_weights(weights)["arch"] == {"n": 16, "m": 24}
    # Resume: raising the step count continues from the checkpoint, not from zero.
    cfg_path.write_text(cfg_path.read_text().replace("steps = 2", "steps = 3"))
    assert main(["train", "--config", str(cfg_path)]) == 0
    assert "resumed" in capsys.readouterr().out
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]

    # The exported weights are a working codec, found through MOSAPP_MODELS_DIR.
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path / "models"))
    from mosapp.codecs import codec_names, get_codec
    from mosapp.core.config import PipelineConfig

    assert "sgc-8" in codec_names()
    codec = get_codec("sgc-8")
    x = music_like(2.0, seed=3)
    y, enc = codec.process(x, PipelineConfig(phase="pghi", device="cpu"))
    assert y.shape == x.shape and np.isfinite(y).all()
    assert enc.params["step"] > 0


def test_load_weights_rejects_other_files(tmp_path):
    from mosapp.core.errors import ModelError

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot be read"):
        load_weights(junk)
    with pytest.raises(ModelError, match="does not exist"):
        load_weights(tmp_path / "none.pt")


def test_two_band_training_exports_weights_and_operating_points(tmp_path, monkeypatch):
    """representation = "two-band": one network per band image, trained together; the export
    writes one weights file and a card per operating point, each a working codec."""
    cfg_path = write_config(tmp_path, steps=2)
    text = cfg_path.read_text().replace('name = "sgc-8"', 'name = "sgc2-test"\nrepresentation = "two-band"')
    text = text.replace('export = "' + f"{tmp_path}/models/sgc-8" + '"',
                        f'export = "{tmp_path}/models/sgc2-test"\noperating_points = ["sgc-7:7:0.3", "sgc-20:20:0.5"]')
    text = text.replace("[train]\n", "[train]\nlow_lambda = 0.004\n")
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2]
    for key in ("kbps", "kbps_low", "psnr_low_db", "sc_low", "psnr_db"):
        assert np.isfinite(float(rows[-1][key])), key
    assert float(rows[-1]["kbps"]) > float(rows[-1]["kbps_low"]) > 0
    models = tmp_path / "models"
    assert load_weights(models / "sgc2-test.pt")["arch"] == {"n": 16, "m": 24, "representation": "two-band"}
    card = json.loads((models / "sgc-7.json").read_text())
    assert card["weights"] == "sgc2-test.pt" and card["image"]["representation"] == "two-band"
    assert card["rate_control"] == {**card["rate_control"], "target_kbps": 7.0, "low_share": 0.3}
    assert card["training"]["low_lambda"] == 0.004

    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    from mosapp.codecs import codec_names, get_codec
    from mosapp.codecs.sgc import SgcTwoBandCodec
    from mosapp.core.config import PipelineConfig

    assert {"sgc-7", "sgc-20"} <= set(codec_names()) and "sgc2-test" not in codec_names()
    codec = get_codec("sgc-20")
    assert isinstance(codec, SgcTwoBandCodec)
    x = music_like(2.0, seed=3)
    y, enc = codec.process(x, PipelineConfig(phase="pghi", device="cpu"))
    assert y.shape == x.shape and np.isfinite(y).all()
    s_low, s_high = enc.params["step"]
    assert s_low > 0 and s_high > 0


def test_operating_points_are_checked(tmp_path):
    cfg_path = write_config(tmp_path)
    cfg_path.write_text(cfg_path.read_text().replace("[output]", '[output]\noperating_points = ["sgc-7:fast:1"]'))
    with pytest.raises(ConfigError, match="operating_points"):
        TrainConfig.load(cfg_path)
    cfg_path.write_text(cfg_path.read_text().replace('name = "sgc-8"', 'name = "sgc-8"\nrepresentation = "tri-band"'))
    with pytest.raises(ConfigError, match="representation"):
        TrainConfig.load(cfg_path)
