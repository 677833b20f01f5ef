"""A real X server for the tests that draw on one (tests/gui/test_real_display.py, test_results_view.py):
Xvfb started on a free display, and the environment a child process needs to draw there. The
``display`` fixture (tests/gui/conftest.py) starts one per module.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "out" / "screenshots"
SCREEN = (1600, 1000)


@contextmanager
def xvfb_display(size: tuple[int, int] = SCREEN) -> Iterator[str]:
    """A fresh Xvfb server of ``size`` pixels; its display name (``:N``)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is not installed; scripts/setup installs it (Debian package xvfb).")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", f"{size[0]}x{size[1]}x24",
                               "-nolisten", "tcp"], pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 30
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([read_fd], [], [], 1.0)
        if ready:
            chunk = os.read(read_fd, 16)
            if not chunk:
                break
            number += chunk
    os.close(read_fd)
    if not number.strip():
        server.kill()
        pytest.fail("Xvfb did not start")
    try:
        yield f":{int(number)}"
    finally:
        server.terminate()
        server.wait(10)


def env_for(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return env
