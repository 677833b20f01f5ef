"""Revision 0007 on a real PostgreSQL server: the metric columns' values move into the long table and back."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from mosapp.study.store import _alembic_config, open_store, read_stimulus_metrics
from tests.study.postgres import require_server, start_server


@pytest.fixture(scope="module")
def server():
    require_server()
    srv = start_server()
    try:
        yield srv
    finally:
        srv.stop()


def _migrate(url: str, to: str, down: bool = False) -> None:
    from alembic import command

    engine = create_engine(url)
    with engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)
    engine.dispose()


def test_revision_0007_moves_the_metrics_on_postgresql_and_back(server):
    server.create_lab("metrics_lab", "lab-pw", "metrics_lab")
    url = server.url("metrics_lab", "metrics_lab", "lab-pw")
    _migrate(url, "0006")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO studies (id, name, title, test_type, definition_toml, design_json, created_at) "
            "VALUES (1, 'old', 'Old', 'acr', '', '{}', '2025-01-01 00:00:00');"
            "INSERT INTO clips (id, study_id, name, source_file, start_s, length_s, position) "
            "VALUES (1, 1, 'c', 'c.wav', 0, 1, 0);"
            "INSERT INTO conditions (id, study_id, name, is_reference, in_plan, nominal_kbps, position) "
            "VALUES (1, 1, 'opus-12', false, true, 12, 0), (2, 1, 'reference', true, true, NULL, 1);"
            "INSERT INTO stimuli (id, study_id, clip_id, condition_id, cache_key, audio_file, sample_rate, channels, "
            "n_samples, payload_kbps, loudness_lufs, gain_db, created_at, mel_distance, si_sdr_db, low_band_correlation) "
            "VALUES (1, 1, 1, 1, 'k1', 'a.wav', 44100, 1, 44100, 12.375, -20, -3, '2025-01-01 00:00:00', 1.25, -7.5, 0.5), "
            "(2, 1, 1, 2, 'k2', 'b.wav', 44100, 1, 44100, NULL, -20, -3, '2025-01-01 00:00:00', NULL, NULL, NULL);"))
    engine.dispose()
    with open_store(url) as store, store.read() as s:
        assert read_stimulus_metrics(s) == {1: {"low_band_correlation": 0.5, "mel_distance": 1.25, "si_sdr_db": -7.5}}
    _migrate(url, "0006", down=True)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, mel_distance, si_sdr_db, visqol, low_band_correlation FROM stimuli "
                                 "ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, 1.25, -7.5, None, 0.5), (2, None, None, None, None)]
