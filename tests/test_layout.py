"""The house rules of the code's layout, checked: one door to AWS, no local tooling in what deploys."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

CHALICELIB = ROOT / "chalicelib"
DOOR = CHALICELIB / "aws"


def imports(path: Path) -> set[str]:
    """The modules a file imports (relative imports resolved within the project)."""
    tree, found = ast.parse(path.read_text()), set()
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
