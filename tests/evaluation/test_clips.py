"""mosapp.evaluation.clips: what an evaluation runs on (files, folders, manifests, seeded excerpts)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mosapp.core.audio import read_audio
from mosapp.evaluation.clips import Excerpt, InputError, excerpt_starts, plan_excerpts, read_excerpt
from tests.helpers import RATE, music_like


def _write(path, seconds, rate=RATE, channels=1, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), music_like(seconds, rate, seed=seed, channels=channels).T, rate)
    return str(path)


def test_folders_are_searched_recursively_and_files_keep_the_order_given(tmp_path):
    a = _write(tmp_path / "music" / "b" / "two.flac", 3.0)
    b = _write(tmp_path / "music" / "a" / "one.wav", 3.0)
    (tmp_path / "music" / "notes.txt").write_text("not audio")
    c = _write(tmp_path / "single.ogg", 2.0)
    excerpts, problems = plan_excerpts([c, str(tmp_path / "music")])
    assert problems == []
    assert [e.clip for e in excerpts] == [c, b, a]  # the input's order, then the folder sorted
    assert all(e.start_s == 0.0 for e in excerpts)
    assert excerpts[0].seconds == pytest.approx(2.0)


def test_excerpts_are_stratified_seeded_and_inside_the_file(tmp_path):
    f = _write(tmp_path / "long.wav", 20.0)
    one, _ = plan_excerpts([f], excerpt_seconds=3.0, excerpts_per_file=4, seed=7)
    two, _ = plan_excerpts([f], excerpt_seconds=3.0, excerpts_per_file=4, seed=7)
    other, _ = plan_excerpts([f], excerpt_seconds=3.0, excerpts_per_file=4, seed=8)
    assert one == two and one != other
    starts = [e.start_s for e in one]
    width = (20.0 - 3.0) / 4
    for k, s in enumerate(starts):
        assert k * width <= s <= (k + 1) * width  # one per stratum: spread over the whole file
        assert s + 3.0 <= 20.0
    # The same file name draws the same positions in any folder and any run.
    assert excerpt_starts("/x/long.wav", 20.0, 3.0, 4, 7) == starts


def test_manifest_rows_with_and_without_positions(tmp_path):
    f = _write(tmp_path / "audio" / "clip.wav", 10.0)
    manifest = tmp_path / "list.csv"
    manifest.write_text("# comments first\npath,start_s,length_s\naudio/clip.wav,1.5,2\naudio/clip.wav,4\naudio/clip.wav\n")
    excerpts, problems = plan_excerpts([str(manifest)], excerpt_seconds=3.0)
    assert problems == []
    assert [(e.start_s, e.seconds) for e in excerpts][:2] == [(1.5, 2.0), (4.0, 3.0)]
    assert excerpts[2].seconds == 3.0 and excerpts[0].path == str(tmp_path / "audio" / "clip.wav")
    assert f == excerpts[0].path
    bad = tmp_path / "bad.csv"
    bad.write_text("audio/clip.wav,soon\n")
    with pytest.raises(InputError, match="start_s \"soon\" is not a number"):
        plan_excerpts([str(bad)])


def test_a_short_or_unreadable_file_is_a_sentence_and_the_others_go_on(tmp_path):
    good = _write(tmp_path / "good.wav", 5.0)
    short = _write(tmp_path / "short.wav", 1.0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    excerpts, problems = plan_excerpts([good, short, str(broken), str(tmp_path / "gone.flac")], excerpt_seconds=2.0)
    assert [e.clip for e in excerpts] == [good]
    reasons = {p.clip: p.reason for p in problems}
    assert "shorter than the 2 s excerpt" in reasons[short]
    assert "cannot be read as audio" in reasons[str(broken)]
    assert "does not exist" in reasons[str(tmp_path / "gone.flac")]
    assert all(r.count(".") >= 1 and "\n" not in r for r in reasons.values())


def test_read_excerpt_seeks_to_the_same_samples_the_whole_file_has(tmp_path):
    f = _write(tmp_path / "stereo.wav", 6.0, channels=2, seed=3)
    whole = read_audio(f).samples  # mono mix at the pipeline rate
    e = Excerpt(clip=f, start_s=2.5, seconds=1.5, path=f)
    part = read_excerpt(e)
    s, n = int(2.5 * RATE), int(1.5 * RATE)
    assert part.samples.shape == (1, n)
    np.testing.assert_array_equal(part.samples, whole[:, s: s + n])
    # Another rate is resampled to the pipeline's.
    g = _write(tmp_path / "low.wav", 3.0, rate=22_050)
    assert read_excerpt(Excerpt(g, 0.5, 2.0, g)).samples.shape == (1, 2 * RATE)


def test_a_whole_mp3_is_read_to_its_real_end_and_excerpts_keep_clear_of_it(tmp_path):
    # libsndfile's MP3 header count is an estimate: a whole file is read to where its audio really ends.
    mp3 = tmp_path / "song.mp3"
    sf.write(str(mp3), music_like(4.0, seed=2).T, RATE, format="MP3")
    (whole,), problems = plan_excerpts([str(mp3)])
    assert not problems and whole.to_end
    audio = read_excerpt(whole)
    assert abs(audio.samples.shape[1] / RATE - whole.seconds) < 0.2
    parts, _ = plan_excerpts([str(mp3)], excerpt_seconds=1.0, excerpts_per_file=3, seed=1)
    assert all(e.start_s + e.seconds <= whole.seconds - 1.0 + 1e-9 and not e.to_end for e in parts)
    for e in parts:
        assert read_excerpt(e).samples.shape == (1, RATE)
