"""Study files: the schema, its defaults, and one clear sentence for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosapp.study.definition import REFERENCE, load_study, parse_study
from mosapp.study.errors import StudyError
from mosapp.study.types import get_test_type
from tests.study.conftest import DEMO_CLIP, REPO, study_toml, write_study


def _error(text: str, tmp_path: Path, **kwargs) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StudyError) as info:
        load_study(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    return message


def test_a_valid_study_has_documented_defaults(tmp_path):
    d = load_study(write_study(tmp_path, "mine"))
    assert d.name == "mine" and d.test_type == "dcr" and d.scale == "DMOS"
    assert d.labels == get_test_type("dcr").labels
    assert [c.name for c in d.clips] == ["pluck@0s", "pluck@3s", "pluck@6s"]
    assert d.clips[0].path == DEMO_CLIP.resolve() and d.clips[1].start_s == 3.0 and d.clips[0].length_s == 1.0
    assert d.trials_per_listener == len(d.clips) * len(d.conditions)
    assert d.has_hidden_reference and d.training.trials == 1
    assert d.pipeline.phase == "pghi" and d.pipeline.device == "cpu"
    assert d.database_url == "sqlite:///" + str((tmp_path / "data" / "mine" / "study.sqlite").resolve())
    assert d.stimuli_dir == (tmp_path / "data" / "mine" / "stimuli").resolve()


def test_acr_labels_and_design_hash(tmp_path):
    d = load_study(write_study(tmp_path, "a", test_type="acr"))
    assert d.labels == get_test_type("acr").labels and d.scale == "MOS"
    d2 = load_study(write_study(tmp_path / "x", "a", test_type="acr"))
    assert d.design_hash() == d2.design_hash()
    d3 = load_study(write_study(tmp_path / "y", "a", test_type="acr", starts=(0.0, 3.0)))
    assert d3.design_hash() != d.design_hash()


def test_globs_and_relative_paths(tmp_path):
    import shutil

    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("b", "a"):
        shutil.copy(DEMO_CLIP, clips / f"{name}.flac")
    text = study_toml().replace(f'path = "{DEMO_CLIP}"\nname = "pluck"', 'path = "clips/*.flac"')
    (tmp_path / "g.toml").write_text(text)
    d = load_study(tmp_path / "g.toml")
    assert [c.name for c in d.clips] == ["a@0s", "a@3s", "a@6s", "b@0s", "b@3s", "b@6s"]


def test_malformed_toml_names_the_file_and_place(tmp_path):
    msg = _error('title = "x"\nseed = = 3\nconditions = []\n', tmp_path)
    assert "bad.toml is not valid TOML" in msg and "line" in msg


@pytest.mark.parametrize("replace, field", [
    (('seed = 11', 'seed = "eleven"'), "field seed"),
    (('test_type = "dcr"', 'test_type = "abx"'), "field test_type"),
    (('loudness_lufs = -23.0', 'loudness_lufs = 5.0'), "field loudness_lufs"),
    (('length_s = 1.0', 'length_s = 0.1'), "field clips[0].length_s"),
    (('length_s = 1.0', 'length_s = 20.0'), "field clips[0].start_s"),
    (('phase = "pghi"', 'phase = "magic"'), "field pipeline.phase"),
    (('metrics = [', 'metrics = ["pesq", '), "field pipeline.metrics"),
    (('seed = 11', 'seed = 11\nrepetitons = 2'), "unknown field repetitons"),
    (('trials = 1', 'trials = 1\nconditions = ["opus-99k"]'), "field training.conditions"),
])
def test_a_bad_field_is_named(tmp_path, replace, field):
    text = study_toml()
    assert replace[0] in text
    msg = _error(text.replace(replace[0], replace[1], 1), tmp_path)
    assert field in msg


def test_labels_must_be_five(tmp_path):
    msg = _error(study_toml(extra='labels = ["bad", "good"]'), tmp_path)
    assert "field labels" in msg and "exactly 5" in msg


def test_missing_clip_file(tmp_path):
    msg = _error(study_toml().replace(str(DEMO_CLIP), str(tmp_path / "nope.flac")), tmp_path)
    assert "clips[0].path" in msg and "nope.flac" in msg and "does not exist" in msg


def test_glob_matching_nothing(tmp_path):
    msg = _error(study_toml().replace(f'path = "{DEMO_CLIP}"', 'path = "none/*.wav"'), tmp_path)
    assert "clips[0].path" in msg and "matches no file" in msg


def test_unknown_codec_lists_the_known_ones(tmp_path):
    msg = _error(study_toml(conditions=["reference", "pghi-only", "zip-64"]), tmp_path)
    assert 'conditions[2]' in msg and '"zip-64"' in msg and "pghi-only" in msg and "known codecs" in msg


def test_unknown_codec_is_tolerated_when_not_checked(tmp_path):
    path = write_study(tmp_path, conditions=["reference", "zip-64"])
    assert load_study(path, check_codecs=False).conditions == ("reference", "zip-64")


def test_duplicate_condition_names(tmp_path):
    msg = _error(study_toml(conditions=["reference", "pghi-only", "pghi-only"]), tmp_path)
    assert '"pghi-only" twice' in msg and "unique" in msg


def test_duplicate_clip_names(tmp_path):
    text = study_toml(starts=(0.0,)) + f'[[clips]]\npath = "{DEMO_CLIP}"\nname = "pluck"\nlength_s = 1.0\n'
    msg = _error(text, tmp_path)
    assert 'two clips are named "pluck"' in msg


def test_trials_per_listener_must_balance(tmp_path):
    msg = _error(study_toml(conditions=["reference", "pghi-only"], trials=3), tmp_path)
    assert "trials_per_listener" in msg and "multiple" in msg
    msg = _error(study_toml(conditions=["reference", "pghi-only"], trials=8), tmp_path)
    assert "trials_per_listener" in msg and "at most 6" in msg


def test_visqol_needs_one_second(tmp_path):
    msg = _error(study_toml(length_s=0.6, metrics=["visqol"]), tmp_path)
    assert "pipeline.metrics" in msg and "visqol" in msg


def test_missing_study_file_and_bare_names(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "absent.toml")
    # A bare name is looked up in studies/.
    d = load_study("demo", check_codecs=False)
    assert d.source.resolve() == (REPO / "studies" / "demo.toml").resolve()


def test_the_demo_study_runs_on_the_shipped_clip():
    d = load_study(REPO / "studies" / "demo.toml", check_codecs=False)
    assert REFERENCE in d.conditions and d.test_type == "dcr"
    assert all(c.path == DEMO_CLIP.resolve() for c in d.clips) and len(d.clips) >= 3
    assert d.training.trials > 0 and set(d.training.conditions) <= set(d.conditions)


def test_parse_without_file():
    d = parse_study(study_toml(), name="inline")
    assert d.name == "inline" and d.source is None


# -- bounds: every numeric field has a documented ceiling (studies/README.md) -----------------


@pytest.mark.parametrize("replace, field", [
    (('seed = 11', 'seed = 11\nrepetitions = 1000000000'), "field repetitions"),
    (('seed = 11', 'seed = 11\nrepetitions = 21'), "field repetitions"),
    (('seed = 11', 'seed = 11\nrepetitions = 20'), "more than 1000"),  # 3 clips x 3 conditions x 20 is fine...
    (('seed = 11', 'seed = 11\ntrials_per_listener = 3000000'), "field trials_per_listener"),
    (('seed = 11', 'seed = 18446744073709551615'), "field seed"),
    (('fade_ms = 10.0', 'fade_ms = 1e300'), "field fade_ms"),
    (('trials = 1', 'trials = 1000000'), "field training.trials"),
    (('length_s = 1.0', 'length_s = 1e12'), "field clips[0].length_s"),
    (('start_s = [0.0, 3.0, 6.0]', 'start_s = [0.0, 3.0, 1e300]'), "field clips[0].start_s"),
    (('phase = "pghi"', 'phase = "pghi"\nfgla_iterations = 99999999999999'), "field pipeline.fgla_iterations"),
    (('phase = "pghi"', 'phase = "pghi"\nfgla_iterations = -3'), "field pipeline.fgla_iterations"),
])
def test_numeric_fields_have_ceilings(tmp_path, replace, field):
    text = study_toml()
    assert replace[0] in text
    if field == "more than 1000":
        # ...but with 40 starts it is 40 x 3 x 20 = 2400 trials per listener.
        starts = "[" + ", ".join(f"{0.1 * i:.1f}" for i in range(40)) + "]"
        text = text.replace("start_s = [0.0, 3.0, 6.0]", f"start_s = {starts}").replace("length_s = 1.0", "length_s = 0.5")
        text = text.replace("fade_ms = 10.0", "fade_ms = 5.0")
    msg = _error(text.replace(replace[0], replace[1], 1), tmp_path)
    assert field in msg, msg


def test_rendered_audio_ceiling_names_the_fields(tmp_path):
    # 400 excerpts of 60 s x 3 conditions = 20 h: more than the 10 h ceiling. The clip's
    # length is not known from a header-less path, so use a long WAV written here.
    import numpy as np
    import soundfile as sf

    from mosapp.study.definition import MAX_RENDERED_S

    long_wav = tmp_path / "long.wav"
    sf.write(str(long_wav), np.zeros((8000 * 460,), dtype=np.int16), 8000, subtype="PCM_16")
    starts = "[" + ", ".join(str(i) for i in range(400)) + "]"
    text = study_toml().replace(f'path = "{DEMO_CLIP}"', f'path = "{long_wav}"').replace(
        "start_s = [0.0, 3.0, 6.0]", f"start_s = {starts}").replace("length_s = 1.0", "length_s = 60.0")
    msg = _error(text, tmp_path, check_codecs=False)
    assert "fields clips and conditions" in msg and f"{MAX_RENDERED_S / 3600:g} h" in msg, msg


def test_the_ceilings_themselves_are_accepted(tmp_path):
    text = study_toml().replace("seed = 11", "seed = 9223372036854775807\nrepetitions = 20").replace(
        'phase = "pghi"', 'phase = "pghi"\nfgla_iterations = 1000')
    d = parse_study(text, source=tmp_path / "ok.toml")
    assert d.repetitions == 20 and d.seed == 2**63 - 1 and d.pipeline.fgla_iterations == 1000
