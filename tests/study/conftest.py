"""Fixtures of the study tests: small studies on the shipped demo clip, prepared once per run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mosapp.core.job import drive

REPO = Path(__file__).resolve().parents[2]
DEMO_CLIP = REPO / "assets" / "demo" / "pluck-demo.flac"


def conditions_available() -> list[str]:
    """reference, pghi-only and the low anchor where the classic codecs are built."""
    from mosapp.codecs import codec_names

    names = ["reference", "pghi-only"]
    if "lowpass-3.5k" in codec_names():
        names.append("lowpass-3.5k")
    return names


def study_toml(*, conditions: list[str] | None = None, test_type: str = "dcr", starts=(0.0, 3.0, 6.0),
               length_s: float = 1.0, training: int = 1, extra: str = "", database: str | None = None,
               stimuli_dir: str | None = None, trials: int | None = None, metrics=None) -> str:
    """The text of a fast study: 1 s excerpts, the "pghi" phase backend, cheap metrics."""
    conditions = conditions or conditions_available()
    metrics = metrics if metrics is not None else ["mel_distance", "si_sdr_db", "spectral_convergence_db",
                                                   "low_band_distance_db", "low_band_correlation"]
    lines = [
        'title = "Test study"',
        f'test_type = "{test_type}"',
        f"conditions = {conditions!r}".replace("'", '"'),
        "seed = 11",
        "loudness_lufs = -23.0",
        "fade_ms = 10.0",
    ]
    if trials is not None:
        lines.append(f"trials_per_listener = {trials}")
    if database:
        lines.append(f'database = "{database}"')
    if stimuli_dir:
        lines.append(f'stimuli_dir = "{stimuli_dir}"')
    lines.append(extra)
    lines += [
        "[training]", f"trials = {training}",
        "[pipeline]", 'phase = "pghi"', 'device = "cpu"', f"metrics = {metrics!r}".replace("'", '"'),
        "[[clips]]", f'path = "{DEMO_CLIP}"', 'name = "pluck"', f"start_s = {list(starts)!r}",
        f"length_s = {length_s}",
    ]
    return "\n".join(lines) + "\n"


def write_study(folder: Path, name: str = "t", **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(study_toml(**kwargs), encoding="utf-8")
    return path


def prepare(path: Path, **kwargs):
    """Prepare the study at ``path``; returns the PrepareResult."""
    from mosapp.study import load_study, open_store, prepare_study

    definition = load_study(path)
    with open_store(definition.database_url) as store:
        return drive(prepare_study(definition, store, **kwargs))


def prepared(root: Path, name: str, **kwargs) -> Path:
    """The study ``name`` written in ``root`` (its database and stimuli there too) and prepared."""
    path = write_study(root, name, database=str(root / f"{name}.sqlite"), stimuli_dir=str(root / "stimuli"),
                       **kwargs)
    prepare(path)
    return path


def copy_study(template: Path, tmp_path: Path) -> Path:
    """The prepared study ``template`` with a copy of its database of its own in ``tmp_path`` (stimuli shared)."""
    source = template.parent / f"{template.stem}.sqlite"
    db = tmp_path / source.name
    shutil.copy(source, db)
    path = tmp_path / template.name
    path.write_text(template.read_text(encoding="utf-8").replace(str(source), str(db)), encoding="utf-8")
    return path


#: A gold-only clip (a trap) to append to a study's TOML (with its [[gold]] entry).
TRAP_CLIP = f'''
[[clips]]
path = "{DEMO_CLIP}"
name = "trap"
start_s = 9.0
length_s = 1.0
gold_only = true
'''


def listen_through(study: Path, scores: dict) -> None:
    """Each listener code of ``scores`` rates every trial of ``study`` with ``scores[code](trial)``."""
    from mosapp.study import StudyEngine

    with StudyEngine.open(study) as engine:
        for code, score in scores.items():
            with engine.start_or_resume(code, audio_device="test device") as session:
                while (trial := session.next_trial()) is not None:
                    session.rate(trial, score(trial), play_counts=(1, 1), listening_time_s=2.0, response_time_s=0.5)


def condition_lookup(study: Path):
    """trial -> its condition's name, looked up behind the listener's back (for scripted scores)."""
    from sqlalchemy import select

    from mosapp.study import StudyEngine
    from mosapp.study.store import ConditionRow, StimulusRow, TrialRow

    def lookup(trial):
        with StudyEngine.open(study) as engine, engine.store.read() as s:
            return s.scalar(select(ConditionRow.name).join(StimulusRow, StimulusRow.condition_id == ConditionRow.id)
                            .join(TrialRow, TrialRow.stimulus_id == StimulusRow.id)
                            .where(TrialRow.trial_token == trial.trial_id))
    return lookup


def scripted_scores(study: Path) -> dict:
    """Four listeners' scores for the DCR ``study``: L1-L3 agree (L2 a point lower on every other coded
    sample), BAD rates the reference 1 and so fails screening."""
    condition = condition_lookup(study)
    good = {"reference": 5, "pghi-only": 4, "lowpass-3.5k": 2}

    def unsure(t):  # a point lower on every other coded sample
        c = condition(t)
        return good.get(c, 3) - (t.index % 2 if c != "reference" else 0)

    return {
        "L1": lambda t: good.get(condition(t), 3),
        "L2": unsure,
        "L3": lambda t: good.get(condition(t), 3),
        "BAD": lambda t: 1 if condition(t) == "reference" else 3,  # fails screening
    }


def cli(argv: list[str]) -> int:
    """``mosapp study …`` through mosapp.cli.main.main (its parser, option bounds and error handling)."""
    from mosapp.cli.main import main

    try:
        return main(argv)
    except SystemExit as exc:  # argparse's usage errors: one line, status 2
        return exc.code


@pytest.fixture(scope="session")
def prepared_template(tmp_path_factory) -> dict[str, Path]:
    """A DCR study and an ACR study over the same stimuli, prepared once; tests copy the databases."""
    root = tmp_path_factory.mktemp("study-template")
    stimuli = root / "stimuli"
    dcr = write_study(root, "dcr", database=str(root / "dcr.sqlite"), stimuli_dir=str(stimuli))
    acr = write_study(root, "acr", test_type="acr", database=str(root / "acr.sqlite"), stimuli_dir=str(stimuli))
    prepare(dcr)
    prepare(acr)
    return {"root": root, "dcr": dcr, "acr": acr, "stimuli": stimuli}


@pytest.fixture
def study(prepared_template, tmp_path) -> Path:
    """A prepared DCR study of this test's own (its own database; stimuli shared, read-only use)."""
    return _copy(prepared_template, "dcr", tmp_path)


@pytest.fixture
def acr_study(prepared_template, tmp_path) -> Path:
    return _copy(prepared_template, "acr", tmp_path)


def _copy(template: dict[str, Path], kind: str, tmp_path: Path) -> Path:
    db = tmp_path / f"{kind}.sqlite"
    shutil.copy(template["root"] / f"{kind}.sqlite", db)
    text = template[kind].read_text(encoding="utf-8").replace(str(template["root"] / f"{kind}.sqlite"), str(db))
    path = tmp_path / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    return path
