"""CSV export (tidy ratings, per-condition summary), the report with its plot, and the command line."""

from __future__ import annotations

import argparse
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from mosapp.study import StudyEngine, load_study
from mosapp.study.export import RATINGS_COLUMNS, SUMMARY_COLUMNS, export_study
from mosapp.study.report import build_report, write_report
from tests.study.conftest import cli, condition_lookup, listen_through, scripted_scores


def test_export_loads_in_pandas_without_cleanup(study, tmp_path):
    listen_through(study, scripted_scores(study))
    d = load_study(study)
    with StudyEngine.open(study) as engine:
        ratings_csv, summary_csv = export_study(engine.store, d, tmp_path / "out", min_reference_trials=3)
    assert summary_csv.name == "dcr-export-summary.csv"
    ratings = pd.read_csv(ratings_csv)
    assert list(ratings.columns) == list(RATINGS_COLUMNS)
    assert len(ratings) == 4 * d.trials_per_listener  # training left out by default
    assert ratings["value"].dtype == np.int64 and ratings["value"].between(1, 5).all()
    for col in ("is_training", "is_gold", "is_reference", "screened_out"):
        assert ratings[col].dtype == bool
    assert not ratings["is_training"].any()
    assert set(ratings.loc[ratings["screened_out"], "listener"]) == {"BAD"}
    assert ratings["bitrate_kbps"].dtype == np.float64
    assert ratings.loc[ratings["condition"] == "reference", "bitrate_kbps"].isna().all()
    assert ratings.loc[ratings["condition"] != "reference", "mel_distance"].notna().all()
    assert ratings.loc[ratings["condition"] != "reference", "low_band_correlation"].between(-1, 1).all()
    assert ratings.loc[ratings["condition"] == "reference", "low_band_distance_db"].isna().all()
    assert ratings["audio_device"].eq("test device").all()
    times = pd.to_datetime(ratings["rated_at"], utc=True)
    assert times.notna().all() and (times >= pd.to_datetime(ratings["session_started_at"], utc=True)).all()

    summary = pd.read_csv(summary_csv)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert list(summary["condition"]) == list(d.conditions)
    assert (summary["scale"] == "DMOS").all() and summary["is_reference"].dtype == bool
    ref = summary.set_index("condition").loc["reference"]
    assert ref["n_listeners"] == 3 and ref["mean"] == pytest.approx(5.0)  # BAD screened out
    assert "1 of 4 listeners dropped" in ref["screening"] and "min_reference_trials 3" in ref["screening"]
    assert (summary["ci_low"] <= summary["mean"]).all()
    assert (summary["rating_ci_low"] <= summary["mean"]).all() and summary["mixed_estimate"].notna().all()
    screening = pd.read_csv(tmp_path / "out" / "dcr-export-screening.csv").set_index("listener")
    assert bool(screening.loc["BAD", "dropped"]) and "3 of 3 trials" in screening.loc["BAD", "reason"]
    assert screening["screening"].str.contains("rule reference").all()

    with StudyEngine.open(study) as engine:
        ratings_csv, summary_csv = export_study(engine.store, d, tmp_path / "all", include_training=True,
                                                screening=False)
    everything = pd.read_csv(ratings_csv)
    assert everything["is_training"].sum() == 4 * d.training.trials and not everything["screened_out"].any()
    assert pd.read_csv(summary_csv).set_index("condition").loc["reference", "n_listeners"] == 4


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")
def test_export_loads_in_r(study, tmp_path):
    listen_through(study, scripted_scores(study))
    with StudyEngine.open(study) as engine:
        ratings_csv, summary_csv = export_study(engine.store, load_study(study), tmp_path)
    code = (f'r <- read.csv("{ratings_csv}"); s <- read.csv("{summary_csv}"); '
            'stopifnot(is.integer(r$value), is.logical(r$is_reference), is.numeric(s$mean), '
            'is.na(s$nominal_kbps[1])); cat("ok")')
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


def test_report_numbers_text_and_plot(study, tmp_path):
    listen_through(study, scripted_scores(study))
    d = load_study(study)
    with StudyEngine.open(study) as engine:
        report = build_report(engine.store, d, bootstrap=200, min_reference_trials=3)
    assert report.screening.dropped == ["BAD"]
    s = report.summary.set_index("condition")
    assert s.loc["reference", "mean"] == pytest.approx(5.0)
    assert s.loc["pghi-only", "n"] == 3 * len(d.clips)
    text = report.text()
    assert "DMOS" in text and "dropped: BAD" in text and "pghi-only" in text
    assert "paired comparisons" in text
    files = write_report(report, tmp_path / "report")
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for kind in ("summary", "comparisons", "listeners", "correlations", "mixed", "clips", "agreement", "icc"):
        table = pd.read_csv(files[kind])
        assert files[kind].name.startswith("dcr-report-")
        # every screening-dependent file records the screening (correlations.csv too, since issue 24)
        assert table["screening"].str.contains("min_reference_trials 3").all(), kind
    agreement = pd.read_csv(files["agreement"])
    assert not agreement["listener"].astype(str).str.startswith("ICC").any()  # the ICC has its own file
    icc = pd.read_csv(files["icc"])
    assert len(icc) == 1 and icc["icc_single"].iloc[0] == pytest.approx(report.agreement.icc_single)
    clips = pd.read_csv(files["clips"])
    assert "listener_sd" in clips.columns and "sd" not in clips.columns  # one meaning per column name
    assert "DCR, DMOS)" in text and "(MUSHRA, MUSHRA)" not in text and "Warning" not in text
    assert files["text"].read_text().startswith("Test study")
    assert "t (listeners)" in text and "mixed model" in text and "ICC(2,1)" in text


def test_report_and_export_never_overwrite_each_other(study, tmp_path):
    listen_through(study, scripted_scores(study))
    d = load_study(study)
    out = tmp_path / "results"
    with StudyEngine.open(study) as engine:
        export_study(engine.store, d, out, screening=False, bootstrap=0)
        exported = {p.name: p.read_bytes() for p in out.iterdir()}
        write_report(build_report(engine.store, d, bootstrap=0), out)
    assert len(exported) == 3
    for name, data in exported.items():
        assert (out / name).read_bytes() == data, name
    assert "rule off" in pd.read_csv(out / "dcr-export-summary.csv")["screening"].iloc[0]
    assert "rule reference" in pd.read_csv(out / "dcr-report-summary.csv")["screening"].iloc[0]


def test_too_few_reference_trials_flag_instead_of_drop(study):
    listen_through(study, scripted_scores(study))
    with StudyEngine.open(study) as engine:
        report = build_report(engine.store, load_study(study), bootstrap=0)
    assert report.screening.dropped == [] and "BAD" in report.screening.flagged
    assert "fewer than the 7 needed to judge" in report.text()


def test_screening_everyone_out_is_an_error(study, tmp_path, capsys):
    listen_through(study, {"B1": lambda t: 1, "B2": lambda t: 2})
    out = tmp_path / "results"
    argv = ["study", "report", str(study), "--out", str(out), "--min-reference-trials", "1", "--bootstrap", "0"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "Post-screening dropped all 2 listeners" in err and "--no-screening" in err and err.count("\n") == 1
    assert cli(["study", "export", str(study), "--out", str(out), "--min-reference-trials", "1"]) == 2
    assert not out.exists() or not list(out.iterdir())  # nothing written
    assert cli(argv[:5] + ["--no-screening", "--bootstrap", "0"]) == 0


def test_report_of_a_study_without_ratings(study, tmp_path):
    with StudyEngine.open(study) as engine:
        report = build_report(engine.store, load_study(study), bootstrap=0)
    assert (report.summary["n"] == 0).all()
    write_report(report, tmp_path)
    assert "ratings: 0" in report.text()


# -- the command line ------------------------------------------------------------------------


def test_cli_prepare_status_export_report(study, tmp_path, capsys):
    assert cli(["study", "prepare", str(study), "--progress", "off"]) == 0
    out = capsys.readouterr().out
    assert "0 rendered" in out and "from the cache" in out
    assert cli(["study", "status", str(study)]) == 0
    assert "no listener has started yet" in capsys.readouterr().out
    listen_through(study, scripted_scores(study))
    assert cli(["study", "status", str(study)]) == 0
    out = capsys.readouterr().out
    assert "4 listener(s), 4 finished" in out and "BAD" in out
    assert cli(["study", "status", str(study), "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["finished"] == 4
    assert cli(["study", "export", str(study), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "dcr-ratings.csv").is_file()
    capsys.readouterr()
    assert cli(["study", "report", str(study), "--out", str(tmp_path / "r"), "--bootstrap", "100",
                "--min-reference-trials", "3"]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "dropped: BAD" in out
    assert (tmp_path / "r" / "dcr-report-mos-vs-kbps.png").is_file()


@pytest.mark.parametrize("argv, expected", [
    (["study", "status", "nowhere.toml"], "does not exist"),
    (["study", "report", "{study}", "--max-fraction", "2"], "--max-fraction"),
    (["study", "status", "{study}", "--db", "sqlite:///{tmp}/none.sqlite"], "does not exist"),
])
def test_cli_errors_are_one_line(study, tmp_path, capsys, argv, expected):
    argv = [a.format(study=study, tmp=tmp_path) for a in argv]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mosapp: error: ") and expected in err and "\n" not in err


def test_cli_is_hooked_into_mosapp():
    from mosapp.cli.main import build_parser

    choices = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert "study" in choices
    from mosapp.cli.main import main

    assert main(["study", "status", "nowhere.toml"]) == 2


def test_a_dcr_study_with_ten_listeners_reports_a_two_point_dmos_difference(study):
    """End to end: 10 listeners rate every trial with noise and ties (whole grades); pghi-only sits 2 DMOS above
    lowpass-3.5k. The old normal-approximation Wilcoxon could not go below Holm p 0.0995 here; the paired t does."""
    import numpy as np

    condition = condition_lookup(study)
    rng = np.random.default_rng(77)
    true = {"reference": 4.8, "pghi-only": 4.0, "lowpass-3.5k": 2.0}

    def listener(bias):
        return lambda t: int(np.clip(round(true.get(condition(t), 3.0) + bias + rng.normal(0, 0.6)), 1, 5))

    listen_through(study, {f"D{i}": listener(rng.normal(0, 0.3)) for i in range(10)})
    with StudyEngine.open(study) as engine:
        report = build_report(engine.store, load_study(study), bootstrap=0, screening=False)
    rows = report.comparisons.set_index(["a", "b"])
    pair = rows.loc[("pghi-only", "lowpass-3.5k")] if ("pghi-only", "lowpass-3.5k") in rows.index else \
        rows.loc[("lowpass-3.5k", "pghi-only")]
    assert pair["n_pairs"] == 10 and abs(pair["mean_diff"]) > 1.5
    assert pair["significant_t"] and pair["p_t_holm"] < 0.001
    assert "(significant)" in next(x for x in report.text().splitlines() if "pghi-only vs lowpass-3.5k" in x
                                   or "lowpass-3.5k vs pghi-only" in x)
