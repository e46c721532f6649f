"""app.py is the table of contents: every handler declared, nothing heavy imported."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ["boto3", "botocore", "PIL", "numpy", "imageio", "msgspec", "requests", "aws_lambda_powertools"]


def test_importing_the_app_loads_nothing_heavy():
    probe = f"import sys, json, app; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_every_handler_is_declared():
    from app import app

    sources = {name: source for name, source in ((s.name, s) for s in app.event_sources)}
    assert {name for name in sources} == {
        "fetch_amp_image",
        "create_thumbnail",
        "create_gif",
        "send_email",
        "thumbnail_upload",
        "mediate",
        "tick",
        "keep_dead_letters",
        "keep_dead_slices",
        "worker_failed",
        "fetch_due_frames",
        "rebuild_gifs",
    }
    assert sources["mediate"].queue.endswith("-mediator.fifo") and sources["mediate"].batch_size == 10
    assert sources["tick"].queue.endswith("-ticks") and sources["tick"].batch_size == 1  # a slice an invocation
    assert sources["thumbnail_upload"].bucket.endswith("-uploads")
    assert sources["create_gif"].topic.endswith("-please-create-gif")


def test_each_handler_body_is_one_call_into_chalicelib():
    """A REST route's body is the function of its own name in the API module entry.<module>() imports,
    called by that name (openapi.json finds what is said of it by the name); every other handler's,
    entry.<x>."""
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    handlers = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert handlers
    routes = 0
    for handler in handlers:
        body = [
            node for node in handler.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        assert len(body) == 1 and isinstance(body[0], ast.Return), handler.name
        call = body[0].value
        assert isinstance(call, ast.Call) and ast.unparse(call.func).startswith("entry."), handler.name
        if any(ast.unparse(d).startswith("app.route(") for d in handler.decorator_list):
            assert re.fullmatch(rf"entry\.(\w+)\(\)\.{handler.name}", ast.unparse(call.func)), handler.name
            routes += 1
    from app import app

    assert routes == sum(len(methods) for methods in app.routes.values())


def test_each_route_calls_a_documented_body_of_its_name_in_the_module_app_py_names():
    """The module app.py's route names is where the body is: entry.<module>() imports
    chalicelib.api.<module>, which defines it (no name is found through another module)."""
    import ast

    from app import app
    from chalicelib.api.openapi import OPERATIONS

    called = {}
    for node in ast.parse((ROOT / "app.py").read_text()).body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(d).startswith("app.route(") for d in node.decorator_list
        ):
            found = re.fullmatch(r"entry\.(\w+)\(\)\.(\w+)", ast.unparse(node.body[-1].value.func))
            called[node.name] = found.group(1)
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            module = importlib.import_module(f"chalicelib.api.{called[entry.view_name]}")
            body = module.__dict__.get(entry.view_name)
            assert callable(body) and body.__module__ == module.__name__, (method, path)
            assert entry.view_name in OPERATIONS, (method, path)
    assert not any(hasattr(importlib.import_module(f"chalicelib.api.{m}"), "__getattr__") for m in set(called.values()))
