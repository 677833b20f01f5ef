"""Rate-distortion of each band image, learned (sgc) against classic (AVIF, WebP, JPEG), side by side.

The results table (``codec_table.py``) judges codecs on the audio; this script looks one
level down, at the two images every two-band codec codes (``mosapp.codecs.twoband``), to
say *where* a codec loses: in the low image (0-1.4 kHz, 10.8 Hz x 11.6 ms, 11 k pixels/s)
or in the high one (the thesis lattice, 177 k pixels/s), and whether it is the rate or the
reconstruction that limits it.

For each file (an excerpt of ``--seconds``) and each band image it prints rate (kbit/s of
that band alone, its share of a stream) against:

* PSNR of the image in [0, 1] (the 100 dB range), and
* dB L1: mean |error| in dB with both images floored 80 dB under the peak, the image-domain
  form of the band metrics' log-spectral distance (and of the training loss's SDL term).

sgc points are each ``--sgc`` operating point's network at a range of latent quantisation
steps (its rate knob; step 1 is what it was trained at, small steps show the network's
reconstruction ceiling); classic points are each family at a range of qualities on the
8-bit image, as ``avif-N`` codes it. Last, for each band and each sgc point, the classic
codec's dB L1 at the sgc point's own rate (interpolated on the classic curve, log rate).

The default material is training-set excerpts (a design tool, not a result: the held-out
files are for ``codec_table.py``).

    .venv/bin/python benchmarks/band_rd.py [--files F ...] [--offset 30] [--seconds 20]
        [--sgc sgc-6 sgc-12 sgc-24] [--families avif] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from PIL import Image

from mosapp.codecs import get_codec
from mosapp.codecs.image import FORMATS, to_gray8
from mosapp.codecs.twoband import band_images
from mosapp.core.audio import read_audio
from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.models import sgc_net

DEFAULT_FILES = ["/usr/share/hyperrogue/music/hr3-jungle.ogg", "/usr/share/scummvm/drascula/audio/track3.ogg"]
STEPS = (0.25, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)
QUALITIES = (1, 5, 10, 20, 30, 40, 50, 60, 70)
FLOOR = 0.2  # 80 dB under the peak, of the image's 100 dB range


def distortion(ref: torch.Tensor, dec: torch.Tensor) -> tuple[float, float]:
    """(PSNR dB, floored dB L1) of a decoded image against the original, both in [0, 1]."""
    ref, dec = ref.clamp(0, 1), dec.clamp(0, 1)
    mse = float(torch.mean((ref - dec) ** 2))
    l1 = float(torch.mean((ref.clamp(min=FLOOR) - dec.clamp(min=FLOOR)).abs()) * 100.0)
    return 10.0 * np.log10(1.0 / max(mse, 1e-12)), l1


def sgc_curve(name: str, band: str, image: torch.Tensor, seconds: float) -> list[dict]:
    codec = get_codec(name)
    codec.prepare(torch.device("cpu"))
    net = codec.network.band(band)
    rows = sgc_net.BAND_ROWS[band]
    out = []
    with torch.inference_mode():
        tile = sgc_net.analyse_tile(net, image, rows)
        for step in STEPS:
            data = sgc_net.code_tile(net, tile, step)
            dec = sgc_net.decompress_tile(net, data, image.shape[0], image.shape[1], torch.device("cpu"), step, rows)
            psnr, l1 = distortion(image, dec)
            out.append({"codec": name, "knob": step, "kbps": len(data) * 8 / seconds / 1000, "psnr": psnr, "db_l1": l1})
    return out


def classic_curve(family: str, image: torch.Tensor, seconds: float) -> list[dict]:
    fmt, options = FORMATS[family]
    gray = to_gray8(image)
    out = []
    for q in QUALITIES:
        buf = io.BytesIO()
        Image.fromarray(gray, "L").save(buf, format=fmt, quality=q, **options)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"), dtype=np.float32) / 255.0
        psnr, l1 = distortion(image, torch.from_numpy(dec))
        out.append({"codec": family, "knob": q, "kbps": len(buf.getvalue()) * 8 / seconds / 1000, "psnr": psnr,
                    "db_l1": l1})
    return out


def at_rate(curve: list[dict], kbps: float, key: str) -> float | None:
    """``key`` of the curve at ``kbps`` (linear in log rate), None outside its range."""
    pts = sorted(curve, key=lambda p: p["kbps"])
    rates = np.log([p["kbps"] for p in pts])
    if not rates[0] <= np.log(kbps) <= rates[-1]:
        return None
    return float(np.interp(np.log(kbps), rates, [p[key] for p in pts]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="+", default=DEFAULT_FILES)
    ap.add_argument("--offset", type=float, default=30.0, help="excerpt start, s")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sgc", nargs="+", default=["sgc-6", "sgc-12", "sgc-24"])
    ap.add_argument("--families", nargs="+", default=["avif"], choices=sorted(FORMATS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", help="write every point here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    points: list[dict] = []
    for path in args.files:
        audio = read_audio(path)
        start = int(args.offset * PIPELINE_SAMPLE_RATE)
        x = audio.samples[0, start:start + int(args.seconds * PIPELINE_SAMPLE_RATE)]
        seconds = len(x) / PIPELINE_SAMPLE_RATE
        low, _, high, _ = band_images(x, torch.device("cpu"))
        for band, image in (("low", low[:sgc_net.BAND_ROWS["low"]]), ("high", high[:sgc_net.BAND_ROWS["high"]])):
            curves = [p for name in args.sgc for p in sgc_curve(name, band, image, seconds)]
            curves += [p for fam in args.families for p in classic_curve(fam, image, seconds)]
            for p in curves:
                points.append({"file": Path(path).name, "band": band, **p})

    print(f"{'file':24s} {'band':4s} {'codec':8s} {'knob':>5s} {'kbps':>7s} {'PSNR':>6s} {'dB L1':>6s}")
    for p in points:
        print(f"{p['file'][:24]:24s} {p['band']:4s} {p['codec']:8s} {p['knob']:5g} {p['kbps']:7.2f} "
              f"{p['psnr']:6.2f} {p['db_l1']:6.2f}")
    print("\nAt each sgc point's rate at step 1 (as trained): sgc dB L1 against the classic codec's there")
    for path in args.files:
        name = Path(path).name
        for band in ("low", "high"):
            for codec in args.sgc:
                sgc = next(p for p in points if (p["file"], p["band"], p["codec"], p["knob"]) == (name, band, codec, 1.0))
                row = f"{name[:24]:24s} {band:4s} {codec:8s} {sgc['kbps']:6.2f} kbps  sgc {sgc['db_l1']:.2f} dB"
                for fam in args.families:
                    other = at_rate([p for p in points if (p["file"], p["band"], p["codec"]) == (name, band, fam)],
                                    sgc["kbps"], "db_l1")
                    row += f"  {fam} {'below its lowest rate' if other is None else f'{other:.2f} dB'}"
                print(row)
    if args.json:
        Path(args.json).write_text(json.dumps(points, indent=1))


if __name__ == "__main__":
    main()
