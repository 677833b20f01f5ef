"""Can Qt open a window here? Checked before Qt starts (no Qt import in this module).

Qt aborts the whole process (``qt.qpa.plugin: Could not load the Qt platform plugin "xcb"``,
exit code 134) when its X11 platform plugin misses a system library, and its message then
blames ``xcb-cursor0`` whatever is missing; it aborts the same way when the X display does not
answer. :func:`missing_xcb_libraries` asks ``ldd`` which libraries the plugin cannot find, and
:func:`x_display_reachable` knocks on the display's socket, so ``mosapp gui`` can say which.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import socket
import subprocess
from pathlib import Path


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, or None when PySide6 (or the plugin) is not installed."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def missing_xcb_libraries(plugin: Path | None = None) -> list[str]:
    """Shared libraries the X11 platform plugin (or ``plugin``) links but the loader cannot find,
    e.g. ``["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]``; empty when all are there (or when
    there is no ``ldd`` to ask)."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({m.group(1) for m in re.finditer(r"^\s*(\S+)\s+=>\s+not found", out, re.MULTILINE)})


def x_display_reachable(display: str, timeout_s: float = 2.0) -> bool:
    """Whether an X server answers on ``display`` (``:99``, ``:0.0``, ``unix:1``, ``host:0``).

    A local display is its Unix socket ``/tmp/.X11-unix/X<n>`` (or the abstract one Xvfb also
    opens); a remote one is TCP port 6000 + n. An unparsable name counts as reachable (Qt
    then says what is wrong with it).
    """
    m = re.fullmatch(r"(?P<host>[^:/]*):(?P<n>\d+)(?:\.\d+)?", display.strip())
    if m is None:
        return True
    host, n = m.group("host"), int(m.group("n"))
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{n}"
        for address in (path, "\0" + path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout_s)
                try:
                    s.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        with socket.create_connection((host, 6000 + n), timeout=timeout_s):
            return True
    except OSError:
        return False


__all__ = ["missing_xcb_libraries", "x_display_reachable", "xcb_plugin"]
