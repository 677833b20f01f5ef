import subprocess
import sys


def test_core_imports_with_qt_blocked():
    """Nothing outside mosapp.gui may import Qt: import every core module with PySide6/pyqtgraph blocked."""
    code = """
import sys, pkgutil, importlib
for name in ("PySide6", "pyqtgraph", "shiboken6"):
    sys.modules[name] = None  # makes any import of them fail
import mosapp
for mod in pkgutil.walk_packages(mosapp.__path__, "mosapp."):
    if mod.name.startswith("mosapp.gui") or mod.name == "mosapp.__main__":
        continue
    importlib.import_module(mod.name)
import mosapp.phase
mosapp.phase.backend_names()
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
