"""Configuration from the environment: resource names, fetcher and image limits.

Standard library only, so app.py can read resource names at import time
(a Lambda cold start) without pulling in anything heavy.
"""

from __future__ import annotations

import os
from typing import Generic, NamedTuple, TypeVar

APP = "weathergif"
STAGE_VARIABLE = "STAGE"
STAGE = os.environ.get(STAGE_VARIABLE, "dev")
PREFIX = f"{APP}-{STAGE}"

AMP_URL_TEMPLATE = (
    "https://maps.aerisapi.com/{client_id}_{client_secret}/{layers}/{width}x{height}/{center},{zoom}/{time}.png"
)
# The fetch schedule's period: each animation asks for its frame at a phase of its own within its
# interval, so every tick asks a share of them (chalicelib.mediator.decide.phase).
FETCH_EVERY_MINUTES = int(os.environ.get("FETCH_EVERY_MINUTES") or 1)
TICK_SECONDS = FETCH_EVERY_MINUTES * 60
# Aeris AMP is Xweather now: maps.api.xweather.com is its current host, maps.aerisapi.com its old one.
DEFAULT_ALLOWED_HOSTS = "maps.api.xweather.com,maps.aerisapi.com,mesonet.agron.iastate.edu,gibs.earthdata.nasa.gov"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


# Each environment variable that names something of the stage is written here once: the app reads
# the names through names(), deploy/record.py records a stack's outputs as these variables in
# .chalice/config.json (which holds the values), deploy/policies.py reads them back from there, and
# local/stack.py hands them on to `chalice local`. (Kept lean: app.py imports this at a cold start.)
MAP_KEYS_PARAMETER = "MAP_KEYS_PARAMETER"  # the SSM SecureStrings (/weathergif/{stage}/map-keys, ...)
API_TOKEN_PARAMETER = "API_TOKEN_PARAMETER"


class Resource:
    """A resource of the stage: the environment variable naming it, its default name's suffix
    (weathergif-{stage}-{suffix}) and the output of resources/template.yaml that reports it."""

    __slots__ = ("variable", "suffix", "output")

    def __init__(self, variable: str, suffix: str, output: str):
        self.variable, self.suffix, self.output = variable, suffix, output


T = TypeVar("T")


class Roles(NamedTuple, Generic[T]):
    """The stage's resources by role: names() holds their names; RESOURCES, the table, a Resource each."""

    frames_bucket: T
    thumbnails_bucket: T
    gifs_bucket: T
    uploads_bucket: T
    table: T
    mediator_queue: T
    tick_queue: T
    dead_letter_queue: T
    tick_dead_letter_queue: T
    worker_failure_queue: T
    fetch_topic: T
    thumbnail_topic: T
    gif_topic: T
    email_topic: T


Names = Roles[str]

RESOURCES: Roles[Resource] = Roles(
    frames_bucket=Resource("FRAMES_BUCKET", "frames", "FramesBucket"),
    thumbnails_bucket=Resource("THUMBNAILS_BUCKET", "thumbnails", "ThumbnailsBucket"),
    gifs_bucket=Resource("GIFS_BUCKET", "gifs", "GifsBucket"),
    uploads_bucket=Resource("UPLOADS_BUCKET", "uploads", "UploadsBucket"),
    table=Resource("TABLE_NAME", "state", "TableName"),
    # FIFO: one message group per animation (chalicelib.bus), and so its dead-letter queue
    mediator_queue=Resource("MEDIATOR_QUEUE", "mediator.fifo", "MediatorQueue"),
    tick_queue=Resource("TICK_QUEUE", "ticks", "TickQueue"),
    dead_letter_queue=Resource("DEAD_LETTER_QUEUE", "mediator-dlq.fifo", "MediatorDeadLetterQueue"),
    tick_dead_letter_queue=Resource("TICK_DEAD_LETTER_QUEUE", "ticks-dlq", "TickDeadLetterQueue"),
    worker_failure_queue=Resource("WORKER_FAILURE_QUEUE", "worker-failures", "WorkerFailureQueue"),
    fetch_topic=Resource("FETCH_TOPIC", "please-fetch-amp-image", "FetchTopic"),
    thumbnail_topic=Resource("THUMBNAIL_TOPIC", "please-create-thumbnail", "ThumbnailTopic"),
    gif_topic=Resource("GIF_TOPIC", "please-create-gif", "GifTopic"),
    email_topic=Resource("EMAIL_TOPIC", "please-send-email", "EmailTopic"),
)


def names() -> Names:
    """The resources' names, read at import for app.py's decorators: each its variable's value, else its default."""
    return Roles(*(_env(r.variable, f"{PREFIX}-{r.suffix}") for r in RESOURCES))


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
    """The fetcher's configuration (not its keys: see chalicelib.credentials). ValueError names a bad value."""
    import ipaddress

    hosts = _env("FETCH_ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS)
    networks = os.environ.get("FETCH_ALLOWED_NETWORKS", "")
    try:
        allowed_networks = tuple(ipaddress.ip_network(n.strip()) for n in networks.split(",") if n.strip())
    except ValueError as exc:
        raise ValueError(f"FETCH_ALLOWED_NETWORKS: {exc}") from None
    return FetchSettings(
        url_template=_env("MAP_URL_TEMPLATE", AMP_URL_TEMPLATE),
        allowed_hosts=frozenset(host_entry(h, "FETCH_ALLOWED_HOSTS") for h in hosts.split(",") if h.strip()),
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


def host_entry(entry: str, variable: str) -> tuple[str, int | None]:
    """An allow-list entry, "host", "host:port", "[v6 address]" or "[v6 address]:port" (ValueError
    naming `variable`, where it was found, when it is none of them)."""
    text = entry.strip().lower()
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{variable}: {entry!r} is not host or host:port")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or "/" in host or "@" in host or (":" in host and not text.startswith("[")):
        raise ValueError(f"{variable}: {entry!r} is not host or host:port")
    if port is None:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{variable}: {entry!r} has no valid port")
    return host, int(port)


PUBLIC_URL_VARIABLE = "PUBLIC_URL"  # recorded for the mediator's function alone by `make deploy`


def public_url() -> str | None:
    """PUBLIC_URL: the REST API's address as people reach it (for example
    https://abc123.execute-api.us-east-1.amazonaws.com/api/), always ending in "/";
    None when unset. Links in emails are routes under it that redirect to the image."""
    from urllib.parse import urlsplit

    raw = os.environ.get(PUBLIC_URL_VARIABLE, "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_URL must be an http(s) address with no query or fragment, not {raw!r}")
    return raw if raw.endswith("/") else raw + "/"


def max_image_pixels() -> int:
    """Decoded pixels above which an input is refused as a decompression bomb."""
    return int(_env("MAX_IMAGE_PIXELS", str(50_000_000)))
