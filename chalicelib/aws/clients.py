"""boto3 clients: created lazily, once per container, endpoints from the environment.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) by itself, so the same
code talks to AWS, to moto's server or to LocalStack. The only module that imports boto3.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_lock = threading.Lock()


@functools.cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


def client(service: str) -> Any:
    """A shared, thread-safe client for `service`; built on first use."""
    with _lock:  # boto3 sessions are not thread-safe while creating clients
        return _client(service)


@functools.cache
def _client(service: str) -> Any:
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
    with _lock:
        _client.cache_clear()
        _session.cache_clear()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
