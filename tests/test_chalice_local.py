"""`chalice local`, Chalice's own command, for REST testing: `make aws` starts what it needs and
says how to run it; then every route answers, and writes work with the token it prints."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.heavy]

CLEAN = ("AWS_", "MAP_", "FETCH_", "API_TOKEN", "PUBLIC_URL", "STAGE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, method=method, headers=headers, data=json.dumps(body).encode() if body is not None else None
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_chalice_local_answers_every_route_with_what_make_aws_prints():
    environment = {k: v for k, v in os.environ.items() if not k.startswith(CLEAN)}
    environment["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    aws_port, api_port = free_port(), free_port()
    backend = subprocess.Popen(
        [sys.executable, "-m", "local", "aws", "--port", str(aws_port), "--api-port", str(api_port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    api = None
    try:
        printed = []
        for line in backend.stdout:
            printed.append(line)
            if line.startswith("API token"):
                break
        exports = next(line for line in printed if line.strip().startswith("export "))
        command = next(line for line in printed if line.strip().startswith("chalice local"))
        token = printed[-1].rsplit(" ", 1)[-1].strip()
        assert shlex.split(command) == ["chalice", "local", "--stage", "dev", "--port", str(api_port)]
        variables = dict(pair.split("=", 1) for pair in shlex.split(exports)[1:])
        assert variables["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{aws_port}"

        chalice = str(Path(sys.executable).with_name("chalice"))
        api = subprocess.Popen(
            [*shlex.split(command.replace("chalice", chalice, 1)), "--no-autoreload"],
            cwd=ROOT,
            env={**environment, **variables},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.time() + 30
        while True:
            try:
                status, health = call(f"{base}/health")
                break
            except OSError:
                assert time.time() < deadline, "chalice local did not answer"
                time.sleep(0.2)
        assert status == 200 and health["ok"] is True, health
        assert call(f"{base}/animations") == (200, {"animations": [], "next": None})
        status, listed = call(f"{base}/sources")
        assert (status, listed["default"]) == (200, "demo")  # the demo's sources, as the runtime has them
        assert [s["name"] for s in listed["sources"]] == ["demo", "demo-forecast", "demo-overlay"]
        radar = {
            "layers": ["flat-dk", "radar"],
            "width": 320,
            "height": 240,
            "center": "tulsa,ok",
            "zoom": 6,
            "interval": 600,
            "frames": 3,
            "thumbnails": [{"width": 80, "height": 60}],
        }
        # writes need the token: the gateway's own answers, as openapi.json describes them (`Message` for a denial)
        assert call(f"{base}/animations/radar", "PUT", radar) == (401, {"message": "Unauthorized"})
        assert call(f"{base}/animations/radar", "PUT", radar, token="wrong") == (
            403,
            {"Message": "User is not authorized to access this resource"},
        )
        assert call(f"{base}/animations/radar", "PUT", radar, token=token)[0] == 201
        assert call(f"{base}/animations/radar/fetch", "POST", token=token)[0] == 202
        deadline = time.time() + 60
        while True:  # the runtime `make aws` started fetches its window (3) and the frame asked for now
            frames = call(f"{base}/animations/radar/frames")[1]["frames"]
            if len(frames) == 4 and all(frame["thumbnails"] for frame in frames):
                break
            assert time.time() < deadline, f"the frames asked for did not arrive: {len(frames)}"
            time.sleep(0.3)
        assert call(f"{base}/animations/radar")[1]["state"]["frameCount"] == 4
        assert frames[0]["url"].startswith(f"{base}/animations/radar/frames/")  # a link that lives...
        with urllib.request.urlopen(frames[0]["url"], timeout=10) as image:  # ...redirecting to the emulated S3
            assert image.url.startswith(variables["AWS_ENDPOINT_URL"]) and image.read(8) == b"\x89PNG\r\n\x1a\n"
        assert call(f"{base}/failures")[0] == 401  # whole messages: the token's holder only
        assert call(f"{base}/failures", token=token)[0] == 200
        assert call(f"{base}/animations/radar/gif", "POST", token=token)[0] in (202, 409)  # made by the count, or now
        assert call(f"{base}/animations/radar?images=remove", "DELETE", token=token)[0] == 200
        assert call(f"{base}/animations/radar")[0] == 404
    finally:
        for process in (api, backend):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
