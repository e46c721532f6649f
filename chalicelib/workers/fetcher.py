"""Fetcher: please-fetch-amp-image -> a map frame in the frames bucket -> did-fetch-amp-image.

The URL comes from a configured template (Aeris AMP by default). Its placeholders:
{client_id} {client_secret} {layers} {width} {height} {center} {zoom}
{time} (UTC YYYYMMDDhhmmss), {iso_time} (YYYY-MM-DDThh:mm:ssZ), {epoch}, and
{bbox} (west,south,east,north in degrees, for WMS sources; needs a "lat,lon" center).
Keys come from configuration and never reach a log line, an S3 key or a message.
"""

from __future__ import annotations

import functools
import math
import re
import string
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .. import storage
from ..errors import PermanentError, SourceError
from ..imaging.decode import probe_frame
from ..log import logger
from ..messages import DidFetchAmpImage, PleaseFetchAmpImage
from ..settings import FetchSettings, fetch_settings, max_image_pixels, names
from .runner import Worker, reply

VALID_DATE_HEADER = "x-aeris-valid-date"
MAX_REDIRECTS = 3
_LAT_LON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")
_RETRY_STATUSES = (500, 502, 503, 504)


class SourceUnavailable(Exception):
    """The source timed out or kept failing with 5xx: worth retrying later."""


def fetch(request: PleaseFetchAmpImage) -> DidFetchAmpImage:
    config = fetch_settings()
    url, shown = build_url(config, request)
    body, headers = download(url, shown, config)
    frame = probe_frame(body, (request.width, request.height), max_image_pixels(), what=f"the answer of {shown}")
    valid_time = answered_valid_time(headers.get(VALID_DATE_HEADER), request.valid_time)
    key = storage.frame_key(request.image_id, valid_time, request.width, request.height, frame.extension)
    location = storage.put_bytes(
        names().frames_bucket, key, body, frame.content_type, valid_time=valid_time, layers=",".join(request.layers)
    )
    return reply(
        DidFetchAmpImage,
        request,
        image_id=request.image_id,
        valid_time=valid_time,
        location=location,
        requestedValidTime=request.valid_time,
        width=request.width,
        height=request.height,
    )


WORKER = Worker("fetch-amp-image", PleaseFetchAmpImage, fetch)


def build_url(config: FetchSettings, request: PleaseFetchAmpImage) -> tuple[str, str]:
    """The URL to GET and the same URL with its keys masked, for logs and errors."""
    when = datetime.fromtimestamp(request.valid_time, timezone.utc)
    values: dict[str, Any] = {
        "layers": ",".join(quote(layer, safe=":()") for layer in request.layers),
        "width": request.width,
        "height": request.height,
        "center": quote(request.center, safe=","),
        "zoom": request.zoom,
        "time": when.strftime("%Y%m%d%H%M%S"),
        "iso_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "epoch": request.valid_time,
    }
    fields = {name for _, name, _, _ in string.Formatter().parse(config.url_template) if name}
    if "bbox" in fields:
        values["bbox"] = bbox(request.center, request.zoom, request.width, request.height)
    unknown = fields - set(values) - {"client_id", "client_secret"}
    if unknown:
        raise PermanentError(f"MAP_URL_TEMPLATE has unknown placeholders: {sorted(unknown)}")
    if fields & {"client_id", "client_secret"} and not (config.client_id and config.client_secret):
        raise PermanentError("the map source needs MAP_CLIENT_ID and MAP_CLIENT_SECRET in configuration")
    url = config.url_template.format(
        client_id=quote(config.client_id, safe=""), client_secret=quote(config.client_secret, safe=""), **values
    )
    shown = config.url_template.format(client_id="***", client_secret="***", **values)
    return url, shown


def bbox(center: str, zoom: int, width: int, height: int) -> str:
    """west,south,east,north around a "lat,lon" center, web-map tiles of 256 px at `zoom`."""
    match = _LAT_LON.match(center)
    if not match:
        raise PermanentError(f"this map source needs center as 'lat,lon', not {center!r}")
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PermanentError(f"center {center!r} is not a latitude and longitude")
    degrees_per_pixel = 360.0 / (256 * 2**zoom)
    half_w = width * degrees_per_pixel / 2
    half_h = height * degrees_per_pixel / 2 * math.cos(math.radians(lat))
    west, east = lon - half_w, lon + half_w
    south, north = max(-90.0, lat - half_h), min(90.0, lat + half_h)
    return ",".join(f"{v:.6f}" for v in (west, south, east, north))


def download(url: str, shown: str, config: FetchSettings) -> tuple[bytes, dict[str, str]]:
    """GET `url` from an allowed host; retries timeouts and 5xx, caps the size."""
    for _ in range(MAX_REDIRECTS + 1):
        _check_allowed(url, shown, config)
        try:
            response = _session(config.retries).get(
                url,
                timeout=(config.connect_timeout, config.read_timeout),
                stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.RetryError as exc:
            raise SourceUnavailable(f"{shown} kept failing: {_reason(exc)}") from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            raise SourceUnavailable(f"{shown} did not answer: {_reason(exc)}") from None
        with response:
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                shown = url if config.client_secret not in url else shown
                continue
            _check_status(response, shown)
            body = _read_capped(response, shown, config.max_bytes)
            return body, {k.lower(): v for k, v in response.headers.items()}
    raise SourceError(f"{shown} redirected more than {MAX_REDIRECTS} times")


def _check_allowed(url: str, shown: str, config: FetchSettings) -> None:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or host not in config.allowed_hosts:
        raise SourceError(f"host {host or '?'!r} of {shown} is not on the fetch allow-list (FETCH_ALLOWED_HOSTS)")


def _check_status(response: requests.Response, shown: str) -> None:
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("content-type", "")
        if content_type and not content_type.startswith("image/"):
            raise SourceError(f"{shown} answered {content_type}, not an image: {_excerpt(response)}")
        return
    if status in _RETRY_STATUSES or status in (408, 429):
        raise SourceUnavailable(f"{shown} answered {status} after retries")
    raise SourceError(f"{shown} answered {status} {response.reason}: {_excerpt(response)}")


def _read_capped(response: requests.Response, shown: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{shown} answered {declared} bytes, over the cap of {max_bytes}")
    chunks, total = [], 0
    for chunk in response.iter_content(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise SourceError(f"{shown} answered more than the cap of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def answered_valid_time(header: str | None, requested: int) -> int:
    """The valid time the source says its frame is for, else the requested one."""
    if not header:
        return requested
    value = header.strip()
    try:
        if value.isdigit():
            return int(value[:10]) if len(value) == 13 else int(value)  # seconds or ms
        if re.fullmatch(r"\d{14}", value):
            return int(datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp())
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp())
    except (ValueError, TypeError, OverflowError):
        logger.warning(f"unreadable {VALID_DATE_HEADER} {value!r}; using the requested valid time")
        return requested


@functools.cache
def _session(retries: int) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.3,
        backoff_max=5,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "weathergif/1.0"
    return session


def _reason(exc: Exception) -> str:
    """The kind of failure, never its text: requests puts the URL (with keys) there."""
    cause = exc.args[0] if exc.args else None
    return type(getattr(cause, "reason", None) or exc).__name__


def _excerpt(response: requests.Response) -> str:
    try:
        text = next(response.iter_content(300), b"").decode("utf-8", "replace")
    except requests.exceptions.RequestException:
        return ""
    return " ".join(text.split())[:200]
