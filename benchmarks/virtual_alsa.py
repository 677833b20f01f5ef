"""A sound card for machines without one: an ALSA configuration whose default output is the
``null`` device, optionally paced like real hardware. The playback benchmark and the playback
tests run PortAudio on it (in a process whose ``HOME`` holds the configuration).

    from benchmarks.virtual_alsa import write_virtual_alsa_config
    write_virtual_alsa_config(home, paced=True)   # then run a process with HOME=home
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

_PACER = '''"""Reads raw audio from stdin at {rate} frames per second and drops it: a sound card's pace."""
import fcntl, os, sys, time
rate, frame_bytes = int(sys.argv[1]), int(sys.argv[2])
fd = sys.stdin.fileno()
try:
    fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ: one page, so the writer moves in small steps
except OSError:
    pass
start, frames = time.perf_counter(), 0.0
while True:
    data = os.read(fd, 64 * frame_bytes)
    if not data:
        break
    frames += len(data) / frame_bytes
    wait = start + frames / rate - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
'''


def write_virtual_alsa_config(directory: str | Path, *, rate: int = 44_100, paced: bool = True) -> Path:
    """Write an ALSA configuration (``.asoundrc``) whose default output needs no sound card.

    Run a process with ``HOME=directory`` (PortAudio reads ``~/.asoundrc`` when sounddevice is
    imported) and its default output device is:

    * ``paced=False``: ALSA's ``null`` device, exactly ``pcm.!default { type null }``. It
      discards audio as fast as it comes: the callback runs back to back, far faster than real time.
    * ``paced=True``: the ``null`` device behind ALSA's ``file`` plugin, whose pipe is read by a
      small process at ``rate`` frames per second. The pipe's back-pressure paces the stream
      like a sound card: the callback runs once per block, the position advances in real time.
      (The samples go as 8-channel float64, 64 bytes a frame, so the one-page pipe holds 64
      frames and the stream moves in 1.5 ms steps.)

    Returns:
        The path of the ``.asoundrc`` written.
    """
    home = Path(directory)
    home.mkdir(parents=True, exist_ok=True)
    asoundrc = home / ".asoundrc"
    if not paced:
        asoundrc.write_text("pcm.!default {\n    type null\n}\n")
        return asoundrc
    pacer = home / "mosapp-alsa-pacer.py"
    pacer.write_text(_PACER.format(rate=int(rate)))
    command = f"|{shlex.quote(sys.executable)} {shlex.quote(str(pacer))} {int(rate)} 64"
    command = command.replace("\\", "\\\\").replace('"', '\\"')
    asoundrc.write_text(
        "# A paced null output for tests and benchmarks (benchmarks/virtual_alsa.py).\n"
        "pcm.mosapp_paced {\n"
        "    type file\n"
        '    slave.pcm "null"\n'
        f'    file "{command}"\n'
        '    format "raw"\n'
        "}\n"
        "pcm.!default {\n"
        "    type plug\n"
        f'    slave {{ pcm "mosapp_paced"; format FLOAT64_LE; rate {int(rate)}; channels 8 }}\n'
        "}\n"
    )
    return asoundrc
