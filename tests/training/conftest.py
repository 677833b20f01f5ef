"""A tiny ``mosapp train`` config over three synthetic tracks (two trained on, one held out)."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from tests.helpers import music_like


def write_config(tmp_path: Path, steps: int = 2, extra: str = "") -> Path:
    audio_dir = tmp_path / "music"
    audio_dir.mkdir(exist_ok=True)
    for i in range(2):
        sf.write(audio_dir / f"t{i}.wav", music_like(3.0, seed=i)[0], 44100)
    sf.write(audio_dir / "held.wav", music_like(3.0, seed=9)[0], 44100)
    cfg = tmp_path / "sgc-test.toml"
    cfg.write_text(f"""
[model]
name = "sgc-8"
n = 16
m = 24
[data]
train = ["{audio_dir}/*.wav"]
heldout = ["{audio_dir}/held.wav"]
cache = "{tmp_path}/cache"
[train]
steps = {steps}
batch = 2
patch_frames = 192
log_every = 1
checkpoint_every = 1
threads = 2
device = "cpu"
{extra}
[output]
dir = "{tmp_path}/run"
export = "{tmp_path}/models/sgc-8"
""")
    return cfg
