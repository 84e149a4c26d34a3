"""The packages' boundaries (issue 17, style.md): no module imports another of its package
in a circle, and the core imports none of the adapters that build on it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "cymongoose.wsgi": ROOT / "packages/cymongoose-wsgi/src/cymongoose/wsgi",
    "cymongoose.asgi": ROOT / "packages/cymongoose-asgi/src/cymongoose/asgi",
    "cymongoose.aio": ROOT / "packages/cymongoose-aio/src/cymongoose/aio",
    "cymongoose.serving": ROOT / "packages/cymongoose-core/src/cymongoose/serving",
}
ADAPTERS = ("cymongoose.aio", "cymongoose.asgi", "cymongoose.wsgi")


def _imports(path: Path, package: str) -> set[str]:
    """The sibling modules ``path`` imports (relative or absolute, anywhere in the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith(package + "."):
                found.add(node.module[len(package) + 1:].split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(alias.name[len(package) + 1:].split(".")[0]
                         for alias in node.names if alias.name.startswith(package + "."))
    return found - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                return [*path, dep]
            if dep in graph and not state.get(dep):
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if not state.get(module):
            found = visit(module, [module])
            if found:
                return found
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_module_imports_its_package_in_a_circle(package):
    graph = {path.stem: _imports(path, package) for path in PACKAGES[package].glob("*.py")}
    assert len(graph) >= 2  # the package's modules were found
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_core_imports_no_adapter():
    core = ROOT / "packages/cymongoose-core/src/cymongoose"
    names = "|".join(map(re.escape, ADAPTERS))
    pattern = re.compile(rf"^\s*(from|import|cimport)\s+({names})\b", re.M)
    offenders = []
    for path in [*core.rglob("*.py"), *core.rglob("*.pyx"), *core.rglob("*.pxd")]:
        code = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
                      for m in pattern.finditer(code)]
        offenders += [f"{path.relative_to(ROOT)}: import_module({m.group(1)!r})"
                      for m in re.finditer(r"import_module\(\s*[\"'](cymongoose\.\w+)", code)
                      if m.group(1) in ADAPTERS]
    assert offenders == []
