"""The layout rules of docs/architecture.md, read from every module's imports (ast, nothing imported).

1. Floors: a package imports only the packages its row of :data:`MAY_IMPORT` names (runtime at the
   bottom; nothing imports benchmarks or tests).
2. No module imports a command module (one with ``if __name__ == "__main__":`` or a ``__main__.py``):
   a command parses and calls; what two commands share is a library module.
3. No import circle between modules (imports inside functions count too).

Each rule is checked on the repository and, to show the checker itself can fail, on a small tree
written to a temporary folder that breaks it.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MAY_IMPORT: dict[str, frozenset[str]] = {
    "runtime": frozenset({"runtime"}),
    "lanedata": frozenset({"runtime", "lanedata"}),
    "calibration": frozenset({"runtime", "calibration"}),
    "training": frozenset({"runtime", "training"}),
    "export": frozenset({"runtime", "calibration", "training", "export"}),
    "pipeline": frozenset({"runtime", "lanedata", "pipeline"}),
    "benchmarks": frozenset({"runtime", "lanedata", "calibration", "training", "export", "benchmarks"}),
}
"""Which project packages each package may import (docs/architecture.md has the picture)."""


def module_files(root: Path) -> dict[str, Path]:
    """{dotted module name: file} of every module of the packages in :data:`MAY_IMPORT` under ``root``."""
    modules = {}
    for package in MAY_IMPORT:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def is_command(path: Path) -> bool:
    """A module run as a command: ``__main__.py``, or a top-level ``if __name__ == "__main__":``."""
    if path.name == "__main__.py":
        return True
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
            values = [n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)]
            if names == ["__name__"] and values == ["__main__"]:
                return True
    return False


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its file: ``from a import b`` names ``a.b``
    when that is a module, else ``a``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import runtime.backends.x` -> the longest known prefix
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, Path]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}, modules


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, deps in graph.items() for b in deps
                  if b.split(".")[0] not in MAY_IMPORT[a.split(".")[0]])


def command_imports(graph: dict[str, set[str]], modules: dict[str, Path]) -> list[str]:
    commands = {name for name, path in modules.items() if is_command(path)}
    return sorted(f"{a} imports the command {b}" for a, deps in graph.items() for b in deps if b in commands)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def problems(root: Path) -> list[str]:
    graph, modules = import_graph(root)
    return (upward_imports(graph) + command_imports(graph, modules)
            + [f"import circle: {' <-> '.join(group)}" for group in cycles(graph)])


def test_the_repository_keeps_the_layout_rules():
    graph, modules = import_graph(ROOT)
    assert {"runtime.predictor", "lanedata.llamas.metric", "training.train", "pipeline.run"} <= set(modules)
    found = problems(ROOT)
    assert not found, "layout rules broken (docs/architecture.md):\n" + "\n".join(found)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in MAY_IMPORT:
        (root / package).mkdir(exist_ok=True)
    return root


CLEAN = {"runtime/__init__.py": "", "runtime/core.py": "import numpy\n",
         "lanedata/__init__.py": "", "lanedata/reader.py": "from runtime.core import x\n"}


@pytest.mark.parametrize("files, expected", [
    ({"runtime/bad.py": "from lanedata.reader import y\n"}, "runtime.bad imports lanedata.reader"),
    ({"runtime/lazy.py": "def f():\n    import training.train\n", "training/__init__.py": "", "training/train.py": ""},
     "runtime.lazy imports training.train"),
    ({"lanedata/cmd.py": "import sys\nif __name__ == '__main__':\n    sys.exit(0)\n",
      "lanedata/user.py": "from lanedata import cmd\n"}, "lanedata.user imports the command lanedata.cmd"),
    ({"runtime/a.py": "from runtime.b import g\n", "runtime/b.py": "from runtime import a\n"},
     "import circle: runtime.a <-> runtime.b"),
    ({"runtime/pkg/__init__.py": "from .. import core\n", "runtime/core.py": "from runtime.pkg import z\n"},
     "import circle: runtime.core <-> runtime.pkg"),
])
def test_the_checker_finds_each_kind_of_break(tmp_path, files, expected):
    root = write_tree(tmp_path, {**CLEAN, **files})
    assert problems(write_tree(tmp_path / "clean", CLEAN)) == []
    assert expected in problems(root)
