"""Configuration from the environment: resource names, fetcher and image limits.

Standard library only, so app.py can read resource names at import time
(a Lambda cold start) without pulling in anything heavy.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

STAGE = os.environ.get("STAGE", "dev")
PREFIX = f"weathergif-{STAGE}"

AMP_URL_TEMPLATE = (
    "https://maps.aerisapi.com/{client_id}_{client_secret}/{layers}/"
    "{width}x{height}/{center},{zoom}/{time}.png"
)
FETCH_EVERY_MINUTES = int(os.environ.get("FETCH_EVERY_MINUTES") or 5)
DEFAULT_ALLOWED_HOSTS = "maps.aerisapi.com,mesonet.agron.iastate.edu,gibs.earthdata.nasa.gov"


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
        worker_failure_queue=_env("WORKER_FAILURE_QUEUE", f"{PREFIX}-worker-failures"),
        fetch_topic=_env("FETCH_TOPIC", f"{PREFIX}-please-fetch-amp-image"),
        thumbnail_topic=_env("THUMBNAIL_TOPIC", f"{PREFIX}-please-create-thumbnail"),
        gif_topic=_env("GIF_TOPIC", f"{PREFIX}-please-create-gif"),
        email_topic=_env("EMAIL_TOPIC", f"{PREFIX}-please-send-email"),
    )


class FetchSettings(NamedTuple):
    url_template: str
    client_id: str
    client_secret: str
    allowed_hosts: frozenset[str]
    connect_timeout: float
    read_timeout: float
    retries: int
    max_bytes: int


def fetch_settings() -> FetchSettings:
    hosts = _env("FETCH_ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS)
    client_id, client_secret = map_keys()
    return FetchSettings(
        url_template=_env("MAP_URL_TEMPLATE", AMP_URL_TEMPLATE),
        client_id=client_id,
        client_secret=client_secret,
        allowed_hosts=frozenset(h.strip().lower() for h in hosts.split(",") if h.strip()),
        connect_timeout=float(_env("FETCH_CONNECT_TIMEOUT", "3.05")),
        read_timeout=float(_env("FETCH_READ_TIMEOUT", "15")),
        retries=int(_env("FETCH_RETRIES", "3")),
        max_bytes=int(_env("FETCH_MAX_BYTES", str(20 * 1024 * 1024))),
    )


def map_keys() -> tuple[str, str]:
    """The map source's keys: MAP_CLIENT_ID and MAP_CLIENT_SECRET, or else the SSM
    SecureString parameter MAP_KEYS_PARAMETER names, holding "client_id:client_secret"."""
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


@functools.cache
def secret(parameter: str) -> str:
    """An SSM SecureString, read once per container: secrets do not change while it lives."""
    from .aws import client

    return client("ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]


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
