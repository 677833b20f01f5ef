"""FAD in mosapp evaluate: one figure per codec over its excerpts, from CLAP embeddings (random weights of the
real architecture saved as a local checkpoint)."""

from __future__ import annotations

import csv

import pytest
import soundfile as sf

from mosapp.evaluation.run import check_metrics, run_evaluation, run_to_end
from mosapp.models import clap
from tests.helpers import RATE, music_like, require_module

require_module("transformers", "the baselines extra (scripts/setup installs it)")


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    from mosapp.models._torchvision import ensure_importable

    ensure_importable()
    import torch
    from transformers import ClapAudioConfig, ClapAudioModelWithProjection, ClapFeatureExtractor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("baselines")
    # HTSAT-tiny's layout with fewer blocks (as the MS-ILLM tests shrink HiFiC); the feature extractor as published.
    model = ClapAudioModelWithProjection(ClapAudioConfig(depths=[1, 1, 1, 1], projection_dim=64))
    model.save_pretrained(folder / clap.FOLDER)
    ClapFeatureExtractor().save_pretrained(folder / clap.FOLDER)
    return folder


def test_fad_is_one_figure_per_codec_with_its_count(clap_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(clap.ENV_DIR, str(clap_dir))
    assert "fad" in check_metrics(None)  # every metric that can run here
    music = tmp_path / "music"
    music.mkdir()
    for i in range(3):
        sf.write(str(music / f"p{i}.wav"), music_like(2.0, seed=30 + i).T, RATE)
    out = tmp_path / "out"
    r = run_to_end(run_evaluation([str(music)], ["opus-6", "opus-24"], out, metric_names=["mel_distance", "fad"],
                                  workers=0))
    assert r.failed == 0 and not r.problems
    with open(out / "clips.csv", newline="") as fh:
        assert "fad" not in next(csv.reader(fh))  # not a per-clip figure
    with open(out / "summary.csv", newline="") as fh:
        rows = {(x["codec"], x["metric"]): x for x in csv.DictReader(fh)}
    for codec in ("opus-6", "opus-24"):
        assert rows[(codec, "fad")]["n"] == "3" and float(rows[(codec, "fad")]["mean"]) >= 0
        assert rows[(codec, "fad_inf")]["mean"] == ""  # too few clips for FAD∞
    assert float(rows[("opus-6", "fad")]["mean"]) != float(rows[("opus-24", "fad")]["mean"])
    assert "FAD (CLAP laion/clap-htsat-unfused" in (out / "summary.md").read_text()
    assert (out / "rd-fad.png").is_file()


def test_without_the_embedding_model_fad_is_one_sentence_and_the_rest_runs(tmp_path, monkeypatch):
    monkeypatch.setenv(clap.ENV_DIR, str(tmp_path / "nothing"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert "fad" not in check_metrics(None)
    sf.write(str(tmp_path / "a.wav"), music_like(1.0).T, RATE)
    r = run_to_end(run_evaluation([str(tmp_path / "a.wav")], ["opus-12"], tmp_path / "out",
                                  metric_names=["mel_distance", "fad"], workers=0))
    assert r.measured == 1 and len(r.problems) == 1 and "snapshot_download('laion/clap-htsat-unfused')" in r.problems[0]
