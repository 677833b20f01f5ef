"""Fitting the decoder's level maps (:mod:`mosapp.codecs.levelmap`) of trained two-band weights.

``mosapp train --config C --calibrate IN.pt --to OUT.pt``: every operating point of the config
codes excerpts of the config's *training* files (never its held-out files) with ``IN.pt``; each
is decoded with the phase rebuilt, as a listener gets it, and analysed as the band metrics analyse
audio (:func:`mosapp.core.metrics.band_db`: 4096-sample Hann window, hop 1024, floored at the
reference's peak minus 80 dB). Each cell of that analysis gets the level the decoded band image
has there (its power averaged over the image cells in the middle half of the analysis window,
in dB below the band's peak), and for each band, each group of rows and each level (0, -10, ...,
-70 dB) the offset in [0, 9] dB (0.1 dB apart: the maps only raise levels, see :data:`GRID_DB`) that minimises the mean absolute dB difference
to the reference is chosen; a (group, level) with few cells takes its group's offset over all
levels. The low image is fitted on the low band's bins (20 Hz-1 kHz), the high image on
1.38 kHz-Nyquist (above the crossover). One table per operating point, placed at the median
latent step its streams used; the decoder interpolates in log(step). ``passes`` > 1 decodes again
with the maps so far and adds what still lowers the distance on the excerpts (an offset added to
the image does not come out of the phase reconstruction unchanged); on the shipped weights a
second pass lowered the training excerpts' distances but not the held-out ones, and raised the
held-out mel distance by 0.01, so one pass is the default.

``OUT.pt`` is ``IN.pt`` with ``"level_maps"`` and ``"calibration"`` (what was fitted on, and the
figures before and after on those excerpts) added: new weights, with their own identifier, so
streams coded with ``IN.pt`` decode as before wherever ``IN.pt`` is kept.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mosapp.codecs.levelmap import MAX_OFFSET_DB, LevelMap
from mosapp.codecs.sgc import SgcTwoBandCodec
from mosapp.core import bands, metrics
from mosapp.core.audio import read_excerpt, resample
from mosapp.core.config import PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.core.errors import AudioError, ConfigError, ModelError
from mosapp.models.card import ModelCard
from mosapp.models.weights import load_weights
from mosapp.training.card import write_bytes, write_card
from mosapp.training.config import TrainConfig, parse_operating_point, training_files

#: Excerpts fitted on (one per training file, files spread over the sorted list), their length and start.
EXCERPTS = 24
EXCERPT_SECONDS = 6.0
EXCERPT_START_S = 20.0
#: Levels (dB below the band image's peak) the offsets are fitted at: 0, -10, ..., -70.
LEVEL_STEP_DB = 10.0
LEVELS = 8
#: Offsets tried (dB) in a pass: the maps only raise levels. The band distance alone would also
#: lower quiet cells, by up to 6 dB at 60-70 dB below the peak above 8 kHz, and on the shipped weights
#: that cost ViSQOL 0.04 and mel distance 0.02-0.05 on training music (0.11 and 0.03 on hyperrogue's)
#: for 0.001-0.005 dB of band distance; raising only left ViSQOL level or better and mel lower.
GRID_DB = np.round(np.arange(0.0, 9.0001, 0.1), 1)
#: Fitting passes (each after the first measures the decoder with the maps so far).
PASSES = 1
#: A (row group, level) with fewer analysis cells than this takes its group's offset over all levels.
MIN_CELLS = 2000
#: Analysis bins each image's offsets are fitted on, and how many bins make one group.
LOW_BINS = (2, 93)  # the low band metric's bins (20 Hz-1 kHz); low image row r is bin r (10.77 Hz each)
HIGH_BINS = (128, 2049)  # above the crossover; high image row r is bins 8r-4..8r+3 (86.13 Hz each)
LOW_GROUP_BINS = 8
HIGH_GROUP_BINS = 32
#: A cell whose decoded level is below this (dB under the peak) is silent: the map does not move it.
SILENT_DB = -99.0


@dataclass
class _Cells:
    """One band's analysis cells, pooled over excerpts: offsets from the floor, and the decoded level."""

    est: list[np.ndarray]  # dB above the excerpt's floor (may be negative)
    ref: list[np.ndarray]  # the reference, floored, dB above the floor (>= 0)
    level: list[np.ndarray]  # decoded image level, dB below the band's peak
    group: list[np.ndarray]


def calibration_excerpts(cfg: TrainConfig, count: int = EXCERPTS, seconds: float = EXCERPT_SECONDS
                         ) -> list[tuple[str, np.ndarray]]:
    """``count`` training excerpts (path, float32 ``(1, n)`` at the pipeline rate), one per file, the files
    spread evenly over the sorted training list; a file too short for the usual start is read from 0 s,
    and one too short for an excerpt (or unreadable) is passed over."""
    files = sorted(training_files(cfg)[0])
    stride = max(1, len(files) // count)
    out: list[tuple[str, np.ndarray]] = []
    for path in files[stride // 2::stride]:
        for start in (EXCERPT_START_S, 0.0):
            try:
                audio = read_excerpt(path, start, seconds, mono=True)
            except AudioError:
                break
            if audio.samples.shape[1] >= int(seconds * audio.sample_rate) - 1:
                x = audio.samples if audio.sample_rate == PIPELINE_SAMPLE_RATE else resample(
                    audio.samples, audio.sample_rate, PIPELINE_SAMPLE_RATE)
                out.append((path, np.ascontiguousarray(x, dtype=np.float32)))
                break
        if len(out) == count:
            break
    if not out:
        raise ConfigError(f"No training file of {cfg.source} holds a {seconds:g} s excerpt to calibrate on.")
    return out


def _pooled(power: np.ndarray, first: np.ndarray, width: int) -> np.ndarray:
    """Mean of ``power`` (rows, frames) over frames ``[first[t], first[t] + width)`` per t: (len(first), rows)."""
    frames = power.shape[1]
    idx = np.clip(first[:, None] + np.arange(width)[None, :], 0, frames - 1)
    return power[:, idx].mean(axis=2).T


def analysis_levels(image: np.ndarray, dynamic_range_db: float, band: str, n_frames: int) -> np.ndarray:
    """The decoded band image's level (dB below its peak) at each cell of the band metrics' analysis
    ``(n_frames, 2049)``: the image's power averaged over the cells of its row(s) whose centres fall in
    the middle half of that analysis frame (the high image's frame ``j`` is centred on sample
    ``64 j - 512``, the low image's on ``512 j - 4464`` at 44.1 kHz); bins outside the image are silent."""
    geometry = get_geometry("thesis")
    offset = geometry.window_length // 2
    db = (image.astype(np.float64) - 1.0) * dynamic_range_db
    power = np.where(image > 0, 10.0 ** (db / 10.0), 0.0)
    t = np.arange(n_frames)
    middle = (t * metrics.BAND_HOP + metrics.BAND_WINDOW_LENGTH // 4, t * metrics.BAND_HOP + 3 * metrics.BAND_WINDOW_LENGTH // 4)
    if band == "high":
        hop = geometry.hop
        first = -(-(middle[0] + offset) // hop)
        pooled = _pooled(power, first, metrics.BAND_WINDOW_LENGTH // 2 // hop)  # (frames, 257)
        rows = np.clip(np.rint(np.arange(2049) / 8.0).astype(int), 0, image.shape[0] - 1)
        level = pooled[:, rows]
    else:
        hop = geometry.hop * bands.DECIMATION
        shift = offset * bands.DECIMATION + bands.MARGIN
        first = -(-(middle[0] + shift) // hop)
        pooled = _pooled(power, first, metrics.BAND_WINDOW_LENGTH // 2 // hop)  # (frames, 128)
        level = np.zeros((n_frames, 2049))
        level[:, : image.shape[0]] = pooled
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(level), -200.0)


def _fit_table(cells: _Cells, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (groups, LEVELS), cells per (group, level)) minimising the mean |dB difference|."""
    est, ref, level, group = (np.concatenate(v) for v in (cells.est, cells.ref, cells.level, cells.group))
    keep = level > SILENT_DB
    est, ref, level, group = est[keep], ref[keep], level[keep], group[keep]
    bucket = np.clip(np.rint(-level / LEVEL_STEP_DB), 0, LEVELS - 1).astype(int)
    table = np.zeros((groups, LEVELS))
    counts = np.zeros((groups, LEVELS), dtype=int)

    def best(sel: np.ndarray) -> float:
        e, r = est[sel], ref[sel]
        costs = [float(np.abs(np.maximum(e + o, 0.0) - r).sum()) for o in GRID_DB]
        return float(GRID_DB[int(np.argmin(costs))])

    for g in range(groups):
        in_group = group == g
        if not in_group.any():
            continue
        overall = best(in_group)
        for k in range(LEVELS):
            sel = in_group & (bucket == k)
            counts[g, k] = int(sel.sum())
            table[g, k] = best(sel) if counts[g, k] >= MIN_CELLS else overall
    return table, counts


def _band_cells(band: str) -> tuple[tuple[int, int], int]:
    return (LOW_BINS, LOW_GROUP_BINS) if band == "low" else (HIGH_BINS, HIGH_GROUP_BINS)


def _group_rows(band: str) -> list[float]:
    """Each group's centre as an image row."""
    (first, stop), width = _band_cells(band)
    centres = [(a + min(a + width, stop) - 1) / 2.0 for a in range(first, stop, width)]
    return centres if band == "low" else [c / 8.0 for c in centres]


def _figures(est: np.ndarray, ref: np.ndarray, sl: slice) -> float:
    return float(np.abs(np.maximum(est[:, sl], 0.0) - ref[:, sl]).mean())


def _measure(codec: SgcTwoBandCodec, excerpts: list[tuple[str, np.ndarray]], say: Callable[[str], None]
             ) -> tuple[dict[str, _Cells], dict[str, list[float]], dict[str, float]]:
    """Code and decode every excerpt with ``codec``: each band's analysis cells, the streams' latent steps
    per band, and each band's mean distance (dB) on the excerpts."""
    config = PipelineConfig(device="cpu")
    cells = {b: _Cells([], [], [], []) for b in ("low", "high")}
    steps: dict[str, list[float]] = {"low": [], "high": []}
    distance: dict[str, list[float]] = {"low": [], "high": []}
    for i, (_path, x) in enumerate(excerpts):
        encoded = codec.encode(x, config)
        decoded = codec.decode(encoded, config)
        ref = metrics.band_db(x, PIPELINE_SAMPLE_RATE).astype(np.float64)
        est = metrics.band_db(decoded, PIPELINE_SAMPLE_RATE).astype(np.float64)
        floor = 10.0 * math.log10(max(float(np.max(10.0 ** (ref / 10.0))), 1e-30)) - metrics.BAND_FLOOR_DB
        ref_f, est_f = np.maximum(ref, floor) - floor, est - floor
        images = next(codec.decode_band_images(encoded, torch.device("cpu")))[1]
        for k, (band, image, scale) in enumerate((("low", images.low, images.low_scale),
                                                  ("high", images.high, images.high_scale))):
            steps[band].append(float(encoded.params["step"][k]))
            level = analysis_levels(image.numpy(), scale.dynamic_range_db, band, ref.shape[0])
            (first, stop), width = _band_cells(band)
            sl = slice(first, stop)
            c = cells[band]
            c.est.append(est_f[:, sl].ravel())
            c.ref.append(ref_f[:, sl].ravel())
            c.level.append(level[:, sl].ravel())
            c.group.append(np.broadcast_to((np.arange(first, stop) - first) // width, (ref.shape[0], stop - first)).ravel())
            distance[band].append(_figures(est_f, ref_f, sl))
        say(f"calibrate: {codec.name} {i + 1}/{len(excerpts)} ({encoded.payload_kbps:.1f} kbit/s)")
    return cells, steps, {b: float(np.mean(v)) for b, v in distance.items()}


def _maps(tables: dict[str, list[tuple[float, np.ndarray]]]) -> dict[str, LevelMap]:
    """One map per band from (step, table) pairs; tables fitted at the same step are averaged."""
    maps: dict[str, LevelMap] = {}
    for band, fitted in tables.items():
        merged: dict[float, list[np.ndarray]] = {}
        for step, table in fitted:
            merged.setdefault(round(step, 5), []).append(table)
        ordered = sorted(merged)
        offsets = np.clip(np.stack([np.mean(merged[s], axis=0) for s in ordered]), -MAX_OFFSET_DB, MAX_OFFSET_DB)
        maps[band] = LevelMap(tuple(_group_rows(band)), LEVEL_STEP_DB, tuple(ordered), offsets)
    return maps


def fit_level_maps(cfg: TrainConfig, weights: Path, scratch: Path, *, say: Callable[[str], None] = print,
                   count: int = EXCERPTS, seconds: float = EXCERPT_SECONDS, passes: int = PASSES
                   ) -> tuple[dict[str, LevelMap], dict[str, Any]]:
    """The level maps of ``weights`` for the config's operating points, and what they were fitted on
    (excerpts, steps, each band's distance on those excerpts before each pass).

    Each pass after the first decodes with the maps so far (weights written to ``scratch`` with a pass
    number, removed afterwards) and adds the offsets that still lower the distance: the first pass
    assumes an offset comes out unchanged in the analysis, which the phase reconstruction bends."""
    excerpts = calibration_excerpts(cfg, count, seconds)
    say(f"calibrate: {len(excerpts)} training excerpts of {seconds:g} s")
    report: dict[str, Any] = {"excerpts": [f"{Path(p).name} ({seconds:g} s)" for p, _ in excerpts],
                              "passes": passes, "operating_points": {}}
    names = [parse_operating_point(op, cfg.source)[0] for op in cfg.operating_points]
    totals: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
    anchors: dict[str, dict[str, float]] = {name: {} for name in names}
    current = weights
    maps: dict[str, LevelMap] = {}
    try:
        for n in range(passes):
            if n:
                current = scratch.with_name(f"{scratch.stem}.pass{n + 1}.pt")
                write_calibrated(weights, current, maps, {})
            for name in names:
                codec = SgcTwoBandCodec(name)
                codec.card = replace(codec.card, weights=str(current.resolve()))
                if not codec.card.is_two_band:
                    raise ModelError(f"{name}'s model card is not a two-band codec's; level maps are for two-band weights.")
                cells, steps, distance = _measure(codec, excerpts, say)
                point = report["operating_points"].setdefault(name, {})
                for band in ("low", "high"):
                    table, counts = _fit_table(cells[band], len(_group_rows(band)))
                    totals[name][band] = totals[name].get(band, 0.0) + table
                    anchors[name].setdefault(band, float(np.median(steps[band])))
                    entry = point.setdefault(band, {"step": round(anchors[name][band], 5), "cells": int(counts.sum()),
                                                    "distance_db_by_pass": []})
                    entry["distance_db_by_pass"].append(round(distance[band], 4))
                say(f"calibrate: pass {n + 1}/{passes} {name}: low {distance['low']:.3f} dB, high {distance['high']:.3f} dB "
                    f"on the excerpts as decoded in this pass")
            maps = _maps({band: [(anchors[name][band], totals[name][band]) for name in names] for band in ("low", "high")})
    finally:
        if current != weights:
            current.unlink(missing_ok=True)
    return maps, report


def _uncalibrated(source: Path) -> dict[str, Any]:
    """``source``'s exported weights, refused where they are a checkpoint or already have level maps."""
    state = load_weights(source)
    if state.get("arch") is None:
        raise ModelError(f"{source} is a training checkpoint; export it first (mosapp train --export).")
    if state.get("level_maps"):
        raise ModelError(f"{source} already has level maps; calibrate the weights they were fitted for.")
    return state


def write_calibrated(source: Path, target: Path, maps: dict[str, LevelMap], report: dict[str, Any], *,
                     state: dict[str, Any] | None = None) -> None:
    """``source``'s weights (``state``, where the caller has read them already) with the level maps and
    the fitting report added, written to ``target``."""
    out = dict(_uncalibrated(source) if state is None else state)
    out["level_maps"] = {band: m.as_dict() for band, m in maps.items()}
    out["calibration"] = {**report, "from": source.name}
    buf = io.BytesIO()
    torch.save(out, buf)
    write_bytes(target, buf.getvalue())


def calibrate(cfg: TrainConfig, source: Path, target: Path, *, say: Callable[[str], None] = print,
              count: int = EXCERPTS, seconds: float = EXCERPT_SECONDS, passes: int = PASSES) -> Path:
    """Fit ``source``'s level maps on the config's training excerpts, write ``target`` (the weights with
    them) and its model card ``target.with_suffix('.json')`` (``source``'s card, renamed, with a
    ``calibration`` entry), and return ``target``.

    Raises:
        ModelError: ``source`` is not exported two-band weights without level maps, or has no card.
        ConfigError: no training excerpt can be read.
    """
    source_card = source.with_suffix(".json")
    if not source_card.is_file():
        raise ModelError(f"The weights {source} have no model card {source_card.name} next to them.")
    if source.resolve() == target.resolve():
        raise ModelError(f"Calibrated weights need a new file, not {source} itself (streams are bound to its digest).")
    card = ModelCard.read(source_card)
    state = _uncalibrated(source)  # refused before the fit, not after it
    maps, report = fit_level_maps(cfg, source, target, say=say, count=count, seconds=seconds, passes=passes)
    write_calibrated(source, target, maps, report, state=state)
    extra = {**card.extra, "calibration": {
        "from": source.name,
        "what": "decoder level maps (mosapp.codecs.levelmap), fitted by mosapp.training.calibration",
        "command": f"mosapp train --config {cfg.source} --calibrate {source} --to {target}",
        "fitted_on": f"{len(report['excerpts'])} excerpts of {seconds:g} s of training files (never held out)",
        "operating_points": report["operating_points"]}}
    new_card = replace(card, name=target.stem, weights=target.name, extra=extra)
    write_card(target.with_suffix(".json"), new_card)
    say(f"calibrate: wrote {target} and {target.with_suffix('.json').name}")
    return target
