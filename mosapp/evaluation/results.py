"""An evaluation's output folder: the pairs measured so far (SQLite), and the tables and plots made from them.

``DIR/pairs.sqlite`` holds one row per (excerpt, codec), committed the moment the pair is
measured, so a killed run loses at most the pairs in flight and the same command resumes it. A
row remembers the codec's fingerprint (its card's and weights' SHA-256) and the run's settings
(pipeline, metrics): a row made with other weights or settings is stale and measured again.

From the rows of the current command the run writes (each file atomically, 0644):

* ``clips.csv``: tidy, one row per (excerpt, codec): ``clip, start_s, seconds, codec,
  file_kbps, payload_kbps`` and each metric under its registry name
  (:data:`mosapp.core.metrics.METRICS`); empty where a metric is not finite;
* ``timings.csv``: the same keys with the seconds spent encoding, decoding and measuring, and
  the worker (kept apart, so ``clips.csv`` is the same whoever measured it and when);
* ``failures.csv``: ``clip, start_s, seconds, codec, reason`` for every pair that failed;
* ``summary.csv``: tidy, one row per (codec, metric): ``n``, ``mean``, ``sd``, and the 95 %
  t interval of the mean over excerpts (``ci95_low``, ``ci95_high``);
* ``summary.md``: the same as a Markdown table (the README's codec table), the failures below;
* ``rd-<metric>.png`` / ``.svg``: each metric against the measured kbps, one line per codec
  family, error bars the 95 % intervals; codecs without a bitrate of their own (the
  ``pghi-only`` upper bounds, anchors) as horizontal reference lines;
* ``run.json``: the command line, versions, every codec's fingerprint, the machine.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import sqlite3
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mosapp.core.errors import MosappError
from mosapp.core.files import atomic_write
from mosapp.core.metrics import METRICS
from mosapp.evaluation.clips import Excerpt

#: The columns before the metrics in ``clips.csv``.
KEY_COLUMNS = ("clip", "start_s", "seconds", "codec")
BITRATE_COLUMNS = ("file_kbps", "payload_kbps")
TIMING_COLUMNS = ("encode_s", "decode_s", "metrics_s", "total_s", "worker")
#: How the README and summary.md head each metric (arrow: which way is better).
HEADERS = {"file_kbps": "kbps", "payload_kbps": "payload kbps", "mel_distance": "mel dist. ↓",
           "spectral_convergence_db": "SC dB ↓", "si_sdr_db": "SI-SDR dB ↑", "visqol": "ViSQOL ↑",
           "decoded_consistency": "consistency ↑", "low_band_distance_db": "low-band dist. dB ↓",
           "low_band_correlation": "low-band corr. ↑", "high_band_distance_db": "high-band dist. dB ↓",
           "high_band_correlation": "high-band corr. ↑", "fad": "FAD ↓", "fad_inf": "FAD∞ ↓"}
#: Decimals shown per metric in summary.md.
DIGITS = {"file_kbps": 1, "payload_kbps": 1, "mel_distance": 3, "spectral_convergence_db": 2, "si_sdr_db": 1,
          "visqol": 2, "decoded_consistency": 3, "low_band_distance_db": 2, "low_band_correlation": 3,
          "high_band_distance_db": 2, "high_band_correlation": 3, "fad": 3, "fad_inf": 3}


class OutputError(MosappError):
    """The output folder cannot be written (full, read-only, not a folder)."""


def _disk_sentence(where: Path, exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc)
    if "full" in text.lower() or "space" in text.lower():
        return (f"The output folder {where} is full ({text}); what was measured is saved, so free some space and "
                f"run the same command again to go on.")
    return f"The output folder {where} cannot be written ({text}); what was measured is saved."


def _why(exc: BaseException) -> str:
    """The reason inside ``X cannot be written (…)``; a full disk says so and how to go on."""
    text = str(getattr(exc, "strerror", None) or exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "full" in text.lower():
        return f"{text}: the disk is full; what was measured is saved, so free some space and run the same command again"
    return text


@dataclass
class PairRow:
    """One measured (or failed) pair."""

    excerpt: Excerpt
    codec: str
    values: dict[str, float] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: CLAP embeddings for FAD: "reference" and "decoded", each a list of windows' vectors.
    embeddings: dict[str, list] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


class PairStore:
    """``pairs.sqlite`` of an output folder: one writer (the run's own process), a commit per pair."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "pairs.sqlite"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS pairs (clip TEXT NOT NULL, start_s REAL NOT NULL, seconds REAL NOT NULL, "
                "codec TEXT NOT NULL, fingerprint TEXT NOT NULL, settings TEXT NOT NULL, ok INTEGER NOT NULL, "
                "values_json TEXT NOT NULL, timings_json TEXT NOT NULL, notes_json TEXT NOT NULL, error TEXT, "
                "finished_at REAL NOT NULL, embeddings_json TEXT NOT NULL DEFAULT '{}', "
                "PRIMARY KEY (clip, start_s, seconds, codec))")
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise OutputError(f"{self.path} is not an evaluation's database ({exc}); give another --out "
                                  f"folder.") from None
            raise OutputError(_disk_sentence(folder, exc)) from None
        except OSError as exc:
            raise OutputError(_disk_sentence(folder, exc)) from None

    def close(self) -> None:
        self.db.close()

    def done(self, fingerprints: dict[str, str], settings: str) -> set[tuple[str, float, float, str]]:
        """Keys of the pairs measured with these codecs' fingerprints and these settings."""
        out = set()
        for clip, start, seconds, codec, fp, st in self.db.execute(
                "SELECT clip, start_s, seconds, codec, fingerprint, settings FROM pairs WHERE ok = 1"):
            if fingerprints.get(codec) == fp and st == settings:
                out.add((clip, start, seconds, codec))
        return out

    def save(self, row: PairRow, fingerprint: str, settings: str) -> None:
        """Commit one pair (replacing a stale or failed row of the same key)."""
        e = row.excerpt
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (e.clip, e.start_s, e.seconds, row.codec, fingerprint, settings, int(row.ok),
                 json.dumps(row.values), json.dumps(row.timings), json.dumps(row.notes), row.error, time.time(),
                 json.dumps(row.embeddings)))
        except sqlite3.OperationalError as exc:
            raise OutputError(_disk_sentence(self.folder, exc)) from None

    def rows(self, excerpts: Sequence[Excerpt], codecs: Sequence[str], fingerprints: dict[str, str],
             settings: str) -> list[PairRow]:
        """The current rows of these excerpts × codecs, in excerpt order then codec order."""
        found: dict[tuple[str, float, float, str], PairRow] = {}
        by_key = {e.key: e for e in excerpts}
        for (clip, start, seconds, codec, fp, st, ok, values, timings, notes, error, emb) in self.db.execute(
                "SELECT clip, start_s, seconds, codec, fingerprint, settings, ok, values_json, timings_json, "
                "notes_json, error, embeddings_json FROM pairs"):
            e = by_key.get((clip, start, seconds))
            if e is None or codec not in fingerprints or (ok and (fingerprints[codec] != fp or st != settings)):
                continue
            found[(clip, start, seconds, codec)] = PairRow(e, codec, json.loads(values), json.loads(timings),
                                                           json.loads(notes), error, json.loads(emb))
        return [found[(e.clip, e.start_s, e.seconds, c)] for e in excerpts for c in codecs
                if (e.clip, e.start_s, e.seconds, c) in found]


def write_float_wav(path: Path, samples: np.ndarray, rate: int, *, error: type[MosappError] = OutputError) -> None:
    """``(channels, n)`` samples as a 32-bit float WAV holding nothing but the audio, atomically.

    A float WAV from libsndfile carries a ``PEAK`` chunk (each channel's peak and the time of
    writing); this one has only ``fmt`` (IEEE float), ``fact`` and ``data``, so files of one length
    have the same header and size, and a full disk is an ``OSError`` of this process, not of a C
    callback.

    Raises:
        ``error``: the file cannot be written (the sentence names a full disk as such).
    """
    data = np.ascontiguousarray(np.asarray(samples, dtype="<f4").T)  # frames x channels, interleaved
    channels = int(data.shape[1]) if data.ndim == 2 else 1
    frames = int(data.shape[0])
    payload = data.tobytes()
    fmt = struct.pack("<HHIIHHH", 3, channels, rate, rate * channels * 4, channels * 4, 32, 0)
    header = (b"RIFF" + struct.pack("<I", 4 + (8 + len(fmt)) + 12 + 8 + len(payload)) + b"WAVE"
              + b"fmt " + struct.pack("<I", len(fmt)) + fmt
              + b"fact" + struct.pack("<II", 4, frames)
              + b"data" + struct.pack("<I", len(payload)))

    def write(fh: BinaryIO) -> None:
        fh.write(header)
        fh.write(payload)

    atomic_write(path, write, suffix=".wav", error=error, reason=_why)


# -- tables -------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), suffix=path.suffix, error=OutputError,
                 reason=_why)


def _csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return buf.getvalue()


def clips_table(rows: Sequence[PairRow], metric_names: Sequence[str]) -> str:
    """``clips.csv``'s text: the measured pairs."""
    header = [*KEY_COLUMNS, *BITRATE_COLUMNS, *metric_names]
    return _csv_text(header, ([r.excerpt.clip, r.excerpt.start_s, r.excerpt.seconds, r.codec,
                               *(r.values.get(k) for k in (*BITRATE_COLUMNS, *metric_names))]
                              for r in rows if r.ok))


@dataclass(frozen=True)
class Stat:
    """Mean of a metric over the excerpts one codec was measured on, with its 95 % t interval."""

    n: int
    mean: float
    sd: float
    low: float
    high: float


def mean_ci(values: Sequence[float]) -> Stat:
    """The mean of the finite ``values``, their sample SD and the mean's 95 % t interval (NaN for n < 2)."""
    from scipy import stats  # noqa: PLC0415 — scipy loads when a summary is made, not for every import

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return Stat(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Stat(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Stat(n, mean, sd, mean - half, mean + half)


def summarise(rows: Sequence[PairRow], codecs: Sequence[str], metric_names: Sequence[str]) -> dict[str, dict[str, Stat]]:
    """codec → metric (bitrates included) → :class:`Stat` over its measured excerpts."""
    out: dict[str, dict[str, Stat]] = {}
    for c in codecs:
        mine = [r for r in rows if r.codec == c and r.ok]
        out[c] = {m: mean_ci([r.values.get(m, math.nan) for r in mine]) for m in (*BITRATE_COLUMNS, *metric_names)}
    return out


def summary_csv(summary: dict[str, dict[str, Stat]], families: dict[str, str]) -> str:
    return _csv_text(("codec", "family", "metric", "n", "mean", "sd", "ci95_low", "ci95_high"),
                     ((c, families.get(c, ""), m, s.n, s.mean, s.sd, s.low, s.high)
                      for c, per in summary.items() for m, s in per.items()))


def _fmt(value: float, digits: int) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(summary: dict[str, dict[str, Stat]], metric_names: Sequence[str], *, ci: bool = True) -> str:
    """The Markdown table: a row per codec with ``n`` excerpts, kbps and each metric's mean (± the 95 % half-width)."""
    cols = ["file_kbps", *metric_names]
    lines = ["| codec | n | " + " | ".join(HEADERS.get(m, m) for m in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    for codec, per in summary.items():
        cells = []
        for m in cols:
            s = per[m]
            d = DIGITS.get(m, 3)
            text = _fmt(s.mean, d)
            if ci and m != "file_kbps" and s.n >= 2 and math.isfinite(s.high):
                text += f" ± {_fmt((s.high - s.low) / 2, d)}"
            cells.append(text)
        n = max((s.n for s in per.values()), default=0)
        lines.append(f"| `{codec}` | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def failures_csv(rows: Sequence[PairRow], problems: Sequence[tuple[str, str]]) -> str:
    body: list[Sequence[Any]] = [(clip, None, None, None, reason) for clip, reason in problems]
    body += [(r.excerpt.clip, r.excerpt.start_s, r.excerpt.seconds, r.codec, r.error) for r in rows if not r.ok]
    return _csv_text((*KEY_COLUMNS, "reason"), body)


def timings_csv(rows: Sequence[PairRow]) -> str:
    return _csv_text((*KEY_COLUMNS, *TIMING_COLUMNS),
                     ([r.excerpt.clip, r.excerpt.start_s, r.excerpt.seconds, r.codec,
                       *(r.timings.get(k) for k in TIMING_COLUMNS)] for r in rows if r.ok))


# -- reading a folder back -----------------------------------------------------------------------


@dataclass
class EvaluationFolder:
    """What an evaluation's output folder holds, read back (for the app's Evaluate view).

    Attributes:
        folder: the output folder.
        metrics: the metric columns of ``clips.csv``, in order.
        rows: ``clips.csv``'s rows, numbers as floats (NaN where empty).
        summary: codec → metric → :class:`Stat`, from ``summary.csv``.
        families: codec → family (``summary.csv``).
        no_bitrate: codecs without a bitrate of their own (drawn as reference lines).
        failures: ``failures.csv``'s rows.
        run: ``run.json``.
    """

    folder: Path
    metrics: list[str]
    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, Stat]]
    families: dict[str, str]
    no_bitrate: set[str]
    failures: list[dict[str, str]]
    run: dict[str, Any]


def _float(text: str) -> float:
    try:
        return float(text) if text != "" else math.nan
    except ValueError:
        return math.nan


#: Families whose codecs carry no bitrate of their own (drawn as reference lines, not on the kbps axis).
NO_BITRATE_FAMILIES = ("pghi-only", "lowpass")


def read_evaluation(folder: str | Path, no_bitrate_families: Sequence[str] = NO_BITRATE_FAMILIES) -> EvaluationFolder:
    """Read an output folder of ``mosapp evaluate`` back.

    Raises:
        OutputError: the folder is not one (no ``clips.csv``/``summary.csv``), or a file is unreadable.
    """
    folder = Path(folder)
    if not (folder / "clips.csv").is_file() or not (folder / "summary.csv").is_file():
        raise OutputError(f"{folder} is not the output folder of `mosapp evaluate` (it has no clips.csv and "
                          f"summary.csv); choose the folder given as --out.")
    try:
        with open(folder / "clips.csv", newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            raw = list(reader)
        with open(folder / "summary.csv", newline="", encoding="utf-8") as fh:
            srows = list(csv.DictReader(fh))
        failures: list[dict[str, str]] = []
        if (folder / "failures.csv").is_file():
            with open(folder / "failures.csv", newline="", encoding="utf-8") as fh:
                failures = list(csv.DictReader(fh))
        run = json.loads((folder / "run.json").read_text(encoding="utf-8")) if (folder / "run.json").is_file() else {}
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise OutputError(f"{folder} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
    if header[: len(KEY_COLUMNS)] != list(KEY_COLUMNS):
        raise OutputError(f"{folder / 'clips.csv'} does not start with the columns {', '.join(KEY_COLUMNS)}.")
    names = [h for h in header if h not in KEY_COLUMNS and h not in BITRATE_COLUMNS]
    rows = [{**{k: r[k] for k in ("clip", "codec")},
             **{k: _float(r.get(k, "")) for k in header if k not in ("clip", "codec")}} for r in raw]
    summary: dict[str, dict[str, Stat]] = {}
    families: dict[str, str] = {}
    for r in srows:
        summary.setdefault(r["codec"], {})[r["metric"]] = Stat(int(_float(r["n"]) or 0), _float(r["mean"]),
                                                               _float(r["sd"]), _float(r["ci95_low"]),
                                                               _float(r["ci95_high"]))
        families[r["codec"]] = r.get("family", "")
    no_bitrate = {c for c, f in families.items() if f in no_bitrate_families}
    names += [m for m in ("fad",) if any(m in per and math.isfinite(per[m].mean) for per in summary.values())]
    return EvaluationFolder(folder, names, rows, summary, families, no_bitrate, failures, run)


# -- plots ----------------------------------------------------------------------------------------


def rd_plot(path_stem: Path, metric: str, summary: dict[str, dict[str, Stat]], families: dict[str, str],
            has_bitrate: Callable[[str], bool]) -> list[Path]:
    """``<stem>.png`` and ``.svg``: ``metric`` against the measured kbps, a line per codec family."""
    import matplotlib  # noqa: PLC0415 — matplotlib loads only when plots are made

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # noqa: PLC0415 — as above

    info = METRICS.get(metric)
    label = f"{info.label} ({info.unit})" if info and info.unit else (info.label if info else metric)
    better = "" if info is None else (" ↑ better" if info.higher_is_better else " ↓ better")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    by_family: dict[str, list[str]] = {}
    for codec in summary:
        by_family.setdefault(families.get(codec, codec), []).append(codec)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drew = False
    ref_i = 0
    for i, (family, codecs) in enumerate(by_family.items()):
        colour = colours[i % len(colours)]
        points = [(summary[c]["file_kbps"], summary[c][metric], c) for c in codecs
                  if has_bitrate(c) and math.isfinite(summary[c]["file_kbps"].mean) and math.isfinite(summary[c][metric].mean)]
        points.sort(key=lambda p: p[0].mean)
        if points:
            xs = [p[0].mean for p in points]
            ys = [p[1].mean for p in points]
            yerr = [[p[1].mean - p[1].low if math.isfinite(p[1].low) else 0.0 for p in points],
                    [p[1].high - p[1].mean if math.isfinite(p[1].high) else 0.0 for p in points]]
            ax.errorbar(xs, ys, yerr=yerr, marker="o", capsize=3, color=colour, label=family)
            for x, y, (_, _, name) in zip(xs, ys, points):
                ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour)
            drew = True
        for c in codecs:
            s = summary[c][metric]
            if not has_bitrate(c) and math.isfinite(s.mean):
                ax.axhline(s.mean, linestyle="--", linewidth=1, color=colours[(len(by_family) + ref_i) % len(colours)],
                           label=f"{c} (no bitrate of its own)")
                ref_i += 1
                drew = True
    ax.set_xlabel("measured bitrate (kbit/s, whole .sgc file)")
    ax.set_ylabel(label + better)
    ax.set_title(f"{info.label if info else metric} against bitrate (mean, 95 % CI over excerpts)", fontsize=10)
    ax.grid(True, alpha=0.3)
    if drew:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    written = []
    for ext in ("png", "svg"):
        out = path_stem.with_suffix(f".{ext}")
        try:
            fig.savefig(out)
        except OSError as exc:
            plt.close(fig)
            raise OutputError(_disk_sentence(out.parent, exc)) from None
        written.append(out)
    plt.close(fig)
    return written


__all__ = ["HEADERS", "KEY_COLUMNS", "EvaluationFolder", "OutputError", "PairRow", "PairStore", "Stat", "clips_table",
           "failures_csv", "markdown_table", "mean_ci", "rd_plot", "read_evaluation", "summarise", "summary_csv", "timings_csv"]
