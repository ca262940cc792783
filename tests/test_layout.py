"""The layout's import rules, read from the source tree (AST only: nothing here is imported).

* **a. simulator** — among ``shared/``, ``functions/`` and ``events/`` only the operator layer
  (``shared/ops/``) imports ``simulator`` (``bench/`` and ``tests/`` may too). The simulator
  imports nothing of ``shared.clouds``: it is the vendors as their documents describe them,
  written apart from our clients (DESIGN §7a), so signatures, shapes and constants are
  implemented twice and the tests check that the two agree.
* **b. private modules** — a module whose dotted path has a component starting with ``_``
  (``shared.bus._x``, ``functions.stages._huawei``) is imported only from inside the package
  that holds it.
* **c. functions** — a function's module imports no other module under ``functions/``, save the
  private helpers of its own package (each function deploys alone).
* **d. domain** — ``shared/domain/`` imports nothing of the engine, runtime, operator layer,
  bus or store: the rules do not know how they are run.
* **e. ``__all__``** — every module of ``shared/``, ``events/`` and ``functions/`` defines
  ``__all__``, and every name another module (tests included) takes with ``from X import name``
  is in ``X.__all__`` or is a submodule of ``X``.

Every check is a function of a tree root returning :class:`Violation` s, so the checks are also
run against small crafted trees (``tmp_path``) to show that each one can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Violations known when this test was written, in files other work of issue 9 owns: (rule, file,
#: what). The test fails on any violation not listed here, and also when a listed one is gone —
#: then delete its line, so this set only ever shrinks. Empty is the goal.
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Import:
    """``importer`` (a dotted module name, file ``path``) imports module ``target`` at ``line``;
    ``names`` are what a ``from target import …`` takes (empty for ``import target``)."""

    importer: str
    path: str
    line: int
    target: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str
    what: str  # the offending import (or what is missing), stable across line moves
    line: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.path, self.what)

    def __str__(self) -> str:
        return f"[{self.rule}] {self.path}:{self.line}: {self.what}"


class Tree:
    """The modules of a source tree: dotted name → file, and every import each one makes."""

    TOPS = ("shared", "functions", "events", "simulator", "bench", "tests")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        for top in self.TOPS:
            for path in sorted((root / top).rglob("*.py")):
                if "__pycache__" not in path.parts:
                    self.files[self.module_of(path)] = path
        self._parsed: dict[str, ast.Module] = {}

    def module_of(self, path: Path) -> str:
        parts = list(path.relative_to(self.root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def rel(self, module: str) -> str:
        return self.files[module].relative_to(self.root).as_posix()

    def is_package(self, module: str) -> bool:
        return module in self.files and self.files[module].name == "__init__.py"

    def ast(self, module: str) -> ast.Module:
        if module not in self._parsed:
            self._parsed[module] = ast.parse(self.files[module].read_text(encoding="utf-8"))
        return self._parsed[module]

    def under(self, *prefixes: str) -> Iterator[str]:
        for module in self.files:
            if any(module == p or module.startswith(p + ".") for p in prefixes):
                yield module

    def imports(self, module: str) -> Iterator[Import]:
        """Every import of ``module`` (lazy ones inside functions too), relative ones resolved;
        ``from X import name`` where ``X.name`` is a module also yields an import of ``X.name``."""
        package = module if self.is_package(module) else module.rpartition(".")[0]
        rel = self.rel(module)
        for node in ast.walk(self.ast(module)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, rel, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                names = tuple(a.name for a in node.names)
                yield Import(module, rel, node.lineno, target, names)
                for name in names:
                    if f"{target}.{name}" in self.files:
                        yield Import(module, rel, node.lineno, f"{target}.{name}")

    def all_imports(self, *prefixes: str) -> Iterator[Import]:
        for module in self.under(*prefixes):
            yield from self.imports(module)

    def dunder_all(self, module: str) -> list[str] | None:
        """The literal ``__all__`` of ``module`` (``+=`` included), or None when it has none."""
        found: list[str] | None = None
        for node in self.ast(module).body:
            value: ast.expr | None = None
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                value, found = node.value, []
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.target.id == "__all__":
                    value, found = node.value, []
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                if node.target.id == "__all__":
                    value, found = node.value, found or []
            if value is not None and found is not None:
                if not isinstance(value, (ast.List, ast.Tuple)):
                    raise AssertionError(f"{self.rel(module)}: __all__ is not a literal list")
                found.extend(e.value for e in value.elts if isinstance(e, ast.Constant))
        return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _ours(target: str) -> bool:
    return target.split(".")[0] in Tree.TOPS


# -- the checks -------------------------------------------------------------------------------


def check_simulator(tree: Tree) -> list[Violation]:
    out = []
    for imp in tree.all_imports("shared", "functions", "events"):
        if _within(imp.target, "simulator") and not _within(imp.importer, "shared.ops"):
            out.append(Violation("a", imp.path, f"imports {imp.target}", imp.line))
    for imp in tree.all_imports("simulator"):
        if _within(imp.target, "shared.clouds"):
            out.append(Violation("a", imp.path, f"imports {imp.target}", imp.line))
    return out


def check_private(tree: Tree) -> list[Violation]:
    out = []
    for imp in tree.all_imports("shared", "functions", "events", "simulator", "bench"):
        if not _ours(imp.target):
            continue
        parts = imp.target.split(".")
        for i, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                holder = ".".join(parts[:i])  # the package the private module belongs to
                if not _within(imp.importer, holder):
                    out.append(Violation("b", imp.path, f"imports private {imp.target}", imp.line))
                break
    return out


def check_functions(tree: Tree) -> list[Violation]:
    out = []
    for imp in tree.all_imports("functions"):
        if not _within(imp.target, "functions") or imp.target == imp.importer:
            continue
        package = imp.importer if tree.is_package(imp.importer) else imp.importer.rpartition(".")[0]
        holder, _, last = imp.target.rpartition(".")
        if holder == package and last.startswith("_"):
            continue  # a private helper of the importer's own package
        out.append(Violation("c", imp.path, f"imports {imp.target}", imp.line))
    return out


def check_domain(tree: Tree) -> list[Violation]:
    banned = ("shared.engine", "shared.runtime", "shared.ops", "shared.bus", "shared.store")
    return [
        Violation("d", imp.path, f"imports {imp.target}", imp.line)
        for imp in tree.all_imports("shared.domain")
        if any(_within(imp.target, b) for b in banned)
    ]


def check_all(tree: Tree) -> list[Violation]:
    out = []
    for module in tree.under("shared", "events", "functions"):
        if tree.dunder_all(module) is None:
            out.append(Violation("e", tree.rel(module), "defines no __all__", 1))
    for imp in tree.all_imports(*Tree.TOPS):
        if not imp.names or imp.target not in tree.files or imp.target == imp.importer:
            continue
        if _within(imp.target, "tests"):
            continue  # test helpers are no one's API
        public = tree.dunder_all(imp.target)
        if public is None:
            continue  # reported above when it must have one
        for name in imp.names:
            if name != "*" and name not in public and f"{imp.target}.{name}" not in tree.files:
                out.append(
                    Violation(
                        "e", imp.path, f"imports {name} from {imp.target}, not in its __all__", imp.line
                    )
                )
    return out


CHECKS = {
    "a": check_simulator,
    "b": check_private,
    "c": check_functions,
    "d": check_domain,
    "e": check_all,
}


# -- the tree as it is ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree() -> Tree:
    t = Tree(ROOT)
    assert len(list(t.under("shared"))) > 20 and len(list(t.under("simulator"))) > 5
    return t


@pytest.mark.parametrize("rule", sorted(CHECKS))
def test_the_tree_keeps_the_rule(tree: Tree, rule: str) -> None:
    found = CHECKS[rule](tree)
    known = {k for k in KNOWN_VIOLATIONS if k[0] == rule}
    new = [str(v) for v in found if v.key not in known]
    assert not new, "\n".join(["import rule broken:", *new])
    gone = known - {v.key for v in found}
    assert not gone, f"fixed, remove from KNOWN_VIOLATIONS: {sorted(gone)}"


# -- each check can fail ------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Tree:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for top in Tree.TOPS:
        (root / top).mkdir(exist_ok=True)
    return Tree(root)


def _found(check, tree: Tree) -> set[str]:
    return {f"{v.path}: {v.what}" for v in check(tree)}


def test_check_simulator_names_file_and_import(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            "shared/__init__.py": "__all__ = []\n",
            "shared/ops/demo.py": "import simulator.app\n",  # the operator layer: allowed
            "shared/engine/stage.py": "from simulator import core\n",
            "functions/echo.py": "def f():\n    import simulator\n",  # a lazy import counts
            "simulator/core.py": "from shared.clouds.huawei import cce\n",
            "bench/run.py": "import simulator.core\n",  # bench may
        },
    )
    assert _found(check_simulator, tree) == {
        "shared/engine/stage.py: imports simulator",
        "shared/engine/stage.py: imports simulator.core",
        "functions/echo.py: imports simulator",
        "simulator/core.py: imports shared.clouds.huawei",
    }


def test_check_private_names_file_and_import(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            "functions/stages/_huawei.py": "",
            "functions/stages/cce_upgrade.py": "from functions.stages import _huawei\n",  # own package
            "functions/track_job.py": "from functions.stages._huawei import x\n",
            "shared/store/nats.py": "from shared.bus._nats_util import read_all\n",
            "shared/bus/nats.py": "from ._nats_util import read_all\n",  # relative, own package
            "bench/chaos.py": "from bench._rollout import Rollout\n",
            "simulator/app.py": "import bench._rollout\n",
        },
    )
    assert _found(check_private, tree) == {
        "functions/track_job.py: imports private functions.stages._huawei",
        "shared/store/nats.py: imports private shared.bus._nats_util",
        "simulator/app.py: imports private bench._rollout",
    }


def test_check_functions_names_file_and_import(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            "functions/__init__.py": "",
            "functions/stages/__init__.py": "",
            "functions/stages/_kafka.py": "",
            "functions/stages/kafka_verify.py": "from functions.stages._kafka import poll\n",
            "functions/track_job.py": "from functions.stages import cce_upgrade\nimport functions.advance\n",
            "functions/stages/cce_upgrade.py": "from functions.stages import kafka_verify\n",
            "functions/advance.py": "from functions.stages._kafka import poll\n",  # not its package
        },
    )
    assert _found(check_functions, tree) == {
        "functions/track_job.py: imports functions.stages",
        "functions/track_job.py: imports functions.stages.cce_upgrade",
        "functions/track_job.py: imports functions.advance",
        "functions/stages/cce_upgrade.py: imports functions.stages",
        "functions/stages/cce_upgrade.py: imports functions.stages.kafka_verify",
        "functions/advance.py: imports functions.stages._kafka",
    }


def test_check_domain_names_file_and_import(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            "shared/domain/fleet.py": "from shared.errors import ConfigError\nfrom shared.store import Store\n",
            "shared/domain/options/cce.py": "import shared.engine.stage\n",
            "shared/engine/stage.py": "from shared.store import Store\n",  # not the domain
        },
    )
    assert _found(check_domain, tree) == {
        "shared/domain/fleet.py: imports shared.store",
        "shared/domain/options/cce.py: imports shared.engine.stage",
    }


def test_check_all_names_file_and_import(tmp_path: Path) -> None:
    tree = _write(
        tmp_path,
        {
            "shared/__init__.py": "__all__: list[str] = []\n",
            "shared/log.py": "__all__ = ['get']\n__all__ += ['bind']\ndef get(): ...\ndef bind(): ...\n",
            "shared/bus/__init__.py": "__all__ = ['Bus']\n",
            "shared/bus/sqlite.py": "__all__ = ['SqliteBus']\ndef connect(): ...\n",
            "shared/store/sqlite.py": (
                "from shared.bus.sqlite import connect\nfrom shared.bus import sqlite\n"
                "from shared.log import bind, get\n"
            ),
            "events/codec.py": "__all__ = ('to_json',)\n",
            "tests/test_x.py": "from events.codec import to_json, from_json\n",
            "simulator/core.py": "from shared.log import secret\n",
        },
    )
    assert _found(check_all, tree) == {
        "shared/store/sqlite.py: defines no __all__",
        "shared/store/sqlite.py: imports connect from shared.bus.sqlite, not in its __all__",
        "tests/test_x.py: imports from_json from events.codec, not in its __all__",
        "simulator/core.py: imports secret from shared.log, not in its __all__",
    }


def test_a_known_violation_that_is_fixed_must_be_removed(tmp_path: Path, monkeypatch) -> None:
    tree = _write(tmp_path, {"shared/domain/fleet.py": "__all__ = []\n"})
    monkeypatch.setitem(
        globals(), "KNOWN_VIOLATIONS", {("d", "shared/domain/fleet.py", "imports shared.bus")}
    )
    with pytest.raises(AssertionError, match="remove from KNOWN_VIOLATIONS"):
        test_the_tree_keeps_the_rule(tree, "d")
