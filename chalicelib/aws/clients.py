"""boto3 clients: created lazily, once per container, endpoints from the environment.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) by itself, so the same
code talks to AWS, to moto's server or to LocalStack. The only module that imports boto3.

Every client comes from a plain boto3 session, so from the service models of the botocore it
runs on: on Lambda the runtime's own (older than the development pin: tests/test_sdk.py runs the
bundle on both), wherever else the one installed. A service model read by another botocore than
the one it came with can declare what that botocore cannot speak (botocore < 1.37 has no
smithy-rpc-v2-cbor, which CloudWatch's newer models declare).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


_made: dict[str, Any] = {}
_hooks: list[Callable[[Any], None]] = []


def client(service: str) -> Any:
    """A shared, thread-safe client for `service`; built on first use, and handed to each hook."""
    with _lock:  # boto3 sessions are not thread-safe while creating clients
        made = _made.get(service)
        if made is None:
            from ..coldstart import loading

            with loading(f"client {service}"):  # botocore, its models and the client: out of the collector's way
                made = _make(service)
            for hook in _hooks:
                hook(made)
            _made[service] = made
        return made


def on_new_client(hook: Callable[[Any], None]) -> None:
    """Call `hook(client)` for every client made, before and after now (chalicelib.telemetry counts
    each client's requests so: the door to AWS reports its use without knowing who counts it)."""
    with _lock:
        _hooks.append(hook)
        for made in _made.values():
            hook(made)


def _make(service: str) -> Any:
    from botocore.config import Config

    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": 4},
        "connect_timeout": 5,
        "read_timeout": 30,
        "max_pool_connections": 32,
    }
    if service == "s3":
        options["signature_version"] = "s3v4"  # presigned links that last up to 7 days, in every region
        if _custom_endpoint("s3"):
            # Emulators answer on one host name: bucket.localhost does not resolve.
            options["s3"] = {"addressing_style": "path"}
    return _session().client(service, config=Config(**options))


def _custom_endpoint(service: str) -> bool:
    return bool(os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL"))


def forget() -> None:
    """Forget every client (the hooks stay: they apply to the clients made next)."""
    with _lock:
        _made.clear()
        _session.cache_clear()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
