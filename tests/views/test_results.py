"""The Results view's rows without Qt: the per-condition table's text, its clipped-interval marks
and each condition's colour (its plotted line's), the number formats, the per-clip and
comparison rows."""

from __future__ import annotations

import math

import pandas as pd

from mosapp.views.results import (
    NA,
    PALETTE,
    clip_rows,
    comparison_rows,
    family_colors,
    interval,
    num,
    summary_rows,
)


def _summary() -> pd.DataFrame:
    nan = math.nan
    rows = [
        # condition, is_reference, kbps, mean, ci, clipped
        ("reference", True, nan, 4.9, (4.6, 5.0), "ci"),
        ("opus-12", False, 12.1, 3.4, (3.0, 3.8), ""),
        ("opus-24", False, 23.9, 4.1, (3.7, 4.5), ""),
        ("sgc-12", False, 11.8, 3.6, (3.1, 4.1), None),
        ("lowpass-3.5k", False, nan, 1.6, (1.0, 2.2), "ci;boot"),
    ]
    return pd.DataFrame([{
        "condition": c, "is_reference": ref, "bitrate_kbps": kbps, "n": 9, "n_listeners": 3, "mean": mean,
        "ci_low": lo, "ci_high": hi, "boot_low": lo, "boot_high": hi, "boot_t_low": nan, "boot_t_high": nan,
        "mixed_estimate": mean if c != "reference" else nan, "mixed_t_low": lo, "mixed_t_high": hi,
        "rating_ci_low": lo, "rating_ci_high": hi, "sd": 0.5, "clipped": clipped,
    } for c, ref, kbps, mean, (lo, hi), clipped in rows])


def test_each_codec_family_has_one_colour_and_each_condition_without_a_bitrate_its_own():
    colors = family_colors(_summary())
    assert colors == {"opus": PALETTE[0], "sgc": PALETTE[1], "reference": PALETTE[2], "lowpass-3.5k": PALETTE[3]}


def test_the_per_condition_rows_mark_clipped_intervals_and_take_their_lines_colour():
    rows, colors = summary_rows(_summary())
    reference, opus12, opus24, sgc, lowpass = rows
    assert reference[0] == "reference  (hidden reference)" and reference[1] == NA and reference[4] == "4.90"
    assert reference[5] == "[4.60, 5.00]*" and reference[6] == "[4.60, 5.00]" and reference[8] == NA
    assert lowpass[5].endswith("*") and lowpass[6].endswith("*") and lowpass[7] == NA  # no interval: no mark
    assert opus12[1] == "12.1" and opus12[8] == "3.40 [3.00, 3.80]" and not opus12[5].endswith("*")
    assert colors == [PALETTE[2], PALETTE[0], PALETTE[0], PALETTE[1], PALETTE[3]]
    assert len(sgc) == 11


def test_numbers_and_intervals_say_when_they_are_missing():
    assert num(None) == NA and num(math.nan) == NA and num(3.14159) == "3.14" and num(3.0, "{:.0f}") == "3"
    assert interval(1.0, None) == NA and interval(1.234, 2.0) == "[1.23, 2.00]"


def test_clip_and_comparison_rows():
    clips = pd.DataFrame([{"clip": "song", "condition": "opus-12", "n": 3, "n_listeners": 3, "mean": 3.5,
                           "ci_low": 2.9, "ci_high": 4.1, "listener_sd": 0.4}])
    assert clip_rows(clips) == [["song", "opus-12", "3", "3", "3.50", "[2.90, 4.10]", "0.40"]]
    assert clip_rows(None) == []
    comparisons = pd.DataFrame([{"a": "opus-12", "b": "sgc-12", "mean_diff": -0.2, "diff_ci_low": -0.5,
                                 "diff_ci_high": 0.1, "dz": -0.4, "n_pairs": 3, "p_t": 0.2, "p_t_holm": 0.4,
                                 "significant_t": False, "p_perm_holm": 0.5, "p_wilcoxon_holm": math.nan,
                                 "listeners_needed": 40.0, "note": ""}])
    assert comparison_rows(comparisons) == [["opus-12", "sgc-12", "-0.20 [-0.50, +0.10]", "-0.40", "3", "0.4", "no",
                                             "0.5", NA, "40", ""]]
