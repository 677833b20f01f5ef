"""The training config: field checks worded with the field's name, held-out files, operating points."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mosapp.core.errors import ConfigError
from mosapp.training.config import TrainConfig, expand, parse_operating_point, training_files
from tests.training.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "sgc-1"\n[train]\nsteps = "many"\n')
    with pytest.raises(ConfigError, match=r"train\.steps must be a int"):
        TrainConfig.load(bad)
    bad.write_text('[model]\nname = "sgc-1"\n[train]\nstepz = 3\n')
    with pytest.raises(ConfigError, match=r"unknown field train\.stepz"):
        TrainConfig.load(bad)
    bad.write_text('[model]\nname = "sgc-1"\n[train]\nlow_sdl_frames = 0\n')
    with pytest.raises(ConfigError, match=r"train\.low_sdl_frames must be at least 1"):
        TrainConfig.load(bad)
    bad.write_text('[model]\nname = "sgc-1"\nhigh_hyper_time_stride = 3\n')
    with pytest.raises(ConfigError, match=r"model\.high_hyper_time_stride must be 2 or 4"):
        TrainConfig.load(bad)
    bad.write_text('[model\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.load(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.load(tmp_path / "missing.toml")
    bad.write_text('[model]\nn = 8\n')
    with pytest.raises(ConfigError, match=r"model\.name is required"):
        TrainConfig.load(bad)


def test_fields_map_to_attributes_and_paths_resolve(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    path = configs / "x.toml"
    path.write_text('[model]\nname = "sgc-9"\ninit = "assets/models/base/sgc-base.pt"\n'
                    '[train]\nlambda = 1\nlow_lambda = 0.5\nsdl_weight = 400\nsdl_frames = 16\nlow_sdl_frames = 4\n'
                    '[output]\ndir = "runs/x"\n')
    cfg = TrainConfig.load(path)
    assert cfg.lam == 1.0 and isinstance(cfg.lam, float) and cfg.low_lam == 0.5
    assert (cfg.sdl_weight, cfg.sdl_frames, cfg.low_sdl_frames) == (400.0, 16, 4)
    # A config in configs/ names paths relative to the repository (the folder above).
    assert cfg.out_dir == str(tmp_path / "runs" / "x")
    assert cfg.init == str(tmp_path / "assets/models/base/sgc-base.pt")
    assert cfg.source == str(path)


def test_shipped_configs_load():
    paths = sorted((ROOT / "configs").glob("*.toml"))
    assert len(paths) >= 6
    for path in paths:
        cfg = TrainConfig.load(path)
        assert cfg.name == path.stem and cfg.train
        assert Path(cfg.export).with_suffix(".pt").is_file(), cfg.export  # the weights it made are shipped
        assert not cfg.init or Path(cfg.init).is_file(), cfg.init


def test_heldout_files_are_never_trained_on(tmp_path):
    cfg = TrainConfig.load(write_config(tmp_path))
    train_files, held = training_files(cfg)
    assert len(train_files) == 2 and len(held) == 1
    assert not set(train_files) & set(held)
    assert expand([str(tmp_path / "music" / "t*.wav")]) == sorted(train_files)


def test_operating_points_are_checked(tmp_path):
    assert parse_operating_point("sgc-12:12:0.4") == ("sgc-12", 12.0, 0.4, 0.0)
    assert parse_operating_point("sgc-12:12:0.4:0.5") == ("sgc-12", 12.0, 0.4, 0.5)
    for bad in ("sgc-12:12:0.4:3", "sgc-12:12:0.4:0.5:1", "sgc-12:12:0.4:steep"):
        with pytest.raises(ConfigError, match="high row slope"):
            parse_operating_point(bad)
    cfg_path = write_config(tmp_path)
    cfg_path.write_text(cfg_path.read_text().replace("[output]", '[output]\noperating_points = ["sgc-7:fast:1"]'))
    with pytest.raises(ConfigError, match="operating_points"):
        TrainConfig.load(cfg_path)
    cfg_path.write_text(cfg_path.read_text().replace('name = "sgc-8"', 'name = "sgc-8"\nrepresentation = "tri-band"'))
    with pytest.raises(ConfigError, match="representation"):
        TrainConfig.load(cfg_path)


@pytest.mark.parametrize("bands, message", [
    ('[]', 'train.bands must list "low", "high" or both'),
    ('["low", "low"]', 'train.bands must list "low", "high" or both'),
    ('["mid"]', 'train.bands must list "low", "high" or both'),
    ('["low"]', "train.bands is for the two-band representation"),
])
def test_bad_bands_are_one_sentence(tmp_path, bands, message):
    path = write_config(tmp_path, extra=f"bands = {bands}")
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.load(path)


def test_training_one_band_needs_the_others_weights(tmp_path):
    path = write_config(tmp_path, extra='bands = ["high"]')
    path.write_text(path.read_text().replace('name = "sgc-8"', 'name = "x"\nrepresentation = "two-band"'))
    with pytest.raises(ConfigError, match=r"leaves a band untrained, so model.init must give its weights\."):
        TrainConfig.load(path)


@pytest.mark.parametrize("extra, message", [
    ('transform = "dct"', 'model.transform must be "gdn" or "klt"'),
    ('transform = "klt"\nhigh_m = 8', "model.high_m is the two-band high network's latent channels"),
    ('transform = "klt"\nklt_step = [1.5]', "model.klt_step must give 1 coefficient step(s) between 0 and 1"),
    ('block_frames = [32]', "other than 16 only for a block transform"),
    ('transform = "klt"\nblock_frames = [48]', "model.block_frames gives each image's block length"),
])
def test_bad_transform_settings_are_one_sentence(tmp_path, extra, message):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("m = 24\n", "m = 24\n" + extra + "\n", 1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.load(path)


def test_a_block_transform_keeps_at_most_its_blocks_coefficients(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("m = 24\n", 'm = 300\ntransform = "klt"\n', 1))
    with pytest.raises(ConfigError, match=re.escape("a block transform of 16 x 16 blocks has at most 256 latent "
                                                    "channels, got 300.")):
        TrainConfig.load(path)


@pytest.mark.parametrize("value", ["[0.5]", "[2.0, 1.0]", "[0.05, 1.0]", "[1.0, 9.0]"])
def test_a_bad_step_range_is_one_sentence(tmp_path, value):
    path = write_config(tmp_path, extra=f"step_range = {value}")
    with pytest.raises(ConfigError, match=re.escape("train.step_range must be [low, high] with 0.1 <= low <= high <= 8")):
        TrainConfig.load(path)


def test_the_fourth_round_config_loads():
    cfg = TrainConfig.load(Path(__file__).resolve().parents[2] / "configs" / "sgc4.toml")
    assert (cfg.transform, cfg.block_frames, cfg.step_range, cfg.ste) == ("klt", [32, 64], [0.5, 2.0], True)


def test_the_fifth_round_config_finetunes_the_fourth_into_a_temporal_context(tmp_path):
    cfg = TrainConfig.load(Path(__file__).resolve().parents[2] / "configs" / "sgc5.toml")
    assert (cfg.context, Path(cfg.init).name, cfg.transform) == ("temporal", "sgc4.pt", "klt")
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("m = 24\n", 'm = 24\ncontext = "spatial"\n', 1))
    with pytest.raises(ConfigError, match=re.escape('model.context must be "none" or "temporal", got \'spatial\'.')):
        TrainConfig.load(path)


def test_data_description_goes_to_the_card(tmp_path):
    """``[data] description`` is the card's training-data sentence."""
    from mosapp.training.card import data_text
    from mosapp.training.config import TrainConfig, training_files
    from tests.training.conftest import write_config
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[data]\n", '[data]\ndescription = "Two synthetic tracks (CC0)."\n'))
    cfg = TrainConfig.load(path)
    files, _ = training_files(cfg)
    assert data_text(cfg, files) == "Two synthetic tracks (CC0); mono mix-down at 44.1 kHz; held-out files excluded"
