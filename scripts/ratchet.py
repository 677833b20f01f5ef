#!/usr/bin/env python3
"""The house's ratchet on mosapp/: complexity and size limits, with today's exceptions listed.

Three limits hold for every function and class in ``mosapp/``:

- **complexity**: McCabe complexity as ruff's C901 counts it, at most the ``max-complexity``
  of ``[tool.ruff.lint.mccabe]`` in pyproject.toml (15);
- **function-lines**: a function (or method) is at most 100 lines, from ``def`` to its last line;
- **class-lines**: a class is at most 500 lines.

What exceeds a limit today is listed, one line each, in ``scripts/ratchet-allowlist.txt``
(``kind  path::qualified.name  value``). The list may only shrink: the check fails on

- a function or class over a limit that is not listed (split it instead of listing it);
- a listed one that grew past its listed value;
- a listed one that improved (its value must be lowered to the new one, or its line removed
  once it is within the limit), and a listed one that no longer exists.

The numba kernels (decorated with ``numba.njit``/``numba.jit``: one compiled loop each, which
splitting would slow down) are the lasting exceptions: one over a limit must be listed by name,
marked ``# numba kernel``, but its value is a record, not a cap. Every other line is a debt.

    .venv/bin/python scripts/ratchet.py           # check (scripts/check and tests/test_house.py run it)
    .venv/bin/python scripts/ratchet.py --write   # rewrite the allowlist from the tree as it stands
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli (declared in pyproject for < 3.11)
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
ALLOWLIST = REPO / "scripts" / "ratchet-allowlist.txt"
PACKAGE = "mosapp"
FUNCTION_MAX_LINES = 100
CLASS_MAX_LINES = 500
KINDS = ("complexity", "function-lines", "class-lines")
KERNEL_NOTE = "numba kernel"
_TOO_COMPLEX = re.compile(r"`(?P<name>[^`]+)` is too complex \((?P<value>\d+) > (?P<limit>\d+)\)")


def max_complexity(pyproject: Path = REPO / "pyproject.toml") -> int:
    """The C901 limit: ``[tool.ruff.lint.mccabe] max-complexity`` in pyproject.toml."""
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return int(config["tool"]["ruff"]["lint"]["mccabe"]["max-complexity"])


@dataclass(frozen=True)
class Limits:
    complexity: int
    function_lines: int = FUNCTION_MAX_LINES
    class_lines: int = CLASS_MAX_LINES

    def of(self, kind: str) -> int:
        return {"complexity": self.complexity, "function-lines": self.function_lines,
                "class-lines": self.class_lines}[kind]


@dataclass
class Measured:
    """What exceeds a limit: ``(kind, "path::qualname") -> value``, and the lasting exceptions' notes."""

    excess: dict[tuple[str, str], int]
    lasting: dict[str, str]  # path::qualname -> why it may stay long (numba kernel)

    @property
    def debts(self) -> int:
        return sum(1 for (_, name) in self.excess if name not in self.lasting)


def _is_numba(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    text = ast.unparse(target)
    return text in {"njit", "jit"} or text.startswith("numba.")


class _Walker(ast.NodeVisitor):
    """Qualified names, line counts and def rows of every function and class of one module."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.scope: list[str] = []
        self.rows: dict[int, str] = {}  # def line -> path::qualname (to name ruff's C901 findings)
        self.sizes: list[tuple[str, str, int]] = []  # (kind, path::qualname, lines)
        self.lasting: dict[str, str] = {}

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, kind: str) -> None:
        self.scope.append(node.name)
        name = f"{self.path}::{'.'.join(self.scope)}"
        self.rows[node.lineno] = name
        assert node.end_lineno is not None
        self.sizes.append((kind, name, node.end_lineno - node.lineno + 1))
        if kind == "function-lines" and any(_is_numba(d) for d in node.decorator_list):
            self.lasting[name] = KERNEL_NOTE
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_def(node, "function-lines")

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_def(node, "function-lines")

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_def(node, "class-lines")


def _ruff_complexity(root: Path, limit: int) -> list[dict]:
    """ruff's C901 findings over ``root/mosapp`` at ``limit`` (pyproject's other settings aside)."""
    command = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "C901",
               "--config", f"lint.mccabe.max-complexity={limit}", "--output-format", "json",
               "--exit-zero", str(root / PACKAGE)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"ruff failed ({done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def measure(root: Path = REPO, limits: Limits | None = None) -> Measured:
    """Every function and class of ``root/mosapp`` over a limit, by kind and qualified name."""
    limits = limits or Limits(max_complexity())
    excess: dict[tuple[str, str], int] = {}
    lasting: dict[str, str] = {}
    rows: dict[tuple[str, int], str] = {}
    for file in sorted((root / PACKAGE).rglob("*.py")):
        path = file.relative_to(root).as_posix()
        walker = _Walker(path)
        walker.visit(ast.parse(file.read_text(encoding="utf-8"), filename=path))
        lasting.update(walker.lasting)
        rows.update({(path, row): name for row, name in walker.rows.items()})
        for kind, name, lines in walker.sizes:
            if lines > limits.of(kind):
                excess[(kind, name)] = max(lines, excess.get((kind, name), 0))
    for finding in _ruff_complexity(root, limits.complexity):
        path = Path(finding["filename"]).resolve().relative_to(root.resolve()).as_posix()
        found = _TOO_COMPLEX.search(finding["message"])
        if finding["code"] != "C901" or found is None:
            raise RuntimeError(f"unexpected ruff finding: {finding}")
        name = rows.get((path, finding["location"]["row"]), f"{path}::{found['name']}")
        value = int(found["value"])
        excess[("complexity", name)] = max(value, excess.get(("complexity", name), 0))
    return Measured(excess, lasting)


def read_allowlist(path: Path = ALLOWLIST) -> dict[tuple[str, str], int]:
    """``kind  path::name  value`` lines (``#`` starts a comment) as ``(kind, name) -> value``."""
    allowed: dict[tuple[str, str], int] = {}
    if not path.exists():
        return allowed
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) != 3 or fields[0] not in KINDS or not fields[2].isdigit():
            raise ValueError(f"{path}:{number}: expected 'kind  path::name  value' with kind one of "
                             f"{', '.join(KINDS)}, got {line!r}")
        if (fields[0], fields[1]) in allowed:
            raise ValueError(f"{path}:{number}: {fields[0]} {fields[1]} is listed twice")
        allowed[(fields[0], fields[1])] = int(fields[2])
    return allowed


def problems(measured: Measured, allowed: dict[tuple[str, str], int], limits: Limits,
             allowlist: str = "scripts/ratchet-allowlist.txt") -> list[str]:
    """One sentence per breach of the ratchet (empty: the tree keeps to it)."""
    found: list[str] = []
    for (kind, name), value in sorted(measured.excess.items()):
        limit = limits.of(kind)
        if name in measured.lasting:
            if (kind, name) not in allowed:
                found.append(f"{name} is a numba kernel with {kind} {value}, over the limit of {limit}: list it "
                             f"by name in {allowlist} (scripts/ratchet.py --write).")
            continue  # a kernel's listed value is a record, not a cap
        if (kind, name) not in allowed:
            found.append(f"{name} has {kind} {value}, over the limit of {limit}, and is not in {allowlist}: "
                         f"split it (the list only shrinks).")
        elif value > allowed[(kind, name)]:
            found.append(f"{name} has {kind} {value}, more than the {allowed[(kind, name)]} {allowlist} "
                         f"allows it: split it instead of raising its line.")
        elif value < allowed[(kind, name)]:
            found.append(f"{name} has {kind} {value}, down from the listed {allowed[(kind, name)]}: lower its "
                         f"line in {allowlist} to {value} so it cannot grow back.")
    for (kind, name), value in sorted(allowed.items()):
        if (kind, name) not in measured.excess:
            found.append(f"{name} is listed in {allowlist} with {kind} {value} but is now within the limit of "
                         f"{limits.of(kind)} (or gone): remove its line.")
    return found


def render_allowlist(measured: Measured, limits: Limits) -> str:
    """The allowlist for ``measured``: debts first, then the lasting exceptions, each sorted by name."""
    def line(kind: str, name: str, value: int, note: str = "") -> str:
        return f"{kind:<15} {name:<72} {value:>5}" + (f"  # {note}" if note else "")

    entries = sorted(measured.excess.items(), key=lambda e: (e[0][1], e[0][0]))
    debts = [line(k, n, v) for (k, n), v in entries if n not in measured.lasting]
    lasting = [line(k, n, v, measured.lasting[n]) for (k, n), v in entries if n in measured.lasting]
    header = [
        "# The ratchet's exceptions (scripts/ratchet.py): what in mosapp/ exceeds a limit today.",
        f"# Limits: complexity {limits.complexity} (ruff C901), function-lines {limits.function_lines}, "
        f"class-lines {limits.class_lines}.",
        "# This list only shrinks: improve a function and lower or remove its line; never add one.",
        "# kind            path::qualified.name                                                     value",
        "",
        f"# Debts ({len(debts)}): split these.",
        *debts,
        "",
        f"# Lasting exceptions ({len(lasting)}): the numba kernels, listed by name; their values are a record, "
        "not a cap.",
        *lasting,
    ]
    return "\n".join(header) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the allowlist from the tree as it stands")
    args = parser.parse_args(argv)
    limits = Limits(max_complexity())
    measured = measure(REPO, limits)
    if args.write:
        ALLOWLIST.write_text(render_allowlist(measured, limits), encoding="utf-8")
        print(f"ratchet: wrote {ALLOWLIST.relative_to(REPO)}: {len(measured.excess)} lines, "
              f"{measured.debts} debts and {len(measured.excess) - measured.debts} lasting exceptions")
        return 0
    found = problems(measured, read_allowlist(), limits)
    for sentence in found:
        print(f"ratchet: {sentence}", file=sys.stderr)
    if not found:
        print(f"ratchet: mosapp/ keeps to its limits; {measured.debts} listed debts left")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
