"""The package layout is a rule, not a habit: these tests read every import (module level
and inside functions) of app/ and jobs/ with `ast` and fail on a cycle or a dependency the
layout forbids. The table below is the README's "Architecture" section, as code."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FOUNDATION = {"app.config", "app.logs", "app.metrics"}
CORE = {"app.storage", "app.privacy", "app.auth"}
# package -> the packages of this project it may import (besides itself)
MAY_IMPORT: dict[str, set[str]] = {
    "app.config": set(),
    "app.logs": set(),
    "app.metrics": set(),
    "app.storage": FOUNDATION,
    "app.privacy": FOUNDATION,
    "app.auth": FOUNDATION,
    "app.ingest": FOUNDATION | CORE,
    "app.read": FOUNDATION | CORE,
    "app.graphql": FOUNDATION | CORE | {"app.ingest", "app.read"},
    "app.http": FOUNDATION | CORE | {"app.ingest", "app.read", "app.graphql"},
    "app.reports": FOUNDATION | CORE | {"app.read"},
    "app.cli": FOUNDATION | CORE | {"app.ingest", "app.read", "app.reports", "app.graphql", "app.http", "jobs"},
    "jobs": FOUNDATION | CORE | {"app.read"},
}
# transports: only the edges (GraphQL, HTTP, the composition root) may import them
TRANSPORTS = ("strawberry", "starlette", "graphql", "uvicorn", "httptools", "h11")
TRANSPORT_FREE = (
    "app.config",
    "app.logs",
    "app.metrics",
    "app.storage",
    "app.privacy",
    "app.auth",
    "app.ingest",
    "app.read",
    "app.reports",
    "jobs",
)


def modules() -> dict[str, Path]:
    found = {}
    for top in ("app", "jobs"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path) -> Iterator[str]:
    """Every module name `path` imports, anywhere in the file (lazy imports too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def package_of(module: str) -> str:
    if module in FOUNDATION or module == "jobs" or module.startswith("jobs."):
        return module if module in FOUNDATION else "jobs"
    return ".".join(module.split(".")[:2])


def internal_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (names that are modules, not attributes)."""
    known = modules()
    return {
        name: {target for target in imports(path) if target in known and target != name} for name, path in known.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_every_package_is_in_the_table() -> None:
    assert {package_of(name) for name in modules()} - {"app"} <= set(MAY_IMPORT)


def test_no_import_cycle_between_modules() -> None:
    assert find_cycle(internal_graph()) is None


def test_no_import_cycle_between_packages() -> None:
    packages: dict[str, set[str]] = {}
    for source, targets in internal_graph().items():
        edges = packages.setdefault(package_of(source), set())
        edges |= {package_of(target) for target in targets} - {package_of(source)}
    assert find_cycle(packages) is None


def test_packages_import_only_what_the_layout_allows() -> None:
    wrong = [
        f"{source} imports {target}"
        for source, targets in internal_graph().items()
        if package_of(source) != "app"
        for target in targets
        if package_of(target) not in MAY_IMPORT[package_of(source)] | {package_of(source), "app"}
    ]
    assert wrong == []


def test_only_the_composition_root_imports_jobs() -> None:
    importers = {
        source
        for source, targets in internal_graph().items()
        if any(package_of(t) == "jobs" for t in targets) and package_of(source) != "jobs"
    }
    assert importers and all(package_of(source) == "app.cli" for source in importers), importers


@pytest.mark.parametrize("package", TRANSPORT_FREE)
def test_capability_packages_know_no_transport(package: str) -> None:
    found = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if package_of(name) == package
        for target in imports(path)
        if target.split(".")[0] in TRANSPORTS
    ]
    assert found == []


def test_the_checks_see_a_forbidden_import(tmp_path: Path) -> None:
    """The walk finds imports inside functions too, and the table refuses ingest -> graphql."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from app.graphql.context import Context\n    import starlette.requests\n")
    found = set(imports(source))
    assert {"app.graphql.context", "starlette.requests"} <= found
    assert package_of("app.graphql.context") not in MAY_IMPORT["app.ingest"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_test_imports_another_test_module_or_the_benchmarks() -> None:
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for target in imports(path):
            if target.split(".")[0] in ("tests", "bench", "conftest"):  # shared helpers live in testkit/
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []
