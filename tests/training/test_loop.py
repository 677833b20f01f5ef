"""mosapp train end to end: a few real optimisation steps, resume, export, and the exported weights coding audio."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch

from mosapp.cli.main import main
from mosapp.codecs import codec_names, get_codec
from mosapp.codecs.sgc import SgcTwoBandCodec
from mosapp.core.config import PipelineConfig
from mosapp.models.sgc_net import SpectrogramHyperprior, TwoBandHyperprior
from mosapp.models.weights import load_weights
from mosapp.training.config import TrainConfig
from mosapp.training.loop import LOG_COLUMNS, LOW_LOG_COLUMNS, build_model
from tests.helpers import music_like
from tests.training.conftest import write_config


def test_train_logs_checkpoints_resumes_and_exports(tmp_path, monkeypatch, capsys):
    cfg_path = write_config(tmp_path, steps=2)
    assert main(["train", "--config", str(cfg_path)]) == 0
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert list(rows[0]) == LOG_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2]
    for key in ("bpp", "kbps", "psnr_db", "ms_ssim", "consistency"):
        assert np.isfinite(float(rows[-1][key])), key
    assert (run / "training.png").stat().st_size > 1000
    # The checkpoint holds tensors and plain values only.
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    # Export: weights + card next to the log copies.
    weights = tmp_path / "models" / "sgc-8.pt"
    card = json.loads((tmp_path / "models" / "sgc-8.json").read_text())
    assert card["training"]["steps"] == 2 and card["geometry"] == "thesis"
    assert card["architecture"]["n"] == 16
    # No [data] description: the card names the training files' folder, not a fixed sentence.
    assert card["training"]["data"] == (f"2 files from {tmp_path / 'music'} (2); mono mix-down at 44.1 kHz; "
                                        "held-out files excluded")
    assert load_weights(weights)["arch"] == {"n": 16, "m": 24}
    assert (tmp_path / "models" / "sgc-8.log.csv").read_bytes() == (run / "log.csv").read_bytes()
    assert (tmp_path / "models" / "sgc-8.training.png").read_bytes() == (run / "training.png").read_bytes()
    # Resume: raising the step count continues from the checkpoint, not from zero.
    cfg_path.write_text(cfg_path.read_text().replace("steps = 2", "steps = 3"))
    assert main(["train", "--config", str(cfg_path)]) == 0
    assert "resumed from" in capsys.readouterr().out
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert float(rows[2]["seconds"]) >= float(rows[1]["seconds"])  # training time carries over
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporaries left

    # The exported weights are a working codec, found through MOSAPP_MODELS_DIR.
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(tmp_path / "models"))
    assert "sgc-8" in codec_names()
    codec = get_codec("sgc-8")
    x = music_like(2.0, seed=3)
    y, enc = codec.process(x, PipelineConfig(phase="pghi", device="cpu"))
    assert y.shape == x.shape and np.isfinite(y).all()
    assert enc.params["step"] > 0


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
    assert list(rows[0]) == LOG_COLUMNS + LOW_LOG_COLUMNS
    assert [int(r["step"]) for r in rows] == [1, 2]
    for key in ("kbps", "kbps_low", "psnr_low_db", "sc_low", "psnr_db"):
        assert np.isfinite(float(rows[-1][key])), key
    assert float(rows[-1]["kbps"]) > float(rows[-1]["kbps_low"]) > 0
    models = tmp_path / "models"
    state = load_weights(models / "sgc2-test.pt")
    assert state["arch"] == {"n": 16, "m": 24, "representation": "two-band"} and state["version"] == 2
    card = json.loads((models / "sgc-7.json").read_text())
    assert card["weights"] == "sgc2-test.pt" and card["image"]["representation"] == "two-band"
    assert card["rate_control"] == {**card["rate_control"], "target_kbps": 7.0, "low_share": 0.3}
    assert card["training"]["low_lambda"] == 0.004

    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    assert {"sgc-7", "sgc-20"} <= set(codec_names()) and "sgc2-test" not in codec_names()
    codec = get_codec("sgc-20")
    assert isinstance(codec, SgcTwoBandCodec)
    x = music_like(2.0, seed=3)
    y, enc = codec.process(x, PipelineConfig(phase="pghi", device="cpu"))
    assert y.shape == x.shape and np.isfinite(y).all()
    s_low, s_high = enc.params["step"]
    assert s_low > 0 and s_high > 0


def test_build_model_follows_the_representation(tmp_path):
    cfg = TrainConfig.load(write_config(tmp_path))
    model = build_model(cfg)
    assert isinstance(model, SpectrogramHyperprior) and model.arch.as_dict() == {"n": 16, "m": 24}
    cfg.representation = "two-band"
    assert isinstance(build_model(cfg), TwoBandHyperprior)


def test_a_run_that_trains_one_band_leaves_the_other_as_it_started(tmp_path):
    """train.bands = ["low"]: the low network learns, the high network (and its entropy
    coder) keeps its init weights bit for bit; both bands' figures are still logged."""
    cfg_path = write_config(tmp_path, steps=2)
    text = cfg_path.read_text().replace('name = "sgc-8"', 'name = "sgc2-test"\nrepresentation = "two-band"')
    text = text.replace('export = "' + f"{tmp_path}/models/sgc-8" + '"', f'export = "{tmp_path}/models/first"')
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 0
    first = load_weights(tmp_path / "models" / "first.pt")["state_dict"]

    text = text.replace(f'dir = "{tmp_path}/run"', f'dir = "{tmp_path}/run-low"')
    text = text.replace(f'export = "{tmp_path}/models/first"', f'export = "{tmp_path}/models/low-only"')
    text = text.replace("[model]\n", f'[model]\ninit = "{tmp_path}/models/first.pt"\n')
    text = text.replace("[train]\n", '[train]\nbands = ["low"]\n')
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 0
    after = load_weights(tmp_path / "models" / "low-only.pt")["state_dict"]
    high = [k for k in first if k.startswith("high.")]
    low = [k for k in first if k.startswith("low.") and first[k].is_floating_point()]
    assert high and all(torch.equal(first[k], after[k]) for k in high)
    assert any(not torch.equal(first[k], after[k]) for k in low)
    rows = list(csv.DictReader(open(tmp_path / "run-low" / "log.csv")))
    assert np.isfinite(float(rows[-1]["psnr_db"])) and np.isfinite(float(rows[-1]["psnr_low_db"]))
    card = json.loads((tmp_path / "models" / "low-only.json").read_text())
    assert card["training"]["bands_trained"] == ["low"]


def _klt_config(tmp_path):
    """A two-step config of a small two-band block-transform network: (its path, its text)."""
    cfg_path = write_config(tmp_path, steps=2)
    text = cfg_path.read_text().replace(
        'name = "sgc-8"', 'name = "sgc4-test"\nrepresentation = "two-band"\ntransform = "klt"\n'
                          'klt_step = [0.15, 0.6]\nblock_frames = [32, 64]\nhigh_m = 32')
    return cfg_path, text


def _code_both_points(models, monkeypatch, description: str) -> list:
    """sgc-5 and sgc-20 of ``models`` each code and decode 3 s of music-like audio: their Encoded."""
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    x = music_like(3.0, seed=3)
    out = []
    for name in ("sgc-5", "sgc-20"):
        codec = get_codec(name)
        assert description in codec.description
        y, enc = codec.process(x, PipelineConfig(phase="pghi", device="cpu"))
        assert y.shape == x.shape and np.isfinite(y).all()
        out.append(enc)
    return out


def test_a_block_transform_network_trains_at_a_range_of_steps_and_codes_every_rate(tmp_path, monkeypatch):
    """transform = "klt": the block transforms start as the training images' KLT, train with a
    latent step drawn per batch, and the one exported network serves operating points of very
    different rates (rate control picks each file's steps)."""
    cfg_path, text = _klt_config(tmp_path)
    text = text.replace('export = "' + f"{tmp_path}/models/sgc-8" + '"',
                        f'export = "{tmp_path}/models/sgc4-test"\noperating_points = ["sgc-5:5:0.4", "sgc-20:20:0.4"]')
    text = text.replace("[train]\n", "[train]\nstep_range = [0.5, 2.0]\nste = true\nlow_lambda = 0.002\n")
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 2  # 192-frame patches, 256-frame network: one sentence
    cfg_path.write_text(text.replace("patch_frames = 192", "patch_frames = 256"))
    assert main(["train", "--config", str(cfg_path)]) == 0
    models = tmp_path / "models"
    state = load_weights(models / "sgc4-test.pt")
    assert state["arch"] == {"n": 16, "m": 24, "transform": "klt", "block_frames": 32, "representation": "two-band",
                             "high_block_frames": 64, "high_m": 32}
    card = json.loads((models / "sgc-5.json").read_text())
    assert card["training"]["step_range"] == [0.5, 2.0] and card["training"]["klt_step"] == [0.15, 0.6]
    assert "block transform" in card["architecture"]["type"]

    encoded = _code_both_points(models, monkeypatch, "learned block transforms")
    assert len(encoded[1].payload) > 2 * len(encoded[0].payload)


def test_finetuning_into_a_temporal_context_fits_it_first_and_the_points_code_with_it(tmp_path, monkeypatch):
    """context = "temporal" from init weights without one: the context starts as the least-squares fit
    on the training images (said in one line), trains with the rest, and the exported points code and
    decode through it, with the high image's row slope of their config."""
    cfg_path, text = _klt_config(tmp_path)
    text = text.replace('export = "' + f"{tmp_path}/models/sgc-8" + '"', f'export = "{tmp_path}/models/first"')
    text = text.replace("patch_frames = 192", "patch_frames = 256").replace("[train]\n", "[train]\nste = true\n")
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path)]) == 0
    text = text.replace(f'dir = "{tmp_path}/run"', f'dir = "{tmp_path}/run-ctx"')
    text = text.replace(f'export = "{tmp_path}/models/first"',
                        f'export = "{tmp_path}/models/ctx"\noperating_points = ["sgc-5:5:0.4:0.5", "sgc-20:20:0.4:0.5"]')
    text = text.replace("[model]\n", f'[model]\ninit = "{tmp_path}/models/first.pt"\ncontext = "temporal"\n')
    cfg_path.write_text(text)
    said: list[str] = []
    from mosapp.training.loop import train

    train(TrainConfig.load(cfg_path), say=said.append)
    assert sum("temporal context fitted" in line for line in said) == 2
    models = tmp_path / "models"
    state = load_weights(models / "ctx.pt")
    assert state["arch"]["context"] == "temporal"
    first = load_weights(models / "first.pt")["state_dict"]
    assert {k for k in state["state_dict"] if k not in first} == {
        f"{band}.context.{p}" for band in ("low", "high") for p in ("weight", "log_gain")}
    assert float(state["state_dict"]["high.context.weight"].abs().max()) > 0.1  # fitted, not left at 0
    card = json.loads((models / "sgc-5.json").read_text())
    assert card["rate_control"]["high_row_slope"] == 0.5 and "temporal context" in card["architecture"]["type"]

    encoded = _code_both_points(models, monkeypatch, "temporal contexts")
    assert all(enc.params["high_row_slope"] == 0.5 for enc in encoded)
    assert len(encoded[1].payload) > 2 * len(encoded[0].payload)


def test_export_writes_interim_weights_without_training(tmp_path):
    """``--export`` exports the checkpoint as it stands (the run is at step 1 of 5), trains nothing,
    and the run goes on from the same checkpoint afterwards."""
    cfg_path = write_config(tmp_path, steps=5)
    assert main(["train", "--config", str(cfg_path), "--steps", "1"]) == 0
    card_path = tmp_path / "models" / "sgc-8.json"
    assert not card_path.exists()  # step 1 of 5: nothing exported yet
    # A process still training has logged past the checkpoint: exporting beside it leaves its rows alone.
    log_path = tmp_path / "run" / "log.csv"
    rows = log_path.read_text().splitlines()
    ahead = rows[-1].replace("1,", "2,", 1)
    log_path.write_text("\n".join([*rows, ahead]) + "\n")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    assert main(["train", "--config", str(cfg_path), "--export"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before
    assert log_path.read_text().splitlines()[-1] == ahead
    log_path.write_text("\n".join(rows) + "\n")
    card = json.loads(card_path.read_text())
    assert card["training"]["steps"] == 1
    assert [int(r["step"]) for r in csv.DictReader(open(tmp_path / "run" / "log.csv"))] == [1]
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 1
    assert load_weights(tmp_path / "models" / "sgc-8.pt")["arch"] == {"n": 16, "m": 24}
