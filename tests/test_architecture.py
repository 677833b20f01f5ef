"""The picture of the house (docs/architecture.md) and the enforced contract agree.

The layers contract itself is run by import-linter in scripts/check; these tests keep the
contract complete (every package of mosapp sits in a layer) and the documentation true.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def contract_layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    assert layers["containers"] == ["mosapp"]
    return [{part.strip() for part in layer.split("|")} for layer in layers["layers"]]


def documented_layers() -> list[set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("<!-- layers:", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    return [set(re.findall(r"`mosapp\.(\w+)`", row.split("|")[2])) for row in rows]


def test_the_documented_layers_are_the_contract():
    assert documented_layers() == contract_layers()


def test_every_package_of_mosapp_sits_in_a_layer():
    placed = set().union(*contract_layers())
    here = {p.name for p in (ROOT / "mosapp").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    here |= {p.stem for p in (ROOT / "mosapp").glob("*.py") if p.stem not in {"__init__", "__main__"}}
    assert here == placed, f"not in the layers contract: {sorted(here - placed)}; gone: {sorted(placed - here)}"


def test_the_contract_is_checked_before_the_suite():
    check = (ROOT / "scripts" / "check").read_text(encoding="utf-8")
    for tool in ("lint-imports", "ruff check", "mypy"):
        assert tool in check
    assert "scripts/check" in (ROOT / "scripts" / "test").read_text(encoding="utf-8")


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    # Each package's block: its line and the indented lines after it, up to the next entry.
    blocks = dict(re.findall(r"^  (\S+?)/?\s(.*?)(?=^  \S|\Z)", layout, flags=re.M | re.S))
    missing = []
    for path in sorted((ROOT / "mosapp").rglob("*.py")):
        rel = path.relative_to(ROOT / "mosapp")
        if "migrations" in rel.parts or path.stem in {"__init__", "__main__"}:
            continue
        if len(rel.parts) == 1:
            if path.name not in blocks:
                missing.append(str(rel))
        elif not re.search(rf"\b{re.escape(path.stem)}\b", blocks.get(rel.parts[0], "")):
            missing.append(str(rel))
    assert not missing, f"README's layout does not name: {missing}"
