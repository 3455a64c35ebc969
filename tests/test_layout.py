"""The package's layout rules (docs/architecture.rst), read from the source's import statements.

- no import cycle between the package's modules (imports at module level);
- the client imports nothing of the app but its exceptions and version, and no Django models;
- the sandbox imports nothing from the app or the client, and no Django models.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "openhumans"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Every module ``path`` imports (``from x import y`` counts as x and x.y)."""
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:
        # Imports under `if TYPE_CHECKING:` never run; other top-level blocks (try) do.
        nodes = [n for n in ast.walk(tree) if _runs_at_import(tree, n)]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _runs_at_import(tree: ast.Module, wanted: ast.AST) -> bool:
    """Whether ``wanted`` is an import executed when the module is imported."""

    def walk(body: list[ast.stmt]) -> bool:
        for stmt in body:
            if stmt is wanted:
                return True
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                continue
            if isinstance(stmt, ast.If | ast.Try | ast.With):
                blocks = [stmt.body, getattr(stmt, "orelse", []), getattr(stmt, "finalbody", [])]
                blocks += [h.body for h in getattr(stmt, "handlers", [])]
                if any(walk(b) for b in blocks):
                    return True
        return False

    return isinstance(wanted, ast.Import | ast.ImportFrom) and walk(tree.body)


SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))
MODULES = {_module_name(p) for p in SOURCES}


def _internal(names: set[str]) -> set[str]:
    return {n for n in names if n in MODULES}


def test_the_package_has_no_import_cycle():
    graph = {
        _module_name(p): _internal(_imports(p, top_level_only=True)) - {_module_name(p)}
        for p in SOURCES
    }
    # A package imports its own submodules through __init__; a cycle through a parent
    # package's __init__ is how Python itself loads it, so only count module-to-module edges
    # that are not "a package to its own children".
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not d.startswith(name + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _files(subpackage: str) -> list[Path]:
    return [p for p in SOURCES if _module_name(p).startswith(f"openhumans.{subpackage}")]


def _uses_models(names: set[str]) -> set[str]:
    return {
        n
        for n in names
        if n.startswith(("django.db", "openhumans.models", "django.contrib.auth.models"))
        or (n.startswith("django.contrib.") and ".models" in n)
    }


@pytest.mark.parametrize("path", _files("client"), ids=lambda p: p.name)
def test_the_client_imports_only_its_own_modules_exceptions_and_version(path):
    imported = _imports(path, top_level_only=False)
    allowed = ("openhumans.client", "openhumans.exceptions")
    app = {
        n
        for n in imported
        if n.startswith("openhumans")
        and not n.startswith(allowed)
        and n not in ("openhumans", "openhumans.__version__")
    }
    assert not app, f"{path.name} imports the app: {sorted(app)}"
    assert not _uses_models(imported), f"{path.name} imports Django models"


@pytest.mark.parametrize("path", _files("sandbox"), ids=lambda p: p.name)
def test_the_sandbox_imports_nothing_from_the_app_or_the_client(path):
    imported = _imports(path, top_level_only=False)
    outside = {
        n
        for n in imported
        if n.startswith("openhumans")
        and not n.startswith("openhumans.sandbox")
        and n != "openhumans"
    }
    assert not outside, f"{path.name} imports {sorted(outside)}"
    assert not _uses_models(imported), f"{path.name} imports Django models"


def test_app_modules_use_the_clients_public_face():
    private = {}
    for path in SOURCES:
        name = _module_name(path)
        if name.startswith(("openhumans.client", "openhumans.sandbox")):
            continue
        reached = {n for n in _imports(path, top_level_only=False) if "openhumans.client._" in n}
        if reached:
            private[name] = sorted(reached)
    assert not private, f"modules reaching into the client's private modules: {private}"


def test_public_docstrings_explain_instead_of_citing_the_internal_spec():
    """The API reference is read by people who do not have our spec: no "spec §" there."""
    citing = []
    for path in SOURCES:
        name = _module_name(path)
        # The sandbox's insides cite the spec they reproduce; its documented face does not.
        documented = ("openhumans.sandbox", "openhumans.sandbox.control_client")
        if name.startswith(("openhumans.sandbox", "openhumans.migrations")) and (
            name not in documented
        ):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(
                node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            ):
                continue
            if getattr(node, "name", "").startswith("_"):
                continue
            doc = ast.get_docstring(node) or ""
            if "spec §" in doc:
                citing.append(f"{name}.{getattr(node, 'name', '')}")
    assert not citing, citing
