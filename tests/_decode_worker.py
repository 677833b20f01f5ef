"""A `mosapp decode` server for the fuzz test (tests/test_fuzz.py), run as its own process.

It warms up (imports, model loading, JIT compilation: it decodes each file named on its
command line once), then caps its address space at what it has mapped plus
``--ceiling-mib`` (RLIMIT_AS), so any allocation a forged header provokes beyond the stated
ceiling fails (MemoryError: a traceback, which the test reports) instead of swapping the
machine. It then reads one JSON request a line on stdin — ``{"argv": [...]}`` — runs
``mosapp.cli.main.main(argv)`` and answers one JSON line on stdout: ``rc``, ``stderr`` (what
main printed) and ``traceback`` (None unless something escaped main, SystemExit aside).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import sys
import traceback


def _mapped_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _run(argv: list[str]) -> dict:
    from mosapp.cli.main import main

    err = io.StringIO()
    tb = None
    rc = None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    except BaseException:  # noqa: BLE001 — reported to the test, which fails on it
        tb = traceback.format_exc()
    return {"rc": rc, "stderr": err.getvalue(), "traceback": tb}


def serve() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ceiling-mib", type=int, required=True)
    parser.add_argument("--warm", nargs="*", default=[], help="argv lists as JSON, run once before the cap")
    args = parser.parse_args()
    for argv in args.warm:
        result = _run(json.loads(argv))
        if result["rc"] != 0:
            print(json.dumps({"warm_up_failed": result}), flush=True)
            return
    limit = _mapped_bytes() + args.ceiling_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    print(json.dumps({"ready": True, "limit": limit}), flush=True)
    for line in sys.stdin:
        print(json.dumps(_run(json.loads(line)["argv"])), flush=True)


if __name__ == "__main__":
    serve()
