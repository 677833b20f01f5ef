"""Study databases written before the package refactor open, and read out, as they did then.

``tests/fixtures/study`` holds three databases (ACR, MUSHRA, CCR at Alembic revision 0005)
made by the code of commit 8e2a989, with the outputs its CLI printed and wrote for them
(see that folder's README). Here today's CLI runs the same commands on copies of them: the
status must read the same, and every CSV and report must hold the same values. A database
at an older revision is upgraded on open, so the copies may change; the fixtures never do.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mosapp.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STUDY = FIXTURES / "study"
MANIFEST = json.loads((STUDY / "expected.json").read_text(encoding="utf-8"))
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A copy of the fixtures with the same relative layout (the study files stay byte-identical)."""
    root = tmp_path_factory.mktemp("fixtures")
    (root / "sgc").mkdir()
    shutil.copy(FIXTURES / "sgc" / "source.flac", root / "sgc" / "source.flac")
    shutil.copytree(STUDY, root / "study", ignore=shutil.ignore_patterns("expected*", "*.py", "*.md"))
    return root


def same_text(got: str, want: str, rel: float = 1e-6) -> None:
    """Equal apart from numbers, which may differ in their last digits (BLAS, thread count)."""
    assert NUMBER.sub("#", got) == NUMBER.sub("#", want), f"got:\n{got}\nwant:\n{want}"
    for g, w in zip(NUMBER.findall(got), NUMBER.findall(want)):
        assert float(g) == pytest.approx(float(w), rel=rel, abs=1e-9), (g, w)


def run(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


CASES = [(name, key) for name, entry in MANIFEST.items() for key in entry["commands"]]


@pytest.mark.parametrize(("name", "key"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_a_database_from_before_reads_out_the_same(workspace, tmp_path, capsys, name, key):
    command = MANIFEST[name]["commands"][key]
    out = tmp_path / "out"
    argv = [str(workspace / "study" / f"{name}.toml") if a.endswith(f"study/{name}.toml") else a for a in command["argv"][1:]]
    argv = [str(out) if a == "OUT" else a for a in argv]
    stdout = run(argv, capsys)
    expected_dir = FIXTURES.parent.parent / command["out"]
    want = (expected_dir / "stdout.txt").read_text(encoding="utf-8")
    # Export and report end with the paths they wrote: those name the folder they were given.
    same_text(stdout.replace(str(out), command["out"]), want)
    for expected in sorted(expected_dir.iterdir()):
        if expected.name == "stdout.txt":
            continue
        written = out / expected.name
        assert written.exists(), f"{expected.name} was not written"
        if expected.suffix == ".csv":
            got_frame = pd.read_csv(written)
            want_frame = pd.read_csv(expected)
            pd.testing.assert_frame_equal(got_frame, want_frame, check_exact=False, rtol=1e-6, atol=1e-9)
        elif expected.suffix == ".txt":
            same_text(written.read_text(encoding="utf-8"), expected.read_text(encoding="utf-8"))
        else:
            assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

