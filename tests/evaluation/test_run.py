"""mosapp.evaluation.run: the evaluation's outputs, its resumption, stale rows and failures."""

from __future__ import annotations

import csv
import json

import pytest
import soundfile as sf

from mosapp.core.metrics import SIGNAL_METRIC_NAMES
from mosapp.evaluation import results
from mosapp.evaluation.clips import Excerpt
from mosapp.evaluation.results import OutputError, PairRow, PairStore
from mosapp.evaluation.run import run_evaluation, run_to_end
from tests.helpers import RATE, music_like

FAST = ("mel_distance", "spectral_convergence_db", "low_band_distance_db", "low_band_correlation")


def _folder(tmp_path, n=2, seconds=3.0):
    d = tmp_path / "music"
    d.mkdir()
    for i in range(n):
        sf.write(str(d / f"piece{i}.wav"), music_like(seconds, seed=i).T, RATE)
    return d


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_run_writes_every_output_and_a_rerun_measures_nothing_again(tmp_path):
    music = _folder(tmp_path)
    out = tmp_path / "out"
    r = run_to_end(run_evaluation([str(music)], ["opus-12", "mp3-16", "no-such-codec"], out, metric_names=FAST,
                                  excerpt_seconds=1.0, excerpts_per_file=2, workers=0))
    assert (r.pairs, r.measured, r.reused, r.failed) == (12, 8, 0, 4)
    for name in ("clips.csv", "summary.csv", "summary.md", "failures.csv", "timings.csv", "run.json",
                 "rd-mel_distance.png", "rd-mel_distance.svg", "rd-low_band_correlation.png"):
        assert (out / name).is_file(), name
    rows = _csv(out / "clips.csv")
    assert len(rows) == 8 and list(rows[0])[:6] == ["clip", "start_s", "seconds", "codec", "file_kbps", "payload_kbps"]
    assert list(rows[0])[6:] == list(FAST)
    assert {row["codec"] for row in rows} == {"opus-12", "mp3-16"}
    assert all(11.0 < float(row["file_kbps"]) < 14.5 for row in rows if row["codec"] == "opus-12")
    summary = _csv(out / "summary.csv")
    mel = next(s for s in summary if s["codec"] == "opus-12" and s["metric"] == "mel_distance")
    assert mel["n"] == "4" and float(mel["ci95_low"]) < float(mel["mean"]) < float(mel["ci95_high"])
    text = (out / "summary.md").read_text()
    assert "| `opus-12` | 4 |" in text and "`no-such-codec` on 4 excerpts: Unknown codec" in text
    record = json.loads((out / "run.json").read_text())
    assert record["codecs"]["opus-12"]["version"] >= 1 and record["pairs"]["failed"] == 4
    assert "machine" in record and "dask" in record["versions"]
    before = (out / "clips.csv").read_text()

    again = run_to_end(run_evaluation([str(music)], ["opus-12", "mp3-16", "no-such-codec"], out, metric_names=FAST,
                                      excerpt_seconds=1.0, excerpts_per_file=2, workers=0))
    assert (again.measured, again.reused) == (0, 8)
    assert (out / "clips.csv").read_text() == before

    # Other metrics are other settings: those rows are measured again.
    third = run_to_end(run_evaluation([str(music)], ["opus-12"], out, metric_names=FAST[:2],
                                      excerpt_seconds=1.0, excerpts_per_file=2, workers=0))
    assert (third.measured, third.reused) == (4, 0)


def test_new_weights_for_a_codec_make_its_rows_stale(tmp_path, monkeypatch):
    from mosapp.codecs.sgc import ASSETS_MODELS

    music = _folder(tmp_path, n=1, seconds=1.5)
    out = tmp_path / "out"
    kw = dict(metric_names=FAST[:1], workers=0)
    first = run_to_end(run_evaluation([str(music)], ["sgc-6", "opus-6"], out, **kw))
    assert first.measured == 2
    # The same operating point from another card (say, retrained weights): sgc-6's row is stale, opus-6's is not.
    models = tmp_path / "models"
    models.mkdir()
    card = json.loads((ASSETS_MODELS / "sgc-6.json").read_text())
    card["description"] = card.get("description", "") + " (retrained)"
    (models / "sgc-6.json").write_text(json.dumps(card))
    weights = card.get("weights", "sgc-6.pt")
    (models / weights).symlink_to(ASSETS_MODELS / weights)
    monkeypatch.setenv("MOSAPP_MODELS_DIR", str(models))
    second = run_to_end(run_evaluation([str(music)], ["sgc-6", "opus-6"], out, **kw))
    assert (second.measured, second.reused) == (1, 1)
    assert len(_csv(out / "clips.csv")) == 2


def test_the_store_replaces_a_failed_row_and_keeps_one_row_per_pair(tmp_path):
    e = Excerpt("a.wav", 0.0, 1.0, "a.wav")
    store = PairStore(tmp_path)
    store.save(PairRow(e, "opus-12", error="The file went away."), "fp", "s")
    assert store.done({"opus-12": "fp"}, "s") == set()
    store.save(PairRow(e, "opus-12", values={"file_kbps": 12.0}), "fp", "s")
    assert store.done({"opus-12": "fp"}, "s") == {("a.wav", 0.0, 1.0, "opus-12")}
    assert store.done({"opus-12": "other"}, "s") == set()
    assert [r.ok for r in store.rows([e], ["opus-12"], {"opus-12": "fp"}, "s")] == [True]
    store.close()


def test_a_foreign_file_as_the_database_is_one_sentence(tmp_path):
    (tmp_path / "pairs.sqlite").write_text("this is not a database, it is a note\n" * 50)
    with pytest.raises(OutputError, match="is not an evaluation's database"):
        PairStore(tmp_path)


def test_mean_ci_is_the_t_interval():
    s = results.mean_ci([1.0, 2.0, 3.0, 4.0])
    # R: t.test(c(1, 2, 3, 4))$conf.int -> 0.4457397 4.5542603
    assert s.n == 4 and s.mean == 2.5
    assert s.low == pytest.approx(0.4457397, abs=1e-6) and s.high == pytest.approx(4.5542603, abs=1e-6)
    assert results.mean_ci([float("nan"), 2.0]).n == 1


def test_default_metrics_are_every_metric_of_decoded_audio():
    from mosapp.evaluation.run import DEFAULT_METRICS, EvaluationError, check_metrics

    assert DEFAULT_METRICS == SIGNAL_METRIC_NAMES and "visqol" in DEFAULT_METRICS
    assert check_metrics(["mel_distance", "file_kbps"]) == ("mel_distance",)
    with pytest.raises(EvaluationError, match="not one of decoded audio"):
        check_metrics(["target_consistency"])
