"""The typed model card: every shipped card reads and writes back as it is; one rate parser, one step range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosapp.core.errors import ModelError
from mosapp.models.card import STEP_RANGE, ModelCard, RateControl, name_kbps

MODELS = Path(__file__).resolve().parents[2] / "assets" / "models"
CARDS = sorted(MODELS.glob("*.json")) + sorted(MODELS.glob("base/*.json"))


@pytest.mark.parametrize("path", CARDS, ids=[p.name for p in CARDS])
def test_every_shipped_card_reads_and_writes_back_as_it_is(path):
    card = ModelCard.read(path)
    assert card.path == path and card.name == json.loads(path.read_text())["name"]
    assert card.dumps().rstrip("\n") == path.read_text().rstrip("\n")
    assert card.weights_path() == path.parent / card.weights


def test_the_shipped_operating_points_are_typed():
    card = ModelCard.read(MODELS / "sgc-12.json")
    assert card.is_two_band and card.transform == "klt" and card.context == "temporal"
    assert card.rate_control is not None and card.rate_control.target_kbps == 12.0
    assert 0 < card.rate_control.low_share < 1 and card.measured is not None
    thesis = ModelCard.read(MODELS / "sgc-thesis-12.json")
    assert not thesis.is_two_band and thesis.rate_control is None and thesis.transform == "gdn"


def test_a_new_card_is_written_in_the_order_cards_have():
    card = ModelCard(name="sgc-7", weights="w.pt", rate_control=RateControl(7.0, 0.4, None, "n"))
    obj = json.loads(card.dumps())
    assert list(obj) == ["name", "weights", "architecture", "geometry", "image", "training", "heldout", "measured",
                         "rate_control"]
    assert obj["rate_control"] == {"target_kbps": 7.0, "low_share": 0.4, "note": "n"}
    assert "rate_control" not in json.loads(ModelCard(name="x").dumps())


def test_an_unknown_key_is_kept(tmp_path):
    path = tmp_path / "sgc-9.json"
    path.write_text(json.dumps({"name": "sgc-9", "weights": "a.pt", "description": "mine", "measured": None}))
    card = ModelCard.read(path)
    assert card.extra == {"description": "mine"}
    assert json.loads(card.dumps())["description"] == "mine"


@pytest.mark.parametrize("text", ["{", "[1, 2]"])
def test_a_broken_card_is_one_sentence(tmp_path, text):
    path = tmp_path / "sgc-9.json"
    path.write_text(text)
    with pytest.raises(ModelError, match="model card"):
        ModelCard.read(path)


@pytest.mark.parametrize(("name", "kbps"), [("sgc-12", 12.0), ("sgc-thesis-6", 6.0), ("sgc3-24", 24.0),
                                            ("sgc-12.5", 12.5), ("sgc4", None), ("sgc2", None), ("sgc-x", None),
                                            ("sgc-12k", None), ("12", None)])
def test_the_rate_in_a_name(name, kbps):
    assert name_kbps(name) == kbps


def test_one_step_range_for_rate_control_and_training(tmp_path):
    from mosapp.codecs import sgc
    from mosapp.core.errors import ConfigError
    from mosapp.training.config import TrainConfig

    assert sgc.STEP_RANGE is STEP_RANGE and sgc.name_kbps is name_kbps
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\nname = "sgc-1"\n[train]\nstep_range = [{STEP_RANGE[0] / 2}, 1.0]\n')
    with pytest.raises(ConfigError, match=f"{STEP_RANGE[0]:g} <= low <= high <= {STEP_RANGE[1]:g}"):
        TrainConfig.load(config)
    config.write_text(f'[model]\nname = "sgc-1"\n[train]\nstep_range = [{STEP_RANGE[0]}, {STEP_RANGE[1]}]\n')
    assert TrainConfig.load(config).step_range == list(STEP_RANGE)
