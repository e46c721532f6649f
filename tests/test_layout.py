"""The house rules of the code's layout, checked: one door to AWS, no local tooling in what deploys."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from tests.conftest import ROOT

CHALICELIB = ROOT / "chalicelib"
DOOR = CHALICELIB / "aws"


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def imports(path: Path) -> set[str]:
    """The modules a file imports (relative imports resolved within the project)."""
    tree, found = parsed(path), set()
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_aws_folder_reaches_aws():
    """boto3 and botocore are imported, and clients made, in chalicelib/aws/ alone."""
    for path in python_files(CHALICELIB):
        if DOOR in path.parents:
            continue
        found = imports(path)
        assert not {m for m in found if m.split(".")[0] in ("boto3", "botocore")}, path
        assert "chalicelib.aws.client" not in found and "chalicelib.aws.clients.client" not in found, path
        assert ".client(" not in path.read_text(), path


def test_deployed_code_imports_no_local_tooling():
    for folder, forbidden in ((CHALICELIB, ("local", "deploy", "tests")), (ROOT / "deploy", ("local", "tests"))):
        for path in python_files(folder):
            assert not {m for m in imports(path) if m.split(".")[0] in forbidden}, path
    assert not {m for m in imports(ROOT / "app.py") if m.split(".")[0] in ("local", "deploy", "tests")}


def test_the_store_is_in_parts_of_one_concern_each():
    """No part past ~220 lines as ruff formats them (about 150 of logic: writes' literals spread out)."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in python_files(CHALICELIB / "mediator" / "store")}
    assert len(sizes) >= 7 and max(sizes.values()) <= 220, sizes


# Layers of chalicelib, lowest first: a module imports only from lower layers, or from its own
# package (as long as that makes no loop). A name is a module or a package (chalicelib.aws: its modules).
LAYERS = (
    # the ground: standard library (and msgspec, Pillow) only
    {
        "chalicelib",
        "errors",
        "model",
        "settings",
        "sources",
        "coldstart",
        "threads",
        "storage",
        "redaction",
        "htmltext",
        "costs",
    },
    {"addresses", "messages", "log"},
    {"aws"},  # the one door to AWS
    {"credentials", "telemetry", "bus", "safehttp", "imaging"},
    {"batch"},
    {"workers", "mediator"},
    {"api"},
    {"entry"},
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """{module of chalicelib: the modules of chalicelib it imports}, at any depth of its code
    (function-level imports count); `from package import name` is an import of package.name
    where that is a module."""
    modules = {module_name(path): path for path in python_files(CHALICELIB)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree, found = parsed(path), set()
        package = path.relative_to(ROOT).with_suffix("").parts[:-1]
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = list(package[: len(package) - node.level + 1]) if node.level else []
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    part = module.split(".")[1] if "." in module else module
    for rank, names in enumerate(LAYERS):
        if part in names:
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_layout.py's LAYERS: place it")


def test_chalicelib_has_no_import_loops():
    assert loops(import_graph()) == []


def test_no_module_imports_one_of_a_higher_layer():
    upward = [
        f"{name} (layer {layer_of(name)}) imports {other} (layer {layer_of(other)})"
        for name, imported in import_graph().items()
        for other in imported
        if layer_of(other) > layer_of(name)
    ]
    assert upward == []


def test_the_loop_finder_finds_a_loop():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []
