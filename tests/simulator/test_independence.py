"""The simulator is the vendors as their documents describe them, written apart from our clients
(DESIGN §7a): no module of it imports ``shared.clouds``, so signatures, shapes and constants are
implemented twice and the tests check that the two agree."""

from __future__ import annotations

import ast
from pathlib import Path

SIMULATOR = Path(__file__).resolve().parents[2] / "simulator"


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_simulator_module_imports_our_vendor_clients() -> None:
    modules = sorted(SIMULATOR.rglob("*.py"))
    assert len(modules) > 5
    offenders = {
        str(p.relative_to(SIMULATOR)): sorted(
            n for n in imported(p) if n == "shared.clouds" or n.startswith("shared.clouds.")
        )
        for p in modules
    }
    assert not {k: v for k, v in offenders.items() if v}
