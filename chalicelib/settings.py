"""Configuration from the environment: resource names, fetcher and image limits.

Standard library only, so app.py can read resource names at import time
(a Lambda cold start) without pulling in anything heavy.
"""

from __future__ import annotations

import os
from typing import NamedTuple

STAGE = os.environ.get("STAGE", "dev")
PREFIX = f"weathergif-{STAGE}"

AMP_URL_TEMPLATE = (
    "https://maps.aerisapi.com/{client_id}_{client_secret}/{layers}/"
    "{width}x{height}/{center},{zoom}/{time}.png"
)
FETCH_EVERY_MINUTES = int(os.environ.get("FETCH_EVERY_MINUTES") or 5)
# Aeris AMP is Xweather now: maps.api.xweather.com is its current host, maps.aerisapi.com its old one.
DEFAULT_ALLOWED_HOSTS = "maps.api.xweather.com,maps.aerisapi.com,mesonet.agron.iastate.edu,gibs.earthdata.nasa.gov"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


class Names(NamedTuple):
    """Names of the AWS resources the app uses, read at import for the decorators."""

    frames_bucket: str
    thumbnails_bucket: str
    gifs_bucket: str
    uploads_bucket: str
    table: str
    mediator_queue: str
    dead_letter_queue: str
    worker_failure_queue: str
    fetch_topic: str
    thumbnail_topic: str
    gif_topic: str
    email_topic: str


def names() -> Names:
    return Names(
        frames_bucket=_env("FRAMES_BUCKET", f"{PREFIX}-frames"),
        thumbnails_bucket=_env("THUMBNAILS_BUCKET", f"{PREFIX}-thumbnails"),
        gifs_bucket=_env("GIFS_BUCKET", f"{PREFIX}-gifs"),
        uploads_bucket=_env("UPLOADS_BUCKET", f"{PREFIX}-uploads"),
        table=_env("TABLE_NAME", f"{PREFIX}-state"),
        mediator_queue=_env("MEDIATOR_QUEUE", f"{PREFIX}-mediator"),
        dead_letter_queue=_env("DEAD_LETTER_QUEUE", f"{PREFIX}-mediator-dlq"),
        worker_failure_queue=_env("WORKER_FAILURE_QUEUE", f"{PREFIX}-worker-failures"),
        fetch_topic=_env("FETCH_TOPIC", f"{PREFIX}-please-fetch-amp-image"),
        thumbnail_topic=_env("THUMBNAIL_TOPIC", f"{PREFIX}-please-create-thumbnail"),
        gif_topic=_env("GIF_TOPIC", f"{PREFIX}-please-create-gif"),
        email_topic=_env("EMAIL_TOPIC", f"{PREFIX}-please-send-email"),
    )


class FetchSettings(NamedTuple):
    url_template: str
    # (host, port): a port of None allows the scheme's own (443 for https, 80 for http)
    # and the one MAP_URL_TEMPLATE names for that host.
    allowed_hosts: frozenset[tuple[str, int | None]]
    # Networks (ipaddress objects) the fetcher may connect to although they are not public.
    allowed_networks: tuple
    connect_timeout: float
    read_timeout: float
    retries: int
    max_bytes: int
    deadline: float  # seconds for a whole fetch: connecting, retries, redirects, the body


def fetch_settings() -> FetchSettings:
    """The fetcher's configuration (not its keys: see map_keys). ValueError names a bad value."""
    import ipaddress

    hosts = _env("FETCH_ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS)
    networks = os.environ.get("FETCH_ALLOWED_NETWORKS", "")
    try:
        allowed_networks = tuple(ipaddress.ip_network(n.strip()) for n in networks.split(",") if n.strip())
    except ValueError as exc:
        raise ValueError(f"FETCH_ALLOWED_NETWORKS: {exc}") from None
    return FetchSettings(
        url_template=_env("MAP_URL_TEMPLATE", AMP_URL_TEMPLATE),
        allowed_hosts=frozenset(_host_entry(h) for h in hosts.split(",") if h.strip()),
        allowed_networks=allowed_networks,
        connect_timeout=_number("FETCH_CONNECT_TIMEOUT", "3.05", above_zero=True),
        read_timeout=_number("FETCH_READ_TIMEOUT", "15", above_zero=True),
        retries=int(_number("FETCH_RETRIES", "3")),
        max_bytes=int(_number("FETCH_MAX_BYTES", str(20 * 1024 * 1024), above_zero=True)),
        deadline=_number("FETCH_DEADLINE", "25", above_zero=True),
    )


def _number(name: str, default: str, above_zero: bool = False) -> float:
    raw = _env(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not (0 <= value < float("inf")) or (above_zero and value == 0):
        least = "above 0" if above_zero else "of 0 or more"
        raise ValueError(f"{name} must be a number {least}, not {raw!r}")
    return value


def _host_entry(entry: str) -> tuple[str, int | None]:
    """An allow-list entry, "host", "host:port", "[v6 address]" or "[v6 address]:port"."""
    text = entry.strip().lower()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"FETCH_ALLOWED_HOSTS: {entry!r} is not host or host:port")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or "/" in host or "@" in host or (":" in host and not text.startswith("[")):
        raise ValueError(f"FETCH_ALLOWED_HOSTS: {entry!r} is not host or host:port")
    if port is None:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"FETCH_ALLOWED_HOSTS: {entry!r} has no valid port")
    return host, int(port)


def map_keys() -> tuple[str, str]:
    """The map source's keys: MAP_CLIENT_ID and MAP_CLIENT_SECRET, or else the SSM
    SecureString parameter MAP_KEYS_PARAMETER names, holding "client_id:client_secret".
    The fetcher asks only when its URL template has a key placeholder."""
    client_id, client_secret = os.environ.get("MAP_CLIENT_ID", ""), os.environ.get("MAP_CLIENT_SECRET", "")
    parameter = os.environ.get("MAP_KEYS_PARAMETER", "")
    if client_id or not parameter:
        return client_id, client_secret
    client_id, _, client_secret = secret(parameter).partition(":")
    return client_id.strip(), client_secret.strip()


def api_token() -> str:
    """The REST API's token: API_TOKEN, or else the SSM SecureString API_TOKEN_PARAMETER names."""
    token, parameter = os.environ.get("API_TOKEN", ""), os.environ.get("API_TOKEN_PARAMETER", "")
    return token if token or not parameter else secret(parameter).strip()


def secret(parameter: str) -> str:
    """An SSM SecureString, read once per container: secrets do not change while it lives."""
    from .aws import parameters

    return parameters().secret(parameter)


def public_url() -> str | None:
    """PUBLIC_URL: the REST API's address as people reach it (for example
    https://abc123.execute-api.us-east-1.amazonaws.com/api/), always ending in "/";
    None when unset. Links in emails are routes under it that redirect to the image."""
    from urllib.parse import urlsplit

    raw = os.environ.get("PUBLIC_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_URL must be an http(s) address with no query or fragment, not {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def max_image_pixels() -> int:
    """Decoded pixels above which an input is refused as a decompression bomb."""
    return int(_env("MAX_IMAGE_PIXELS", str(50_000_000)))
