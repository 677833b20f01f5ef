"""`mosapp demo --out-dir` on a file or an unwritable place: one sentence, no traceback."""

from __future__ import annotations

import os

import pytest

from mosapp.cli.main import main


@pytest.mark.parametrize("where", ["file", "under-a-file", "read-only"])
def test_demo_out_dir_that_cannot_be_a_folder(tmp_path, capsys, where):
    target = tmp_path / "taken"
    target.write_text("not a folder", encoding="utf-8")
    out = {"file": target, "under-a-file": target / "sub", "read-only": tmp_path / "ro" / "out"}[where]
    if where == "read-only":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            out = "/proc/mosapp-cannot-make-this"  # root may write anywhere, but not into /proc
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
    rc = main(["demo", "--out-dir", str(out), "--phase", "pghi", "--device", "cpu", "--no-metrics"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("mosapp: error: ") and lines[0].endswith("."), err
    assert "--out-dir" in lines[0]
