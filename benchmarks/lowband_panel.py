"""The low-frequency panel: what each codec does below 1 kHz, on held-out music, in one figure.

For a few held-out clips (by default the three ``asc-music`` tracks the sgc models never trained
on), one row pair per clip: the full band (Hann 2048, hop 512) and 0–1 kHz (Hann 8192, hop 1024:
5.4 Hz bins), one column per condition: the original, ``pghi-only``, each ``sgc-*`` model and
Opus at a similar rate. Every panel is drawn from the view's analysis STFT
(:mod:`mosapp.views.spectrogram_data`, the same images the Inspect view draws), on one dB scale per
clip (the original's peak down 80 dB), and titled with the excerpt's low-band distance and
correlation (:func:`mosapp.core.metrics.band_metrics`).

    .venv/bin/python benchmarks/lowband_panel.py                        # docs/lowband_panel.png
    .venv/bin/python benchmarks/lowband_panel.py --codecs pghi-only sgc-12 NEW-CODEC opus-12 --out docs/x.png
    # reuse what `mosapp evaluate benchmarks/heldout.csv ... --keep-audio --out out/codec-table` decoded
    # (same clips, start and length; pass --decoded out/codec-table/audio):
    .venv/bin/python benchmarks/lowband_panel.py --decoded out/codec-table/audio

Conditions are any registry names (``mosapp codecs``). Without ``--decoded`` (or for a codec not
found there) the excerpt is encoded and decoded here. Needs ``apt-get install asc-music``
(and hyperrogue-music, drascula-music for the other held-out files).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mosapp.core import metrics  # noqa: E402
from mosapp.core.config import PIPELINE_SAMPLE_RATE as RATE  # noqa: E402
from mosapp.core.config import PipelineConfig  # noqa: E402
from mosapp.evaluation.evaluate import excerpt  # noqa: E402
from mosapp.training.config import TrainConfig, expand  # noqa: E402
from mosapp.views.spectrogram_data import Analysis, analyse_pair  # noqa: E402 - Qt-free

#: The two analyses of the panel: the full band, and the band below 1 kHz.
FULL_BAND = Analysis.stft(2048, 512)
LOW_BAND = Analysis.stft(8192, 1024)
LOW_BAND_TOP_HZ = 1000.0
RANGE_DB = 80.0


def default_codecs() -> list[str]:
    """pghi-only, every sgc model the registry has, and Opus at the sgc default's rate."""
    from mosapp.codecs import codec_names

    names = codec_names()
    return ["pghi-only"] + [n for n in names if n.startswith("sgc-")] + ["opus-12"]


def default_clips(config: str) -> list[str]:
    """The held-out asc-music tracks of ``config`` (all held-out files if none is asc-music)."""
    heldout = expand(TrainConfig.load(config).heldout)
    asc = [f for f in heldout if "/asc/" in f or "asc-music" in f]
    return asc or heldout


def decode_with(name: str, samples: np.ndarray, config: PipelineConfig) -> np.ndarray:
    """Encode → .sgc bytes → decode (as the results table does), aligned to ``samples``."""
    from mosapp.codecs import container, get_codec
    from mosapp.core.audio import AudioInfo

    codec = get_codec(name)
    availability = codec.availability()
    if not availability.ok:
        raise SystemExit(f"{name} cannot run here: {availability.reason}")
    info = AudioInfo(path=None, sample_rate=RATE, channels=1, frames=samples.shape[1], subtype="FLOAT", format="WAV")
    data = container.pack(codec.encode(samples, config), info)
    encoded, _ = container.unpack(data)
    out = np.asarray(codec.decode(encoded, config), dtype=np.float32)
    return out[:, : samples.shape[1]]


def from_decoded(folder: Path | None, name: str, clip: str, offset: int, n: int) -> np.ndarray | None:
    """``n`` samples from ``offset`` of what codec_table.py saved for (codec, clip), or None."""
    if folder is None:
        return None
    path = folder / name / f"{Path(clip).stem}.wav"
    if not path.is_file():
        # `mosapp evaluate --keep-audio` names them <stem>-<hash>-<start>-<seconds>.wav.
        found = sorted((folder / name).glob(f"{Path(clip).stem}-*.wav"))
        if not found:
            return None
        path = found[0]
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if rate != RATE or data.shape[0] < offset + n:
        return None
    return np.ascontiguousarray(data[offset: offset + n].T)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--codecs", nargs="+", default=None, help="conditions after the original "
                    "(default: pghi-only, every sgc-* model, opus-12)")
    ap.add_argument("--clips", nargs="+", default=None, help="audio files (default: the held-out asc-music tracks)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "sgc3-base.toml"), help="where the held-out list is")
    ap.add_argument("--start", type=float, default=30.0, help="excerpt start, s (as benchmarks/codec_table.py)")
    ap.add_argument("--table-seconds", type=float, default=20.0,
                    help="length of codec_table.py's excerpts (what --decoded holds)")
    ap.add_argument("--offset", type=float, default=4.0, help="where the drawn stretch starts in the excerpt, s")
    ap.add_argument("--seconds", type=float, default=6.0, help="length drawn and measured, s")
    ap.add_argument("--decoded", default=None, help="codec_table.py --save-decoded folder to reuse")
    ap.add_argument("--out", default=str(ROOT / "docs" / "lowband_panel.png"))
    ap.add_argument("--dpi", type=int, default=80)
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codecs = args.codecs or default_codecs()
    clips = args.clips or default_clips(args.config)
    config = PipelineConfig(device="auto")
    folder = Path(args.decoded) if args.decoded else None
    offset, n = int(args.offset * RATE), int(args.seconds * RATE)
    columns = ["original", *codecs]
    fig, axes = plt.subplots(2 * len(clips), len(columns), figsize=(2.6 * len(columns), 2.3 * 2 * len(clips)),
                             squeeze=False, sharex=True)
    t0 = time.perf_counter()
    for row, clip in enumerate(clips):
        full = excerpt(clip, args.start, args.table_seconds).samples
        original = np.ascontiguousarray(full[:, offset: offset + n])
        signals = {"original": original}
        for name in codecs:
            got = from_decoded(folder, name, clip, offset, n)
            if got is None:
                got = decode_with(name, full, config)[:, offset: offset + n]
                source = "decoded here"
            else:
                source = f"from {folder}"
            signals[name] = got
            print(f"{Path(clip).name:<22} {name:<12} {source}", file=sys.stderr)
        for k, (analysis, top_hz) in enumerate(((FULL_BAND, RATE / 2), (LOW_BAND, LOW_BAND_TOP_HZ))):
            pairs = {name: analyse_pair(original[0], x[0], analysis=analysis) for name, x in signals.items()}
            top = pairs["original"].top_db
            for col, name in enumerate(columns):
                ax = axes[2 * row + k][col]
                pair = pairs[name]
                image = pair.original_db if name == "original" else pair.reconstructed_db
                rows = int(min(pair.bins, np.ceil(top_hz / pair.hz_per_bin) + 1))
                ax.imshow(image[:rows], origin="lower", aspect="auto", cmap="inferno", vmin=top - RANGE_DB, vmax=top,
                          extent=(pair.left_s, pair.left_s + pair.columns * pair.seconds_per_column,
                                  -0.5 * pair.hz_per_bin, (rows - 0.5) * pair.hz_per_bin), interpolation="nearest")
                ax.set_ylim(0, top_hz if k else 16000.0)
                if k == 0:
                    title = name
                    if name != "original":
                        band = metrics.band_metrics(original, signals[name], RATE)
                        title += (f"\nlow band {band['low_band_distance_db']:.1f} dB, "
                                  f"r = {band['low_band_correlation']:.2f}")
                    else:
                        title += f"\n{Path(clip).name}"
                    ax.set_title(title, fontsize=9)
                if col == 0:
                    ax.set_ylabel(("0–16 kHz\n" + FULL_BAND.name.split(" (")[0]) if k == 0
                                  else ("0–1 kHz\n" + LOW_BAND.name.split(" (")[0]), fontsize=8)
                ax.tick_params(labelsize=7)
                if 2 * row + k == 2 * len(clips) - 1:
                    ax.set_xlabel("time (s)", fontsize=8)
    fig.suptitle(f"Held-out music, {args.seconds:g} s each: original and reconstructions from the analysis STFT "
                 f"(one dB scale per clip: the original's peak − {RANGE_DB:g} dB).\nTitles: low-band (20–1000 Hz) "
                 f"log-spectral distance and spectral correlation of the stretch shown.", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_size_inches()[1]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=args.dpi)
    print(f"wrote {out} ({len(clips)} clips x {len(columns)} conditions, {time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
