"""A study's clip globs are bounded: "/**/*.wav" is refused after a bounded walk, not after walking the disk."""

from __future__ import annotations

import glob
import os
import time

import pytest

from mosapp.core.errors import MosappError
from mosapp.core.files import bounded_glob
from mosapp.study.definition import load_study
from mosapp.study.errors import StudyError
from tests.study.conftest import REPO, write_study


@pytest.mark.parametrize("pattern", ["assets/**/*.flac", "tests/fixtures/sgc/*.sgc", "tests/**/conftest.py",
                                     "*/demo/*.f*", "assets/demo/pluck-demo.fla?", "tests/fixtures/sgc/[ab]*.sgc"])
def test_the_same_files_as_glob(pattern):
    full = str(REPO / pattern)
    assert [str(p) for p in bounded_glob(full, max_matches=500)] == sorted(
        p for p in glob.glob(full, recursive=True) if os.path.isfile(p))


def test_a_walk_is_bounded_in_entries_and_matches(tmp_path):
    for i in range(30):
        (tmp_path / f"d{i}").mkdir()
        for j in range(10):
            (tmp_path / f"d{i}" / f"{j}.wav").write_bytes(b"")
    with pytest.raises(MosappError, match="looks through more than 100 files and folders"):
        bounded_glob(str(tmp_path / "**" / "*.wav"), max_matches=1000, max_entries=100)
    with pytest.raises(MosappError, match="matches more than 20 files"):
        bounded_glob(str(tmp_path / "**" / "*.wav"), max_matches=20)
    assert len(bounded_glob(str(tmp_path / "**" / "*.wav"), max_matches=300)) == 300


def test_a_study_globbing_the_whole_disk_is_refused_quickly(tmp_path, monkeypatch):
    from mosapp.core import files

    monkeypatch.setattr(files, "MAX_GLOB_ENTRIES", 5000)  # any system's / has more than this below it
    study = write_study(tmp_path, "everything", database=str(tmp_path / "s.sqlite"))
    text = study.read_text(encoding="utf-8")
    study.write_text(text.replace(f'path = "{REPO / "assets" / "demo" / "pluck-demo.flac"}"',
                                  'path = "/**/*.wav"').replace('name = "pluck"\n', ""), encoding="utf-8")
    t0 = time.monotonic()
    with pytest.raises(StudyError) as info:
        load_study(study)
    assert time.monotonic() - t0 < 20
    assert '"/**/*.wav"' in str(info.value) and "narrow it" in str(info.value)
