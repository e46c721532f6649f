"""app.py is the table of contents: every handler declared, nothing heavy imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ["boto3", "botocore", "PIL", "numpy", "imageio", "pydantic", "requests", "aws_lambda_powertools"]


def test_importing_the_app_loads_nothing_heavy():
    probe = f"import sys, json, app; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_every_handler_is_declared():
    from app import app

    sources = {name: source for name, source in ((s.name, s) for s in app.event_sources)}
    assert {name for name in sources} == {
        "fetch_amp_image", "create_thumbnail", "create_gif", "send_email", "thumbnail_upload",
        "mediate", "keep_dead_letters", "worker_failed", "fetch_due_frames", "rebuild_gifs",
    }
    assert sources["mediate"].queue.endswith("-mediator") and sources["mediate"].batch_size == 10
    assert sources["thumbnail_upload"].bucket.endswith("-uploads")
    assert sources["create_gif"].topic.endswith("-please-create-gif")


def test_each_handler_body_is_one_call_into_chalicelib():
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    handlers = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert handlers
    for handler in handlers:
        body = [node for node in handler.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        assert len(body) == 1 and isinstance(body[0], ast.Return), handler.name
        call = body[0].value
        assert isinstance(call, ast.Call) and ast.unparse(call.func).startswith("entry."), handler.name
