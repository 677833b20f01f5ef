"""Blinding on disk and in the engine: nothing in the stimuli folder maps a file to its condition
without the database, and every buffer a listener gets is its own.

An attacker here has everything a listener could reach: the study file, the source clip, the
code (``render_key``), the stimuli folder (names, sizes, times, modes, headers) — everything but
the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from mosapp.study import StudyEngine, load_study, open_store
from mosapp.study.prepare import (
    DIR_MODE,
    FILE_MODE,
    NORMALISED_MTIME,
    excerpt_of,
    render_key,
    stimulus_file_name,
)
from mosapp.study.store import ConditionRow, StimulusRow, StudyRow
from tests.study.conftest import prepare, write_study


@pytest.fixture(scope="module")
def blind_study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("blind")
    path = write_study(root, "blind", database=str(root / "blind.sqlite"), stimuli_dir=str(root / "stimuli"))
    prepare(path)
    return path


def _mapping(definition) -> tuple[dict[str, str], str]:
    """file name → condition, and the study's salt, read from the database (what a listener lacks)."""
    with open_store(definition.database_url, create=False) as store, store.read() as s:
        rows = s.execute(select(StimulusRow.audio_file, ConditionRow.name)
                         .join(ConditionRow, StimulusRow.condition_id == ConditionRow.id)).all()
        salt = s.scalars(select(StudyRow.stimulus_salt)).one()
    return dict(rows), salt


def test_nothing_in_the_stimuli_folder_maps_a_file_to_its_condition(blind_study):
    from mosapp.core.audio import read_audio

    d = load_study(blind_study)
    mapping, salt = _mapping(d)
    folder = d.stimuli_dir
    files = sorted(folder.iterdir())
    # Only the audio: no sidecar, no index, no hidden file.
    assert {f.name for f in files} == set(mapping)
    assert all(f.suffix == ".wav" and not f.name.startswith(".") for f in files)
    # Names: not the content hash of anything the listener can recompute.
    source = read_audio(d.clips[0].path, mono=True).samples
    guessable = set()
    for clip in d.clips:
        excerpt = excerpt_of(source, clip, d.fade_ms)
        for condition in d.conditions:
            key = render_key(excerpt, condition, d)
            guessable |= {key, key[:32], hashlib.sha256(key.encode()).hexdigest()[:32],
                          hashlib.sha256(f"{clip.name}{condition}".encode()).hexdigest()[:32]}
            # With the salt from the database (and only then) the names follow.
            assert stimulus_file_name(salt, key) in mapping
            assert mapping[stimulus_file_name(salt, key)] == condition
    assert not {Path(f).stem for f in mapping} & guessable
    # Sizes, times, modes and headers are the same for every file: none follows the condition.
    stats = [f.stat() for f in files]
    assert len({s.st_size for s in stats}) == 1
    assert {s.st_mtime for s in stats} == {float(NORMALISED_MTIME)}
    assert {s.st_atime for s in stats} == {float(NORMALISED_MTIME)}
    assert {stat.S_IMODE(s.st_mode) for s in stats} == {FILE_MODE}
    assert stat.S_IMODE(folder.stat().st_mode) == DIR_MODE
    assert stat.S_IMODE(Path(d.database_url.removeprefix("sqlite:///")).stat().st_mode) == FILE_MODE
    raw = [f.read_bytes() for f in files]
    headers = {b[: b.index(b"data") + 8] for b in raw}
    assert len(headers) == 1  # everything before the samples is the same (no PEAK chunk, no dates)
    assert b"PEAK" not in next(iter(headers)) and b"LIST" not in next(iter(headers))
    # The database holds what a sidecar used to.
    with open_store(d.database_url, create=False) as store, store.read() as s:
        rows = s.scalars(select(StimulusRow)).all()
        assert all(r.gain_db is not None and r.loudness_lufs is not None for r in rows)
        assert any(r.payload_kbps for r in rows)


def test_the_names_differ_between_studies(blind_study, tmp_path):
    d = load_study(blind_study)
    other = write_study(tmp_path, "other", database=str(tmp_path / "o.sqlite"), stimuli_dir=str(tmp_path / "st"))
    prepare(other)
    assert not set(_mapping(d)[0]) & set(_mapping(load_study(other))[0])


def test_every_buffer_is_distinct_even_the_hidden_reference(blind_study):
    seen: list[np.ndarray] = []
    hidden = 0
    folder = load_study(blind_study).stimuli_dir
    for f in folder.iterdir():  # (the test before read them all)
        os.utime(f, (NORMALISED_MTIME, NORMALISED_MTIME))
    with StudyEngine.open(blind_study) as engine, engine.start_or_resume("B1") as session:
        while (trial := session.next_trial()) is not None:
            assert trial.sample is not trial.reference
            assert not np.shares_memory(trial.sample, trial.reference)
            assert not trial.sample.flags.writeable and not trial.reference.flags.writeable
            for earlier in seen:
                assert not np.shares_memory(trial.sample, earlier)
                assert not np.shares_memory(trial.reference, earlier)
            if np.array_equal(trial.sample, trial.reference):
                hidden += 1
                # The same audio, and nothing in the Trial to tell it apart.
                assert trial.stimulus_id != trial.reference_id
            again = session.next_trial()
            assert again.sample is not trial.sample and not np.shares_memory(again.sample, trial.sample)
            seen += [trial.sample, trial.reference]
            session.rate(trial, 4)
    d = load_study(blind_study)
    assert hidden == len(d.clips)
    # Playing left no access times behind (O_NOATIME): they still carry nothing.
    assert {f.stat().st_atime for f in d.stimuli_dir.iterdir()} == {float(NORMALISED_MTIME)}


def test_a_study_prepared_before_salted_names_still_opens_and_is_converted(tmp_path):
    """A database at schema revision 0002 with ``<key>.wav`` files and JSON sidecars: it opens
    (upgraded), its listener plays and rates, and the next prepare renames without rendering."""
    from alembic import command

    from mosapp.study.store import _alembic_config

    path = write_study(tmp_path, "old", conditions=["reference", "pghi-only"], starts=(0.0, 3.0))
    prepare(path)
    d = load_study(path)
    db = Path(d.database_url.removeprefix("sqlite:///"))
    con = sqlite3.connect(db)
    for file, key, kbps in con.execute("SELECT audio_file, cache_key, payload_kbps FROM stimuli").fetchall():
        (d.stimuli_dir / file).rename(d.stimuli_dir / f"{key}.wav")
        (d.stimuli_dir / f"{key}.json").write_text(json.dumps({"key": key, "bitrate_kbps": kbps}))
    con.execute("UPDATE stimuli SET audio_file = cache_key || '.wav'")
    con.commit()
    con.close()
    cfg = _alembic_config()
    cfg.set_main_option("sqlalchemy.url", d.database_url)
    command.downgrade(cfg, "0002")
    con = sqlite3.connect(db)
    assert "stimulus_salt" not in {r[1] for r in con.execute("PRAGMA table_info(studies)")}
    con.close()

    with StudyEngine.open(path) as engine, engine.start_or_resume("OLD1") as session:
        trial = session.next_trial()
        assert trial.sample.shape[1] > 0
        session.rate(trial, 5)
    result = prepare(path)
    assert result.rendered == 0
    mapping, salt = _mapping(d)
    assert salt and {f.name for f in d.stimuli_dir.iterdir()} == set(mapping)
    assert not list(d.stimuli_dir.glob("*.json"))
    with StudyEngine.open(path) as engine, engine.start_or_resume("OLD1") as session:
        assert session.progress.rated + session.progress.training_rated == 1
        assert session.next_trial() is not None
