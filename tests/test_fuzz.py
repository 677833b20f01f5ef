"""Property-based fuzzing of hostile inputs (hypothesis): .sgc header fields, command-line
option values and study-file fields.

What must hold for every generated input:

* no traceback, ever: exit status 0, or 2 with ONE line ``mosapp: error: <sentence>.``;
* a refused decode writes nothing (no output, no temporary file);
* a header edited by a tool that only recomputes the CRC-32 (the forger of issue 14) either
  is refused or decodes to exactly the audio of the untouched file (exit 0 with changed
  audio fails the test);
* allocations stay under a stated ceiling: decodes run in a separate process whose address
  space is capped (RLIMIT_AS) at what the warmed-up decoder has mapped plus
  :data:`CEILING_MIB`, so an allocation a header provokes beyond it fails loudly there
  instead of exhausting the machine; a crash of that process fails the test too.

Bounded in time: fixed example counts, derandomized (the same examples on every run, no
example database), about a minute on a 2-core machine in all.
"""

from __future__ import annotations

import copy
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mosapp.codecs import container
from mosapp.core import varint
from tests.helpers import ci, require_codec

REPO = Path(__file__).resolve().parent.parent
#: Address space a decode may add to the warmed-up decoder's, MiB. A 0.4 s clip needs a few
#: MiB; a header that could make mosapp allocate by its own numbers would need gigabytes.
CEILING_MIB = 1024
FAST = ["--phase", "pghi", "--device", "cpu"]
CODECS = ["pghi-only", "opus-12", "sgc-12"]

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- the decode server


class Decoder:
    """The capped `mosapp decode` process of tests/_decode_worker.py."""

    def __init__(self, warm: list[list[str]]):
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   NUMBA_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "_decode_worker.py"), "--ceiling-mib", str(CEILING_MIB),
             "--warm", *[json.dumps(a) for a in warm]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        hello = json.loads(self.proc.stdout.readline() or "{}")
        assert hello.get("ready"), hello

    def run(self, argv: list[str]) -> dict:
        self.proc.stdin.write(json.dumps({"argv": argv}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait(timeout=30)
            raise AssertionError(f"the decoder process died (exit status {code}) on {argv}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """A 0.4 s stereo 48 kHz clip coded with each codec that runs here, plus each file's
    decoded samples (the reference a forged header must either reproduce or be refused)."""
    from mosapp.cli.main import main
    from mosapp.codecs import get_codec

    folder = tmp_path_factory.mktemp("fuzz")
    rate = 48_000
    t = np.arange(int(0.4 * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t), 0.2 * np.sin(2 * np.pi * 550 * t)], axis=1)
    wav = folder / "in.wav"
    sf.write(str(wav), x.astype(np.float32), rate, subtype="PCM_24")
    files, warm = {}, []
    for name in CODECS:
        if not get_codec(name).availability().ok:
            if ci():
                require_codec(name)  # fails: CI's set-up runs every codec of the fuzz
            continue
        sgc = folder / f"{name}.sgc"
        assert main(["encode", str(wav), str(sgc), "--codec", name, *FAST]) == 0
        out = folder / f"{name}.wav"
        warm.append(["decode", str(sgc), str(out), *FAST])
        files[name] = sgc
    decoder = Decoder(warm)
    reference = {name: sf.read(str(folder / f"{name}.wav"), always_2d=True)[0] for name in files}
    yield {"folder": folder, "files": files, "reference": reference, "decoder": decoder, "wav": wav}
    decoder.close()


def assert_clean_exit(result: dict, what) -> None:
    assert result["traceback"] is None, f"{what}:\n{result['traceback']}"
    assert result["rc"] in (0, 2), (what, result)
    if result["rc"] == 2:
        lines = [line for line in result["stderr"].splitlines() if line.strip()]
        assert len(lines) == 1, (what, result["stderr"])
        assert lines[0].startswith("mosapp: error: ") and lines[0].endswith("."), (what, lines[0])
        assert "Traceback" not in lines[0]


# --------------------------------------------------------------------------- header mutations


def _split(data: bytes) -> tuple[int, dict, bytes]:
    (version,) = struct.unpack_from("<H", data, 4)
    header_len, pos = varint.decode(data, 6, max_bytes=9)
    payload_len, start = varint.decode(data, pos, max_bytes=9)
    return version, json.loads(data[start:start + header_len]), data[start + header_len: start + header_len + payload_len]


def _frame(version: int, header_text: bytes, payload: bytes) -> bytes:
    body = (container.MAGIC + struct.pack("<H", version) + varint.encode(len(header_text))
            + varint.encode(len(payload)) + header_text + payload)
    return body + struct.pack("<I", zlib.crc32(body))


def _paths(value, prefix=()) -> list[tuple]:
    """Every key path of a header: each value, and each container's slots for a new key."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


DEEP = "\u0000deep:"
SPECIAL = [0, 1, -1, 2, 44_100, 48_000, 8000, 2**31, 2**32 + 1, 2**63, 2**64, -(2**63), 10**30, 1e300, -1e300, 1e-300,
           0.0, -0.0, 0.5, 100.0, -160.0, 120.0, 3600 * 44_100, "thesis", "wide", "", "sgc-6", "sgc-24", "opus-6",
           "mp3-32", "pghi-only", "lowpass-7k", "aac-16", "0123456789abcdef", "ffffffffffffffff", None, True, False,
           [], {}, [0], [1e300], [float("inf")], [[0.0, 0.0]]]

values = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.integers(min_value=20, max_value=3000).map(lambda n: f"{DEEP}{n}"),  # nesting deeper than JSON parsers like
    st.lists(st.one_of(st.integers(-10, 10**6), st.floats(allow_nan=False, width=32)), max_size=4),
)

edits = st.tuples(st.integers(min_value=0), st.sampled_from(["replace", "replace", "replace", "delete", "add"]), values,
                  st.text(alphabet="abcdefghimnprstv", min_size=1, max_size=3),
                  st.booleans())  # aim at the codec's own parameters ("p"), where its declared ranges apply


def _apply(header: dict, path: tuple, op: str, value, new_key: str) -> None:
    value = copy.deepcopy(value)  # the sampled constants are shared between examples
    target = header
    for k in path[:-1]:
        target = target[k]
    last = path[-1]
    if op == "delete":
        if isinstance(target, dict):
            del target[last]
        else:
            target.pop(last)
    elif op == "add" and isinstance(target[last], dict):
        target[last][new_key] = value
    else:
        target[last] = value


_DEEP_TOKEN = re.compile(r'"\\u0000deep:(\d+)"')


def _serialise(header: dict) -> bytes:
    """Compact JSON (NaN/Infinity tokens allowed), the deep-nesting markers expanded in place."""
    text = json.dumps(header, allow_nan=True, ensure_ascii=True, separators=(",", ":"))
    text = _DEEP_TOKEN.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)
    return text.encode("ascii")


@settings(FUZZ, max_examples=300)
@given(codec_index=st.integers(min_value=0), edit_list=st.lists(edits, min_size=1, max_size=3),
       rebind=st.booleans())
def test_hostile_headers(clips, tmp_path_factory, codec_index, edit_list, rebind):
    names = sorted(clips["files"])
    name = names[codec_index % len(names)]
    good = clips["files"][name].read_bytes()
    version, header, payload = _split(good)
    original = json.dumps(header, sort_keys=True)
    for index, op, value, new_key, in_params in edit_list:
        paths = _paths(header)
        if in_params and isinstance(header.get("p"), dict):
            paths = [p for p in paths if p[0] == "p"] or paths
        _apply(header, paths[index % len(paths)], op, value, new_key)
    if rebind:
        # A writer that knows the whole format: the binding digest is recomputed as well, so
        # only the range checks and the model identifier stand between it and the decoder.
        try:
            header["b"] = container.binding_digest(header, payload)
        except (ValueError, TypeError, RecursionError):
            pass  # NaN/Infinity or deep strings: the forged digest stays as it was
    data = _frame(version, _serialise(header), payload)
    folder = tmp_path_factory.mktemp("case")
    bad, out = folder / "forged.sgc", folder / "out.wav"
    bad.write_bytes(data)
    result = clips["decoder"].run(["decode", str(bad), str(out), *FAST])
    what = (name, edit_list, rebind)
    event(f"{name} {'re-bound' if rebind else 'forged'}: exit {result['rc']}"
          + (f" ({result['stderr'].split(': ', 3)[-1][:40]})" if result["rc"] == 2 else ""))
    assert_clean_exit(result, what)
    if result["rc"] == 2:
        assert sorted(os.listdir(folder)) == ["forged.sgc"], what  # nothing written, no temporary left
        return
    if json.dumps(_split(data)[1], sort_keys=True) == original:
        pass  # the edits cancelled out
    if not rebind:
        decoded = sf.read(str(out), always_2d=True)[0]
        ref = clips["reference"][name]
        assert decoded.shape == ref.shape and np.array_equal(decoded, ref), f"exit 0 with changed audio: {what}"


# --------------------------------------------------------------------------- option values


option_text = st.one_of(st.integers(min_value=-(2**80), max_value=2**80).map(str), st.sampled_from(
    ["0", "1000", "1001", "-0", "+5", " 7", "1e3", "nan", "inf", "-inf", "0x10", "", "ten", "1_000", "٣"]),
    st.text(max_size=6))


@settings(FUZZ, max_examples=40)
@given(iterations=option_text, phase=st.sampled_from(["pghi", "pghi+fgla", "fgla", "tifresi", "magic"]),
       device=st.sampled_from(["cpu", "cuda", "tpu"]))
def test_hostile_decode_options(clips, tmp_path_factory, iterations, phase, device):
    name = "pghi-only"
    folder = tmp_path_factory.mktemp("opt")
    out = folder / "o.wav"
    argv = ["decode", str(clips["files"][name]), str(out), "--phase", phase, "--device", device,
            f"--fgla-iterations={iterations}"]
    try:
        value = int(iterations)
    except ValueError:
        value = None
    result = clips["decoder"].run(argv)
    assert_clean_exit(result, argv)
    in_range = value is not None and 0 <= value <= 1000
    if not in_range:
        assert result["rc"] == 2 and "--fgla-iterations" in result["stderr"], (argv, result)
    if result["rc"] == 2:
        assert os.listdir(folder) == [], argv


@settings(FUZZ, max_examples=150)
@given(option=st.sampled_from([("study report x", "--bootstrap", 0, 100_000), ("study report x", "--min-score", -3, 100),
                               ("study report x", "--max-fraction", 0.0, 1.0),
                               ("study export x", "--min-reference-trials", 1, 1000),
                               ("roundtrip a b", "--fgla-iterations", 0, 1000), ("train --config c", "--steps", 1, 10**7)]),
       value=option_text)
def test_numeric_options_are_bounded_at_parse_time(capsys, option, value):
    from mosapp.cli.main import build_parser

    command, flag, lo, hi = option
    try:
        args = build_parser().parse_args(command.split() + [f"{flag}={value}"])
    except SystemExit as exc:
        assert exc.code == 2
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("mosapp: error: argument " + flag), err
        return
    got = getattr(args, flag.lstrip("-").replace("-", "_"))
    assert lo <= got <= hi and got == got  # not NaN


# --------------------------------------------------------------------------- study fields


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


study_values = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=True),
                         st.sampled_from([0, 1, 20, 21, 1000, 1001, 10**9, 0.5, 60.0, 61.0, 1e300, -1.0]),
                         st.booleans(), st.text(max_size=5))
FIELDS = [("", "repetitions"), ("", "trials_per_listener"), ("", "seed"), ("", "fade_ms"), ("", "loudness_lufs"),
          ("training", "trials"), ("pipeline", "fgla_iterations"), ("clips", "length_s"), ("clips", "start_s")]


@settings(FUZZ, max_examples=120)
@given(field=st.sampled_from(FIELDS), value=study_values)
def test_hostile_study_fields(tmp_path_factory, field, value):
    from mosapp.study.definition import MAX_TRIALS_PER_LISTENER, parse_study
    from mosapp.study.errors import StudyError
    from tests.study.conftest import study_toml

    table, key = field
    text = study_toml()
    line = f"{key} = {_toml_value(value)}"
    if table == "":
        text = line + "\n" + text
    elif table == "training":
        text = text.replace("[training]\ntrials = 1", f"[training]\n{line}")
    elif table == "pipeline":
        text = text.replace("[pipeline]\n", f"[pipeline]\n{line}\n")
    else:
        old = next(ln for ln in text.splitlines() if ln.startswith(f"{key} ="))
        text = text.replace(old, line)
    assert line in text
    source = tmp_path_factory.mktemp("study") / "f.toml"
    try:
        d = parse_study(text, source=source, check_codecs=False)
    except StudyError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.endswith("."), msg
        return
    assert 1 <= d.trials_per_listener <= MAX_TRIALS_PER_LISTENER
    assert 1 <= d.repetitions <= 20 and 0 <= d.training.trials <= 100 and 0 <= d.seed < 2**63
    assert 0 <= d.pipeline.fgla_iterations <= 1000 and 0 <= d.fade_ms <= 1000
    assert all(0.5 <= c.length_s <= 60 and 0 <= c.start_s for c in d.clips)
