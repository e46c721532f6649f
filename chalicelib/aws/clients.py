"""boto3 clients: created lazily, once per container, endpoints from the environment.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) by itself, so the same
code talks to AWS, to moto's server or to LocalStack. The only module that imports boto3.

The services the app calls (chalicelib.aws.trimmed.SERVICES) come from a session of their own
whose loader reads their models without documentation and an endpoints.json of them alone
(chalicelib/aws/data) before botocore's files: the same clients, a fraction of the JSON to
parse on a cold start. Any other service (tools and tests) comes from a plain session.
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


@functools.cache
def _lean_session() -> Any:
    """A boto3 session for the app's services, its loader reading chalicelib/aws/data first."""
    import boto3
    import botocore.session
    from botocore.loaders import create_loader

    from .trimmed import DATA, SERVICES

    core = botocore.session.Session()
    loader = create_loader(core.get_config_variable("data_path"))
    loader.search_paths.insert(0, str(DATA))
    known = loader.list_available_services

    def available(type_name: str) -> list[str]:
        # The services the app calls, without listing every service botocore knows (a directory each).
        return list(SERVICES) if type_name in ("service-2", "endpoint-rule-set-1") else known(type_name)

    builtin = loader.is_builtin_path

    def is_builtin_path(path: str) -> bool:
        # Its endpoints.json is botocore's own, cut to these services: endpoints are resolved the same
        # (from the rule sets alone, not as if a custom endpoints file named them).
        return path.startswith(str(DATA)) or builtin(path)

    loader.list_available_services = available
    loader.is_builtin_path = is_builtin_path
    core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core)


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
    session = _lean_session() if service in _lean_services() else _session()
    return session.client(service, config=Config(**options))


def _lean_services() -> tuple[str, ...]:
    from .trimmed import SERVICES

    return SERVICES


def _custom_endpoint(service: str) -> bool:
    return bool(os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL"))


def forget() -> None:
    """Forget every client (the hooks stay: they apply to the clients made next)."""
    with _lock:
        _made.clear()
        _session.cache_clear()
        _lean_session.cache_clear()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
