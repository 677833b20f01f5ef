"""What an evaluation runs on: excerpts of audio files, found in files, folders or a manifest.

An :class:`Excerpt` is ``seconds`` of one file from ``start_s``, named by the file's path as the
user gave it (``clip``). :func:`plan_excerpts` turns the command line's inputs into excerpts:

* an audio file, or a folder searched recursively for audio files (:data:`AUDIO_SUFFIXES`);
* a CSV manifest (``.csv``): one row per excerpt, ``path[,start_s,length_s]``, an optional
  header row naming those columns, relative paths taken from the manifest's folder; a row
  without ``start_s`` gets the excerpts a file gets (below), one without ``length_s`` the
  default length.

A file without a given start gets ``excerpts_per_file`` excerpts of ``excerpt_seconds``, as
the thesis made its 500 six-second excerpts: the file's span that can start an excerpt,
``[0, duration - seconds]``, is cut into that many equal strata and each excerpt starts at a
uniformly drawn point of its own stratum. The draw is seeded by ``seed`` and the file's name,
so the same command gives the same excerpts on any machine and whatever else is in the run.
With ``excerpt_seconds`` None the whole file is one excerpt, read to where its audio really ends
(an MP3 header's length is libsndfile's estimate, and ``seconds`` says that estimate); excerpts of
an MP3 keep :data:`HEADER_SLACK_S` clear of the estimated end.

Problems with a file (unreadable, shorter than the excerpt) are not raised here: they become
:class:`PlanProblem` sentences that the run reports and lists, and the other files go on.

:func:`read_excerpt` reads an excerpt by seeking, never by decoding the whole file, mixes it to
mono and resamples it to the pipeline rate.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mosapp.core.audio import Audio, AudioInfo, probe_audio, resample
from mosapp.core.audio import read_excerpt as read_excerpt_of_file
from mosapp.core.config import PIPELINE_SAMPLE_RATE
from mosapp.core.errors import AudioError, MosappError

#: File name endings searched for in a folder.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
#: At most this many files are taken from the folders of one run (a typo such as ``/`` is refused).
MAX_FILES = 100_000


class InputError(MosappError):
    """An input of the command line that is not a file, folder or manifest that can be used."""


@dataclass(frozen=True, order=True)
class Excerpt:
    """``seconds`` of ``path`` from ``start_s``; ``clip`` is how tables name the file."""

    clip: str
    start_s: float
    seconds: float
    path: str
    #: The whole file (no length was asked for): read to its real end, which a compressed file's header
    #: (MP3's frame count) may overestimate.
    to_end: bool = field(default=False, compare=False)

    @property
    def key(self) -> tuple[str, float, float]:
        return (self.clip, self.start_s, self.seconds)

    @property
    def label(self) -> str:
        return f"{self.clip} @ {self.start_s:.3f} s"


@dataclass(frozen=True)
class PlanProblem:
    """A file (or manifest row) that gives no excerpt, and why, in one sentence."""

    clip: str
    reason: str


#: Seconds kept clear of the end of a file whose header only estimates its length (MP3).
HEADER_SLACK_S = 1.0


def durations_estimated(path: str) -> bool:
    """Whether the file's header frame count is an estimate (MP3: libsndfile counts from the bitrate)."""
    return Path(path).suffix.lower() == ".mp3"


def _duration_s(path: str) -> float:
    """The file's length from its header (:func:`mosapp.core.audio.probe_audio`), without decoding it.

    Raises:
        AudioError: the file cannot be opened as audio, or holds no samples.
    """
    info = probe_audio(path)
    if info.frames <= 0 or info.sample_rate <= 0:
        raise AudioError(f"{path} holds no audio samples.")
    return info.frames / info.sample_rate


def excerpt_starts(clip: str, duration_s: float, seconds: float, count: int, seed: int) -> list[float]:
    """The ``count`` stratified, seeded start times (s, rounded to the millisecond) of ``clip``."""
    span = max(0.0, duration_s - seconds)
    digest = hashlib.sha256(f"{seed}\0{Path(clip).name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    width = span / count
    draws = rng.uniform(0.0, 1.0, size=count)
    return [round(math.floor(1000.0 * (k + float(u)) * width) / 1000.0, 3) for k, u in enumerate(draws)]


def _files_in(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(AUDIO_SUFFIXES):
                found.append(Path(root) / name)
                if len(found) > MAX_FILES:
                    raise InputError(f"{folder} holds more than {MAX_FILES:,} audio files; name a smaller folder "
                                     f"or list the files in a CSV manifest.")
    return found


def _manifest_rows(path: Path) -> list[tuple[str, float | None, float | None, int]]:
    """(path, start_s, length_s, line) per row of a manifest."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"The manifest {path} cannot be read ({getattr(exc, 'strerror', None) or exc}).") from None
    rows = []
    first = True
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if first and cells[0].lower() in ("path", "file"):
            first = False
            continue  # a header row
        first = False
        if len(cells) > 3:
            raise InputError(f"Line {line_no} of the manifest {path} has {len(cells)} columns; a row is "
                             f"path[,start_s,length_s].")
        numbers: list[float | None] = []
        for name, cell in zip(("start_s", "length_s"), cells[1:]):
            if cell == "":
                numbers.append(None)
                continue
            try:
                value = float(cell)
            except ValueError:
                raise InputError(f'Line {line_no} of the manifest {path}: {name} "{cell}" is not a number.') from None
            if not math.isfinite(value) or value < 0 or (name == "length_s" and value <= 0):
                raise InputError(f"Line {line_no} of the manifest {path}: {name} {cell} is out of range "
                                 f"(start_s >= 0, length_s > 0).")
            numbers.append(value)
        numbers += [None] * (2 - len(numbers))
        target = Path(cells[0])
        if not target.is_absolute():
            target = path.parent / target
        rows.append((str(target), numbers[0], numbers[1], line_no))
    return rows


def plan_excerpts(inputs: list[str], *, excerpt_seconds: float | None = None, excerpts_per_file: int = 1,
                  seed: int = 0) -> tuple[list[Excerpt], list[PlanProblem]]:
    """The excerpts of ``inputs`` (files, folders, ``.csv`` manifests), in input order, and the
    files that gave none.

    Raises:
        InputError: an empty folder, a malformed manifest, or out-of-range excerpt settings:
            nothing can run, so nothing does (a file that is missing or unreadable is a problem).
    """
    if excerpt_seconds is not None and not (math.isfinite(excerpt_seconds) and excerpt_seconds > 0):
        raise InputError(f"--excerpt-seconds must be a positive number of seconds, not {excerpt_seconds}.")
    if excerpts_per_file < 1:
        raise InputError(f"--excerpts-per-file must be at least 1, not {excerpts_per_file}.")
    wanted: list[tuple[str, float | None, float | None]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = _files_in(p)
            if not files:
                raise InputError(f"The folder {item} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
            wanted += [(str(f), None, None) for f in files]
        elif p.suffix.lower() == ".csv" and p.is_file():
            wanted += [(path, start, length) for path, start, length, _ in _manifest_rows(p)]
        else:
            wanted.append((item, None, None))  # a file, or a sentence in the problems if it cannot be read
    excerpts: list[Excerpt] = []
    problems: list[PlanProblem] = []
    seen: set[tuple[str, float, float]] = set()
    durations: dict[str, float] = {}
    for path, start, length in wanted:
        try:
            if path not in durations:
                durations[path] = _duration_s(path)
            duration = durations[path]
        except AudioError as exc:
            if not any(pr.clip == path for pr in problems):
                problems.append(PlanProblem(path, str(exc)))
            continue
        whole = length is None and excerpt_seconds is None and start is None
        seconds = length if length is not None else (excerpt_seconds if excerpt_seconds is not None else duration)
        if not whole and durations_estimated(path):
            duration -= HEADER_SLACK_S  # stay clear of an end the header may overstate
        starts = [start] if start is not None else (
            excerpt_starts(path, duration, seconds, excerpts_per_file, seed) if excerpt_seconds is not None or length
            else [0.0])
        for s in starts:
            if s + seconds > duration + 1e-6:
                problems.append(PlanProblem(path, (
                    f"{path} is {duration:.2f} s long, shorter than the {seconds:g} s excerpt from {s:g} s; "
                    f"give a shorter --excerpt-seconds or leave the file out.")))
                continue
            e = Excerpt(clip=path, start_s=float(s), seconds=float(seconds), path=path, to_end=whole)
            if e.key not in seen:
                seen.add(e.key)
                excerpts.append(e)
    return excerpts, problems


def read_excerpt(excerpt: Excerpt) -> Audio:
    """The excerpt's samples: float32 ``(1, n)`` mono at the pipeline rate, read by seeking
    (:func:`mosapp.core.audio.read_excerpt`).

    Raises:
        AudioError: the file cannot be read, holds non-finite samples, or ends before the excerpt.
    """
    # A whole file reads a little past its header's length: what is there, to its real end.
    length = excerpt.seconds + (HEADER_SLACK_S if excerpt.to_end else 0.0)
    audio = read_excerpt_of_file(excerpt.path, excerpt.start_s, length, mono=True)
    rate = audio.sample_rate
    if not excerpt.to_end and audio.samples.shape[1] < int(round(excerpt.seconds * rate)) - 1:
        raise AudioError(f"{excerpt.path} ends at {excerpt.start_s + audio.samples.shape[1] / rate:.2f} s, before the "
                         f"excerpt's end at {excerpt.start_s + excerpt.seconds:.2f} s.")
    if audio.samples.shape[1] == 0:
        raise AudioError(f"{excerpt.path} holds no samples from {excerpt.start_s:g} s on.")
    samples = audio.samples if rate == PIPELINE_SAMPLE_RATE else resample(audio.samples, rate, PIPELINE_SAMPLE_RATE)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    info = AudioInfo(path=excerpt.path, sample_rate=PIPELINE_SAMPLE_RATE, channels=1, frames=samples.shape[1],
                     subtype="FLOAT", format="WAV")
    return Audio(samples=samples, sample_rate=PIPELINE_SAMPLE_RATE, info=info)


__all__ = ["AUDIO_SUFFIXES", "Excerpt", "InputError", "PlanProblem", "excerpt_starts", "plan_excerpts",
           "read_excerpt"]
