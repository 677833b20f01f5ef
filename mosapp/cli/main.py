"""The command line: argument parsing, progress bars and printing; the work happens in the library."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import soundfile as sf
from tqdm import tqdm

import mosapp.codecs
from mosapp.cli.arguments import add_max_memory, bounded_int
from mosapp.cli.evaluate import add_evaluate_parser, run_evaluate
from mosapp.cli.study_parser import add_study_parser
from mosapp.codecs import all_codecs, codec_names, container, get_codec
from mosapp.codecs.base import Codec
from mosapp.codecs.container import SUFFIX, file_kbps, read_sgc, write_sgc
from mosapp.codecs.spectrogram import SpectrogramCodec
from mosapp.core.audio import (
    _WRITE_FORMATS,
    STREAM_BLOCK_FRAMES,
    AudioInfo,
    probe_audio,
    read_audio,
    restore_format,
    restore_format_blocks,
    write_audio,
    write_audio_blocks,
)
from mosapp.core.config import FGLA_ITERATIONS_RANGE, GEOMETRIES, PIPELINE_SAMPLE_RATE, PipelineConfig, get_geometry
from mosapp.core.dsp import resolve_device
from mosapp.core.errors import BitstreamError, ConfigError, InvalidStreamError, MosappError
from mosapp.core.files import atomic_write
from mosapp.core.job import Progress
from mosapp.core.memory import describe as describe_memory
from mosapp.core.memory import max_memory, require, set_max_memory
from mosapp.phase import get_backend
from mosapp.pipeline import RoundTripResult, check_processable, roundtrip, run_to_end
from mosapp.training.config import TrainConfig
from mosapp.views.platform import missing_xcb_libraries, x_display_reachable

#: Inputs at least this long get a progress bar.
PROGRESS_MIN_SECONDS = 20.0
REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CLIP = REPO_ROOT / "assets" / "demo" / "pluck-demo.flac"


#: ``mosapp train --steps``: more than this is a typo, not a training run.
MAX_TRAIN_STEPS = 10_000_000


def _fgla_option(p: argparse.ArgumentParser, default: int) -> None:
    lo, hi = FGLA_ITERATIONS_RANGE
    p.add_argument("--fgla-iterations", type=bounded_int(lo, hi), default=default, metavar="N",
                   help=f"iterations for fgla and pghi+fgla, {lo} to {hi} (default {default})")


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    defaults = PipelineConfig()
    p.add_argument("--geometry", default=defaults.geometry,
                   help=f"STFT geometry: {' | '.join(GEOMETRIES)} (default {defaults.geometry})")
    p.add_argument("--phase", default=defaults.phase,
                   help=f"phase reconstruction: pghi | tifresi | fgla | pghi+fgla (default {defaults.phase})")
    p.add_argument("--device", default=defaults.device, help="auto | cpu | cuda (default auto: CUDA when present)")
    _fgla_option(p, defaults.fgla_iterations)
    p.add_argument("--per-channel", action="store_true",
                   help="process each channel of a stereo file instead of the mono mix-down")
    p.add_argument("--no-metrics", action="store_true", help="skip the objective metrics")
    p.add_argument("--visqol", choices=["auto", "on", "off"], default="auto",
                   help="ViSQOL (slow: ~0.2 s per second of audio); auto = on up to 120 s of audio")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help=f"progress bar on stderr; auto = for inputs of {PROGRESS_MIN_SECONDS:.0f} s or more")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_max_memory(p)


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (``mosapp roundtrip: error: argument …; see --help.``)."""

    #: The top-level parser's commands (name → its parser), set by :func:`build_parser`.
    commands: Mapping[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        message = message.rstrip(".")
        self.exit(2, f"mosapp: error: {message} (see `{self.prog} --help`).\n")


def build_parser() -> _Parser:
    parser = _Parser(
        prog="mosapp",
        description="Compress audio as spectrogram images, rebuild it by phase reconstruction, and measure it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rt = sub.add_parser("roundtrip", help='write the "PGHI only" reconstruction of IN to OUT and print metrics',
                        description='Keep the spectrogram magnitude of IN, rebuild its phase, write OUT (same '
                                    'length, rate and channels as IN) and print metrics and timing.')
    rt.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, OGG, MP3)")
    rt.add_argument("output", metavar="OUT", help="output file (.wav, .flac, .ogg)")
    _add_pipeline_options(rt)
    demo = sub.add_parser("demo", help="round-trip the shipped demo clip into out/ (what `mosapp` alone does)")
    demo.add_argument("--out-dir", default="out", help="folder for the reconstruction (default out/)")
    _add_pipeline_options(demo)

    enc = sub.add_parser("encode", help="compress IN into an .sgc file with a codec",
                         description="Code IN with a codec (see `mosapp codecs`) and write the .sgc file OUT, "
                                     "which holds the payload and what decoding needs to restore IN's rate, "
                                     "length and channels.")
    enc.add_argument("input", metavar="IN", help="audio file (WAV, FLAC, OGG, MP3)")
    enc.add_argument("output", metavar="OUT", help="the .sgc file to write")
    enc.add_argument("--codec", default=None,
                     help=f"codec name from `mosapp codecs` (default {_default_codec()})")
    _add_codec_options(enc, encoding=True)
    dec = sub.add_parser("decode", help="decode an .sgc file to audio",
                         description="Decode the .sgc file IN and write OUT with the rate, length and channels "
                                     "of the file that was encoded.")
    dec.add_argument("input", metavar="IN", help="an .sgc file written by `mosapp encode`")
    dec.add_argument("output", metavar="OUT", help="output file (.wav, .flac, .ogg)")
    _add_codec_options(dec, encoding=False)
    conv = sub.add_parser("convert", help="rewrite a container version 1 .sgc file (mosapp 0.1.0) as version 2",
                          description="Rewrite the container version 1 file IN as a current .sgc file OUT, its "
                                      "header bound to its payload, so it decodes. Version 1 files are refused by "
                                      "decode: nothing binds their header to their payload. Convert only files "
                                      "you trust.")
    conv.add_argument("input", metavar="IN", help="a container version 1 .sgc file")
    conv.add_argument("output", metavar="OUT", help="the .sgc file to write")
    cod = sub.add_parser("codecs", help="list the codecs, their bitrates and whether they run here",
                         description="List every codec: name, family, nominal bitrate, whether it is available "
                                     "on this machine (and why not), and what it is.")
    cod.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    gui = sub.add_parser("gui", help="open the desktop app, on an audio file (Inspect) or a study (Listen)",
                         description="Open the desktop app (Inspect / Listen / Results). An audio FILE opens in "
                                     "Inspect and runs the default codec on it; a STUDY (a .toml file, or a name "
                                     "in studies/) opens in Listen, and Results follows it. `mosapp FILE` is the "
                                     "same as `mosapp gui FILE`.")
    gui.add_argument("target", nargs="?", metavar="FILE|STUDY", help="an audio file or a study")
    add_study_parser(sub)
    add_evaluate_parser(sub)
    tr = sub.add_parser("train", help="train or finetune the compact spectrogram codec (sgc) from a config",
                        description="Train (or resume, or finetune) an sgc operating point from a TOML config "
                                    "(see configs/): logs bpp/kbps, PSNR, MS-SSIM and consistency to CSV and a "
                                    "PNG plot, checkpoints every few steps, and exports weights and a model card.")
    tr.add_argument("--config", required=True, help="TOML training config, e.g. configs/sgc2.toml")
    tr.add_argument("--steps", type=bounded_int(1, MAX_TRAIN_STEPS), default=None, metavar="N",
                    help=f"stop after this many more steps, 1 to {MAX_TRAIN_STEPS} (resume later)")
    tr.add_argument("--export", action="store_true",
                    help="write the weights and model cards to [output] export now (after --steps N more "
                         "steps, or with no training at all), not only when the run reaches its steps: "
                         "interim weights to measure")
    tr.add_argument("--calibrate", metavar="WEIGHTS", default=None,
                    help="train nothing: fit the decoder's level maps of these exported two-band weights on the "
                         "config's training files (every operating point of the config) and write them with --to")
    tr.add_argument("--to", metavar="WEIGHTS", default=None,
                    help="with --calibrate: the new weights file (its model card is written next to it)")
    parser.commands = sub.choices
    return parser


def _default_codec() -> str:
    return getattr(mosapp.codecs, "DEFAULT_CODEC", "pghi-only")


def _add_codec_options(p: argparse.ArgumentParser, *, encoding: bool) -> None:
    """The pipeline options that matter to a codec (encode and decode)."""
    defaults = PipelineConfig()
    if encoding:
        p.add_argument("--geometry", default=defaults.geometry,
                       help=f"STFT geometry of spectrogram codecs: {' | '.join(GEOMETRIES)} "
                            f"(default {defaults.geometry}); the decoder reads it from the file")
    p.add_argument("--phase", default=defaults.phase,
                   help=f"phase reconstruction of spectrogram codecs: pghi | tifresi | fgla | pghi+fgla "
                        f"(default {defaults.phase})")
    p.add_argument("--device", default=defaults.device, help="auto | cpu | cuda (default auto: CUDA when present)")
    _fgla_option(p, defaults.fgla_iterations)
    if encoding:
        p.add_argument("--per-channel", action="store_true",
                       help="code each channel of a stereo file instead of the mono mix-down")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_max_memory(p)


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 to /dev/null for a moment.

    libmpg123 (inside libsndfile) prints warnings such as "Cannot read next header" straight
    to fd 2 while it probes a corrupt file, before Python gets the error; the command line
    promises one line per error, so the input is read with fd 2 silenced.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to protect
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _config_from(args: argparse.Namespace) -> PipelineConfig:
    defaults = PipelineConfig()
    return replace(defaults, geometry=getattr(args, "geometry", defaults.geometry), phase=args.phase,
                   device=args.device, fgla_iterations=args.fgla_iterations,
                   mono=not getattr(args, "per_channel", False))


def _format_result(result: RoundTripResult, in_path: str, out_path: str) -> str:
    m = result.metrics
    rows = [
        ("input", f"{in_path} ({result.info.channels} ch, {result.info.sample_rate} Hz, "
                  f"{result.info.frames / result.info.sample_rate:.2f} s)"),
        ("output", out_path),
        ("pipeline", f"geometry {result.geometry.name} ({result.geometry.channels} channels, hop "
                     f"{result.geometry.hop}), phase {result.backend}, device {result.device}"),
    ]

    def fmt(value: float | None, unit: str = "", digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}{unit}"

    rows += [
        ("spectral convergence", fmt(m.spectral_convergence_db, " dB", 2) + "  (lower is better)"),
        ("SI-SDR", fmt(m.si_sdr_db, " dB", 2) + "  (phase is rebuilt, so expect it low)"),
        ("mel distance", fmt(m.mel_distance) + "  (DAC multi-scale; lower is better)"),
        ("consistency", fmt(m.target_consistency) + "  (of the target spectrogram; higher is more consistent)"),
        ("ViSQOL MOS-LQO", fmt(m.visqol, "", 2) + "  (audio mode, 48 kHz; 1-5)"),
        ("low band 20-1000 Hz", f"distance {fmt(m.low_band_distance_db, ' dB', 2)}, correlation "
                                f"{fmt(m.low_band_correlation)}  (4096-point STFT; lower / higher is better)"),
        ("high band > 1 kHz", f"distance {fmt(m.high_band_distance_db, ' dB', 2)}, correlation "
                              f"{fmt(m.high_band_correlation)}"),
    ]
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.timings_s.items())
    rows += [
        ("time", f"{result.processing_seconds:.2f} s for {result.audio_seconds:.2f} s of audio "
                 f"({result.realtime_factor:.1f}x real time)"),
        ("stages", stages + "  (stages overlap on two threads)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _result_json(result: RoundTripResult, in_path: str, out_path: str) -> str:
    return json.dumps({
        "input": in_path,
        "output": out_path,
        "geometry": result.geometry.name,
        "phase": result.backend,
        "device": result.device,
        "audio_seconds": result.audio_seconds,
        "processing_seconds": result.processing_seconds,
        "realtime_factor": result.realtime_factor,
        "timings_s": result.timings_s,
        "metrics": result.metrics.as_dict(),
    })


#: Bytes a codec's decoder holds per coded sample and channel at its peak (images, phase
#: reconstruction, output), measured on 10 and 40 s clips (the growth between them): the
#: spectrogram codecs (pghi-only 215, sgc 195, avif 156) rebuild phase over the whole image;
#: the waveform codecs (opus, mp3, aac, the anchors) hold the decoded samples and a few copies.
DECODE_BYTES_PER_SAMPLE = {"spectrogram": 240, "waveform": 48}
#: The same for encoding (the image and its coding; the samples read are counted by read_audio).
ENCODE_BYTES_PER_SAMPLE = {"spectrogram": 120, "waveform": 48}


#: The round trip works block by block (no whole image): what it holds per pipeline sample (the
#: samples, the output, the metrics' tiles), per further channel (channels run one after the other), and per
#: sample of the source file (reading and writing it). A 10-minute stereo file peaked at 1.37 GiB with the
#: program itself (about 0.4 GB), mono mix-down or per channel (benchmarks/roundtrip.py, issue 29): these
#: give 1.7 GB and 1.9 GB, under the default ceiling.
ROUNDTRIP_BYTES_PER_SAMPLE = 48
ROUNDTRIP_BYTES_PER_EXTRA_CHANNEL = 8
ROUNDTRIP_BYTES_PER_SOURCE_SAMPLE = 8


def _kind(codec: Codec) -> str:
    return "spectrogram" if isinstance(codec, SpectrogramCodec) or codec.family in ("sgc", "msillm") else "waveform"


def _restore_bytes(frames: int, channels: int, source: AudioInfo) -> int:
    """restore_format and write_audio: the resampled output, its channel copies, the clipped and
    interleaved copies written."""
    return 4 * frames * channels + 4 * 4 * source.frames * source.channels


def _check_input_header(in_path: str, *, max_seconds: float | None, what: str) -> AudioInfo:
    """The input's header, checked before its samples are decoded: its length against ``max_seconds``
    and the memory :func:`read_audio` and the work after it will take."""
    with _native_stderr_silenced():
        info = probe_audio(in_path)
    seconds = info.frames / max(info.sample_rate, 1)
    if max_seconds is not None and seconds > max_seconds:
        raise MosappError(f"{in_path} is {seconds / 60:.1f} minutes long; {what} at most "
                          f"{max_seconds / 60:.0f} minutes, so split it first.")
    return info


def run_convert(in_path: str, out_path: str) -> int:
    """``mosapp convert``: a container version 1 file rewritten as the current version."""
    if Path(out_path).suffix.lower() != SUFFIX:
        raise MosappError(f"{out_path} does not end in {SUFFIX}; `mosapp convert` writes .sgc files.")
    _check_out_folder(out_path)
    data = container.upgrade_version_1(container.read_sgc_bytes(in_path), in_path)
    atomic_write(out_path, lambda fh: fh.write(data), suffix=SUFFIX)
    print(f"{in_path} -> {out_path}: container version {container.CONTAINER_VERSION}, {len(data)} bytes")
    return 0


def run_roundtrip(in_path: str, out_path: str, args: argparse.Namespace) -> int:
    config = _config_from(args)
    # Names first: a typo should not cost a file read.
    get_geometry(config.geometry)
    get_backend(config.phase)
    resolve_device(config.device)
    out_dir = Path(out_path).resolve().parent
    if not out_dir.is_dir():
        raise MosappError(f"Cannot write {out_path}: the folder {out_dir} does not exist.")
    info = _check_input_header(in_path, max_seconds=None, what="")
    n = (2 * info.frames * PIPELINE_SAMPLE_RATE + info.sample_rate) // (2 * max(info.sample_rate, 1))
    channels = 1 if config.mono else info.channels
    require(n * (ROUNDTRIP_BYTES_PER_SAMPLE + ROUNDTRIP_BYTES_PER_EXTRA_CHANNEL * (channels - 1))
            + ROUNDTRIP_BYTES_PER_SOURCE_SAMPLE * info.frames * info.channels,
            f"The round trip of {in_path} ({info.frames / max(info.sample_rate, 1) / 60:.1f} minutes)")
    with _native_stderr_silenced():
        audio = read_audio(in_path, sample_rate=PIPELINE_SAMPLE_RATE, mono=config.mono)
    show = args.progress == "on" or (args.progress == "auto" and audio.duration_s >= PROGRESS_MIN_SECONDS)
    visqol = {"on": True, "off": False, "auto": None}[args.visqol]
    gen = roundtrip(audio, config, compute_metrics=not args.no_metrics, visqol=visqol)
    if show:
        bar = tqdm(total=1, unit="frame", unit_scale=True, desc="reconstructing", file=sys.stderr,
                   dynamic_ncols=True, leave=False)

        def on_progress(p: Progress) -> None:
            if p.stage == "frames":
                bar.total = p.total
                bar.n = p.done
                bar.refresh()
            elif p.stage == "metrics" and p.done == 0:
                bar.set_description("measuring")

        try:
            result = run_to_end(gen, on_progress)
        finally:
            bar.close()
    else:
        result = run_to_end(gen)
    write_audio_blocks(out_path, result.output_blocks(), result.info.sample_rate, result.info.channels,
                       subtype=_output_subtype(out_path, result.info))
    print(_result_json(result, in_path, out_path) if args.json else _format_result(result, in_path, out_path))
    return 0


def _check_out_folder(out_path: str) -> None:
    out_dir = Path(out_path).resolve().parent
    if not out_dir.is_dir():
        raise MosappError(f"Cannot write {out_path}: the folder {out_dir} does not exist.")


def _rows(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _size(n_bytes: int) -> str:
    if n_bytes < 10_000:
        return f"{n_bytes} bytes"
    if n_bytes < 10_000_000:
        return f"{n_bytes / 1000:.1f} kB ({n_bytes} bytes)"
    return f"{n_bytes / 1e6:.1f} MB ({n_bytes} bytes)"


def run_encode(in_path: str, out_path: str, args: argparse.Namespace) -> int:
    config = _config_from(args)
    codec = get_codec(args.codec or _default_codec())
    # Names first: a typo should not cost a file read.
    geometry = get_geometry(config.geometry)
    get_backend(config.phase)
    device = resolve_device(config.device)
    availability = codec.availability()
    if not availability.ok:
        raise MosappError(availability.reason)
    if Path(out_path).suffix.lower() != SUFFIX:
        raise MosappError(f"{out_path} does not end in {SUFFIX}; `mosapp encode` writes .sgc files "
                          f"(decode them with `mosapp decode`).")
    _check_out_folder(out_path)
    # From the header, before a sample is decoded: a 6-hour file is refused at once.
    info = _check_input_header(in_path, max_seconds=container.MAX_STREAM_SECONDS, what="an .sgc file holds")
    n = (2 * info.frames * PIPELINE_SAMPLE_RATE + info.sample_rate) // (2 * max(info.sample_rate, 1))
    require(n * (1 if config.mono else info.channels) * ENCODE_BYTES_PER_SAMPLE[_kind(codec)],
            f"Encoding {in_path} with {codec.name} ({info.frames / max(info.sample_rate, 1) / 60:.1f} minutes)")
    with _native_stderr_silenced():
        audio = read_audio(in_path, sample_rate=PIPELINE_SAMPLE_RATE, mono=config.mono)
    check_processable(audio, geometry)
    limit_s = container.MAX_STREAM_SECONDS  # read now, not at import: what the container holds
    if audio.duration_s > limit_s:
        raise MosappError(f"{in_path} is {audio.duration_s / 60:.1f} minutes long; an .sgc file holds at most "
                          f"{limit_s // 60} minutes, so split it first.")
    t0 = time.perf_counter()
    encoded = codec.encode(audio.samples, config)
    seconds = time.perf_counter() - t0
    size = write_sgc(out_path, encoded, audio.info)
    kbps = file_kbps(out_path, encoded)
    info = audio.info
    if args.json:
        print(json.dumps({
            "input": in_path, "output": out_path, "codec": encoded.codec, "codec_version": encoded.codec_version,
            "device": str(device), "audio_seconds": encoded.seconds, "channels_coded": encoded.channels,
            "file_bytes": size, "payload_bytes": len(encoded.payload), "file_kbps": kbps,
            "payload_kbps": encoded.payload_kbps, "processing_seconds": seconds,
            "realtime_factor": encoded.seconds / max(seconds, 1e-9),
        }))
        return 0
    print(_rows([
        ("input", f"{in_path} ({info.channels} ch, {info.sample_rate} Hz, {info.frames / info.sample_rate:.2f} s)"),
        ("output", out_path),
        ("codec", f"{encoded.codec} (version {encoded.codec_version}), {encoded.channels} channel"
                  f"{'s' if encoded.channels > 1 else ''} coded, device {device}"),
        ("size", f"{_size(size)}, of which {size - len(encoded.payload)} bytes header and checksum"),
        ("bitrate", f"{kbps:.2f} kbit/s file, {encoded.payload_kbps:.2f} kbit/s payload"),
        ("time", f"{seconds:.2f} s for {encoded.seconds:.2f} s of audio "
                 f"({encoded.seconds / max(seconds, 1e-9):.1f}x real time)"),
    ]))
    return 0


def run_decode(in_path: str, out_path: str, args: argparse.Namespace) -> int:
    config = _config_from(args)
    get_backend(config.phase)
    device = resolve_device(config.device)
    ext = Path(out_path).suffix.lower()
    if ext not in _WRITE_FORMATS:
        known = list(_WRITE_FORMATS)
        raise MosappError(f"{out_path} has an unsupported extension; mosapp writes "
                          f"{', '.join(known[:-1])} or {known[-1]} files.")
    _check_out_folder(out_path)
    encoded, source = read_sgc(in_path)
    try:
        codec = get_codec(encoded.codec)
    except ConfigError:
        raise MosappError(
            f'{in_path} was coded with "{encoded.codec}", a codec this mosapp does not have (it has: '
            f'{", ".join(codec_names())}); update mosapp.'
        ) from None
    availability = codec.availability()
    if not availability.ok:
        raise MosappError(availability.reason)
    t0 = time.perf_counter()
    try:
        # The header against the payload first (a forged length is that sentence), then the memory
        # what it declares takes: decided before anything is decoded or allocated.
        check_stream = getattr(codec, "check_stream", None)
        if check_stream is not None:
            check_stream(encoded)
        whole = (encoded.n_samples * encoded.channels * DECODE_BYTES_PER_SAMPLE[_kind(codec)]
                 + _restore_bytes(encoded.n_samples, encoded.channels, source))
        blocks = getattr(codec, "decode_blocks", None)
        streamed = False
        what = f"Decoding {in_path} ({encoded.codec}, {encoded.seconds / 60:.1f} minutes)"
        if blocks is not None and whole > max_memory():
            streamed = True
            # Too long to hold: decoded, restored and written block by block (the payload, its
            # packets and a few blocks in memory), whatever the stream's length.
            require(4 * len(encoded.payload) + 64 * STREAM_BLOCK_FRAMES * max(encoded.channels, source.channels), what)
            write_audio_blocks(out_path, restore_format_blocks(blocks(encoded, config), encoded.sample_rate,
                                                               encoded.channels, source),
                               source.sample_rate, source.channels, subtype=_output_subtype(out_path, source))
        else:
            require(whole, what)
            samples = codec.decode(encoded, config)
    except BitstreamError as exc:
        # The codec's sentence is about "the stream"; say which file it is.
        msg = str(exc).rstrip(".")
        if len(msg) > 1 and msg[1].islower():
            msg = msg[0].lower() + msg[1:]
        if isinstance(exc, InvalidStreamError):
            raise InvalidStreamError(f"{in_path} is not a valid mosapp file: {msg}.") from None
        raise BitstreamError(f"{in_path} cannot be decoded: {msg}.") from None
    seconds = time.perf_counter() - t0
    if not streamed:
        output = restore_format(samples, encoded.sample_rate, source)
        write_audio(out_path, output, source.sample_rate, subtype=_output_subtype(out_path, source))
    rtf = encoded.seconds / max(seconds, 1e-9)
    if args.json:
        print(json.dumps({
            "input": in_path, "output": out_path, "codec": encoded.codec, "codec_version": encoded.codec_version,
            "phase": config.phase if _is_spectrogram(codec) else None, "device": str(device), "audio_seconds": encoded.seconds,
            "sample_rate": source.sample_rate, "channels": source.channels, "frames": source.frames,
            "processing_seconds": seconds, "realtime_factor": rtf,
        }))
        return 0
    print(_rows([
        ("input", f"{in_path} ({encoded.codec} version {encoded.codec_version}, {encoded.seconds:.2f} s, "
                  f"{encoded.payload_kbps:.2f} kbit/s payload)"),
        ("output", f"{out_path} ({source.channels} ch, {source.sample_rate} Hz, "
                   f"{source.frames / source.sample_rate:.2f} s)"),
        ("decoder", f"phase {config.phase}, device {device}" if _is_spectrogram(codec) else f"{codec.name}"),
        ("time", f"{seconds:.2f} s for {encoded.seconds:.2f} s of audio ({rtf:.1f}x real time)"),
    ]))
    return 0


def _is_spectrogram(codec: Codec) -> bool:
    """Whether the phase options apply to ``codec``."""
    return isinstance(codec, SpectrogramCodec)


def run_codecs(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for codec in all_codecs():
        availability = codec.availability()
        rows.append({
            "name": codec.name,
            "family": codec.family,
            "version": codec.version,
            "nominal_kbps": codec.nominal_kbps,
            "available": availability.ok,
            "reason": "" if availability.ok else availability.reason,
            "description": codec.description,
        })
    if args.json:
        print(json.dumps(rows))
        return 0
    table = [("codec", "family", "kbit/s", "available", "description")]
    for r in rows:
        kbps = "-" if r["nominal_kbps"] is None else f"{r['nominal_kbps']:g}"
        table.append((r["name"], r["family"], kbps, "yes" if r["available"] else "no", r["description"]))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = []
    for i, row in enumerate(table):
        lines.append("  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths)) + "  " + row[4])
        if i > 0 and not rows[i - 1]["available"]:
            lines.append(" " * (sum(widths) + 8) + "  not available: " + rows[i - 1]["reason"])
    print("\n".join(line.rstrip() for line in lines))
    return 0


def _output_subtype(out_path: str, info: sf._SoundFileInfo) -> str | None:
    """Keep the input's sample format when the output container is the same kind."""
    ext = os.path.splitext(out_path)[1].lower()
    if ext == ".wav" and info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        return info.subtype
    if ext == ".flac" and info.subtype in ("PCM_16", "PCM_24"):
        return info.subtype
    return None


def run_train(args: argparse.Namespace) -> int:
    from mosapp.training.loop import train  # noqa: PLC0415 — loads compressai (~2.6 s): only `mosapp train` needs it

    cfg = TrainConfig.load(args.config)
    if args.calibrate or args.to:
        if not (args.calibrate and args.to):
            raise MosappError("--calibrate IN.pt and --to OUT.pt go together.")
        from mosapp.training.calibration import calibrate  # noqa: PLC0415 — loads the codecs and compressai

        print(f"mosapp train: {calibrate(cfg, Path(args.calibrate), Path(args.to))}")
        return 0
    # --export alone trains nothing: it exports the checkpoint as it stands.
    path = train(cfg, max_steps=0 if args.export and args.steps is None else args.steps, export=args.export)
    print(f"mosapp train: {path}")
    return 0


def _have_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def gui_target(target: str | None) -> tuple[str, str] | None:
    """``("audio", path)`` or ``("study", path)`` for what ``mosapp gui`` was given, None for nothing.

    Raises:
        MosappError: ``target`` is neither an audio file nor a study.
    """
    if target is None:
        return None
    p = Path(target)
    if p.is_file():
        return ("study" if p.suffix.lower() == ".toml" else "audio"), str(p)
    if p.is_dir():
        if (p / "clips.csv").is_file() and (p / "summary.csv").is_file():
            return "evaluation", str(p)
        raise MosappError(f"{target} is a folder; give an audio file (Inspect), a study file (Listen) or the "
                          f"output folder of `mosapp evaluate` (Evaluate).")
    from mosapp.study.definition import resolve_study_path  # noqa: PLC0415 — the study stack (~1.7 s) loads only for a study
    from mosapp.study.errors import StudyError  # noqa: PLC0415 — as above

    try:
        return "study", str(resolve_study_path(target))
    except StudyError:
        raise MosappError(f"{target} is neither an audio file nor a study (a .toml file or a name in "
                          f"studies/); check the path.") from None


def why_no_window(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the desktop app cannot show its window here (one sentence), or None when it can.

    Checked before Qt starts, because Qt aborts the process (exit 134) when its platform
    plugin cannot load or reach the display, or draws an invisible window that nobody can close.
    """
    platform = environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if platform in ("offscreen", "minimal", "vnc"):
        return (f"QT_QPA_PLATFORM={platform} draws the window where nobody can see or close it, so the app does "
                f"not open; unset QT_QPA_PLATFORM on a desktop, or give it an X server (e.g. `Xvfb :99 &` and "
                f"DISPLAY=:99).")
    if platform in ("", "xcb") and not environ.get("WAYLAND_DISPLAY"):
        if not environ.get("DISPLAY"):
            return ("there is no display (DISPLAY and WAYLAND_DISPLAY are unset), so the desktop app cannot open; "
                    "run it on a desktop, or start an X server (e.g. `Xvfb :99 &`) and set DISPLAY=:99.")
        missing = missing_xcb_libraries()
        if missing:
            return (f"Qt's X11 platform cannot load: {', '.join(missing)} missing; run scripts/setup (as root it "
                    f"installs them) or install the Debian packages that provide them.")
        if not x_display_reachable(environ["DISPLAY"]):
            return f"the X display {environ['DISPLAY']} does not answer; start its X server or fix DISPLAY."
    return None


def run_gui(target: str | None) -> int:
    what = gui_target(target)
    why = why_no_window()
    if why is not None:
        print(f"mosapp: {why}", file=sys.stderr)
        return 2
    from mosapp.gui.app import run_app  # noqa: PLC0415 — the CLI must not load Qt

    return run_app([], open_audio=what[1] if what and what[0] == "audio" else None,
                   open_study=what[1] if what and what[0] == "study" else None,
                   open_evaluation=what[1] if what and what[0] == "evaluation" else None)


def _on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
    # An exception, so every `finally` runs: atomic writes remove their temporary file,
    # database transactions roll back.
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` (main thread only; SIGINT is KeyboardInterrupt already)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _stdout_gone() -> int:
    """stdout's reader went away (``mosapp … | head -1``): no traceback, no flush error at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mosapp`` and ``python -m mosapp``; returns the exit status."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return status
    except BrokenPipeError:
        return _stdout_gone()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in parser.commands:
        argv = ["gui", *argv]  # `mosapp FILE` / `mosapp STUDY`
    args = parser.parse_args(argv)
    if args.command is None:
        # `mosapp` alone opens the desktop app (Inspect / Listen / Results) on the shipped
        # demo study; without a screen it says so and runs the command-line demo instead.
        why = why_no_window()
        if why is None:
            from mosapp.gui.app import run_app  # noqa: PLC0415 — the CLI must not load Qt

            return run_app([])
        print(f"mosapp: {why} Running the command-line demo instead.", file=sys.stderr)
        args = parser.parse_args(["demo", *argv])
    if args.command != "gui":
        # Not in the desktop app: Qt owns its signals there (SIGTERM still ends it at once).
        install_signal_handlers()
    if getattr(args, "max_memory", None) is not None:
        set_max_memory(args.max_memory)
    try:
        return _run_command(args, argv, parser)
    except MosappError as exc:
        print(f"mosapp: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:
        # What an estimate missed (another program took the memory, a limit below the ceiling): a sentence.
        print(f"mosapp: error: the machine ran out of memory for this {args.command}; give a shorter file, or "
              f"lower --max-memory (now {describe_memory(max_memory())}) so it is refused up front.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mosapp: interrupted", file=sys.stderr)
        return 130


def _run_study(args: argparse.Namespace) -> int:
    from mosapp.cli.study import run_study  # noqa: PLC0415 — the study stack (~1.7 s) loads only for `mosapp study`

    return run_study(args)


def run_demo(args: argparse.Namespace) -> int:
    """``mosapp demo``: the PGHI-only round trip of the shipped clip into ``--out-dir``."""
    out_dir = Path(args.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MosappError(f"--out-dir {out_dir} is a file, not a folder; give a folder for the "
                          f"reconstruction.") from None
    except OSError as exc:
        raise MosappError(f"The folder {out_dir} cannot be created ({exc.strerror or exc}); give "
                          f"--out-dir a folder you can write to.") from None
    if not os.access(out_dir, os.W_OK):
        raise MosappError(f"The folder {out_dir} is read-only; give --out-dir a folder you can write to.")
    out = out_dir / f"{DEMO_CLIP.stem}-{args.phase}-{args.geometry}.wav"
    print(f"mosapp demo: PGHI-only round trip of the shipped clip {DEMO_CLIP.relative_to(REPO_ROOT)}")
    return run_roundtrip(str(DEMO_CLIP), str(out), args)


def _run_command(args: argparse.Namespace, argv: list[str], parser: argparse.ArgumentParser) -> int:
    """Run the parsed subcommand (its errors are :func:`_main`'s to turn into sentences)."""
    commands: dict[str, Callable[[], int]] = {
        "gui": lambda: run_gui(args.target),
        "roundtrip": lambda: run_roundtrip(args.input, args.output, args),
        "encode": lambda: run_encode(args.input, args.output, args),
        "decode": lambda: run_decode(args.input, args.output, args),
        "codecs": lambda: run_codecs(args),
        "convert": lambda: run_convert(args.input, args.output),
        "train": lambda: run_train(args),
        "evaluate": lambda: run_evaluate(args, ["mosapp", *argv]),
        "study": lambda: _run_study(args),
        "demo": lambda: run_demo(args),
    }
    command = commands.get(args.command)
    if command is None:
        parser.print_help()
        return 2
    return command()
