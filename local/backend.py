"""`make aws`: everything behind `chalice local`, for REST testing with Chalice's own command.

Starts the embedded AWS on a fixed port with the stage's resources (the names
`.chalice/config.json` records, which `chalice local` reads), the event runtime (so
what the API asks for gets done) and the demo map source; puts an API token in the
emulated SSM parameter the stage's authorizer reads; prints what `chalice local` needs
in its shell; runs until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import threading
from pathlib import Path

from chalicelib.settings import PUBLIC_URL_VARIABLE
from chalicelib.sources import SOURCES_VARIABLE
from .emulator import FAKE_CREDENTIALS
from .logs import configure
from .stack import Local

ROOT = Path(__file__).resolve().parent.parent


def main(port: int = 4567, api_port: int = 8000, stage: str = "dev") -> int:
    configure()  # a plain line per invocation; the app's warnings and errors in JSON
    os.environ[PUBLIC_URL_VARIABLE] = f"http://127.0.0.1:{api_port}/"  # links in emails: chalice local's routes
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with Local(stage=stage, port=port) as local:
        from chalicelib.aws import client
        from chalicelib.settings import API_TOKEN_PARAMETER

        parameter = stage_environment(stage)[API_TOKEN_PARAMETER]
        token = os.environ.get("API_TOKEN") or secrets.token_urlsafe(16)
        client("ssm").put_parameter(Name=parameter, Value=token, Type="SecureString", Overwrite=True)
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in chalice_local_environment(local).items())
        print(
            f"weathergif's AWS is running at {local.endpoint}: stage {stage}'s resources, the event runtime and "
            f"the demo map source.\n"
            f"In another shell, in {ROOT}:\n"
            f"  export {exports}\n"
            f"  chalice local --stage {stage} --port {api_port}\n"
            f"API token (SSM {parameter}; for changes: Authorization: Bearer ...): {token}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print("stopping...", flush=True)
    return 0


def chalice_local_environment(local: Local) -> dict[str, str]:
    """What `chalice local` needs beyond .chalice/config.json: where AWS is, credentials for it, and
    the demo's map sources (GET /sources lists them)."""
    sources = {SOURCES_VARIABLE: os.environ[SOURCES_VARIABLE]} if SOURCES_VARIABLE in os.environ else {}
    return {"AWS_ENDPOINT_URL": local.endpoint, **FAKE_CREDENTIALS, **sources}


def stage_environment(stage: str) -> dict[str, str]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {**config.get("environment_variables", {}), **config["stages"][stage]["environment_variables"]}
