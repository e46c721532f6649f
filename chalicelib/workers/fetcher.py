"""Fetcher: please-fetch-amp-image -> a map frame in the frames bucket -> did-fetch-amp-image.

The URL comes from a configured template (Aeris AMP by default). Its placeholders:
{client_id} {client_secret} {layers} {width} {height} {center} {zoom}
{time} (UTC YYYYMMDDhhmmss), {iso_time} (YYYY-MM-DDThh:mm:ssZ), {epoch}, and
{bbox}, for WMS sources: the GetMap BBOX of the view a web map shows at {zoom} (256-pixel tiles)
around a "lat,lon" center, with square pixels, in the template's own SRS or CRS (EPSG:4326 when
it names none): EPSG:4326 and CRS:84 in degrees, west,south,east,north, but south,west,north,east
for WMS 1.3.0 with EPSG:4326 (its axis order is latitude first); EPSG:3857 in metres: the view a
web map shows (EPSG:4326's covers the same longitudes and 1/cos(latitude) times the latitudes).

Keys are read only when the template has a key placeholder, and never reach a log line,
an S3 key or a message: every text that leaves the fetcher (errors, excerpts of the
source's answers, redirect targets, log records) goes through a redactor built from them
(chalicelib.redaction). The source is fetched through chalicelib.safehttp: allow-listed
hosts and ports, checked again at every redirect, public addresses only (unless
FETCH_ALLOWED_NETWORKS says otherwise), and one deadline for the whole fetch.

A WMS server answers an error as an OGC exception report with HTTP 200 (MapServer: a
ServiceExceptionReport, as application/vnd.ogc.se_xml or text/xml): whatever its Content-Type,
such an answer is a did-fail that carries the report's codes and text (redacted, cut short), not
a retry and not "not an image".
"""

from __future__ import annotations

import math
import os
import re
import string
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit
from xml.parsers import expat

import requests

from .. import redaction, safehttp, storage, telemetry
from ..aws import objects
from ..aws.clients import error_code
from ..errors import PermanentError, ServiceException, SourceError
from ..imaging.decode import probe_frame
from ..messages import DidFetchAmpImage, Location, PleaseFetchAmpImage
from ..redaction import MIN_SECRET_LENGTH, Redactor
from ..credentials import map_keys
from ..settings import FetchSettings, fetch_settings, max_image_pixels, names
from .runner import Worker, lambda_context, reply

VALID_DATE_HEADER = "x-aeris-valid-date"
MAX_REDIRECTS = 3
# An answered valid time further than this from the requested one (or this far past the
# later of now and the requested time) is not the frame that was asked for: a did-fail.
MAX_VALID_TIME_SKEW = 24 * 3600
# Of the Lambda invocation's remaining time, a quarter (at most this) is kept for storing
# the frame and answering; the fetch deadline never reaches into it.
ANSWER_MARGIN = 10.0
EXCERPT_CHARS = 200
# An OGC exception report is read when it is at most this long; what it says is cut to REPORT_CHARS.
MAX_REPORT_BYTES = 64 * 1024
REPORT_CHARS = 300
_LAT_LON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")
_RETRY_STATUSES = (500, 502, 503, 504)
_KEY_FIELDS = {"client_id", "client_secret"}
# SSM answers that retrying cannot change: the keys are missing or may not be read.
_UNREADABLE_PARAMETER = {
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "AccessDenied",
    "AccessDeniedException",
    "InvalidKeyId",
    "KMSAccessDeniedException",
    "ValidationException",
}


class SourceUnavailable(Exception):
    """The source timed out or kept failing with 5xx: worth retrying later."""


def fetch(request: PleaseFetchAmpImage) -> DidFetchAmpImage:
    try:
        config = fetch_settings()
    except ValueError as exc:
        raise PermanentError(f"the fetcher's configuration is wrong: {exc}") from None
    keys = template_keys(config.url_template)
    url, shown = build_url(config, request, keys)
    body, headers = download(url, shown, config)
    _refuse_report(body, shown)  # an exception report served as an image, or with no Content-Type
    frame = probe_frame(body, (request.width, request.height), max_image_pixels(), what=f"the answer of {shown}")
    valid_time = answered_valid_time(headers.get(VALID_DATE_HEADER), request.valid_time)
    key = storage.frame_key(request.image_id, valid_time, request.width, request.height, frame.extension)
    bucket = names().frames_bucket
    answer = reply(  # built, and so validated, before anything is stored
        DidFetchAmpImage,
        request,
        image_id=request.image_id,
        valid_time=valid_time,
        location=Location(bucket=bucket, key=key),
        requested_valid_time=request.valid_time,
        width=request.width,
        height=request.height,
    )
    objects().put(bucket, key, body, frame.content_type, valid_time=valid_time, layers=",".join(request.layers))
    return answer


WORKER = Worker("fetch-amp-image", PleaseFetchAmpImage, fetch)


def template_fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise PermanentError(f"MAP_URL_TEMPLATE cannot be read: {exc}") from None


def template_keys(template: str) -> dict[str, str]:
    """The keys the template needs (none for a keyless one: nothing is read then), with the
    redactor built from them put in force. PermanentError when they are missing or unusable."""
    env = {"client_id": _env_key("MAP_CLIENT_ID"), "client_secret": _env_key("MAP_CLIENT_SECRET")}
    redaction.activate(Redactor(env.values()))  # configured keys are kept out of texts even if unused
    needed = template_fields(template) & _KEY_FIELDS
    if not needed:
        return {}
    try:
        client_id, client_secret = map_keys()
    except Exception as exc:
        code = error_code(exc)
        if code in _UNREADABLE_PARAMETER:
            raise PermanentError(f"the map keys cannot be read from MAP_KEYS_PARAMETER: {code}") from None
        raise  # throttling, a timeout: worth retrying
    keys = {"client_id": client_id, "client_secret": client_secret}
    redaction.activate(Redactor([*env.values(), *keys.values()]))
    missing = sorted(name for name in needed if not keys[name])
    if missing:
        raise PermanentError(
            f"the map source needs {' and '.join(missing)}: set MAP_CLIENT_ID and MAP_CLIENT_SECRET, or "
            "MAP_KEYS_PARAMETER naming an SSM SecureString that holds client_id:client_secret"
        )
    secret = "client_secret" if "client_secret" in needed else "client_id"
    if len(keys[secret]) < MIN_SECRET_LENGTH:
        raise PermanentError(
            f"the map source's {secret} is shorter than {MIN_SECRET_LENGTH} characters: too short to keep out of logs"
        )
    return {name: keys[name] for name in needed}


def _env_key(name: str) -> str:
    return os.environ.get(name, "")


def build_url(
    config: FetchSettings, request: PleaseFetchAmpImage, keys: dict[str, str] | None = None
) -> tuple[str, str]:
    """The URL to GET and the same URL with its keys masked, for logs and errors."""
    keys = keys or {}
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
    fields = template_fields(config.url_template)
    if "bbox" in fields:
        crs, lat_first = bbox_crs(config.url_template)
        values["bbox"] = bbox(request.center, request.zoom, request.width, request.height, crs, lat_first)
    unknown = fields - set(values) - _KEY_FIELDS
    if unknown:
        raise PermanentError(f"MAP_URL_TEMPLATE has unknown or unnamed placeholders: {sorted(unknown)}")
    missing = (fields & _KEY_FIELDS) - set(keys)
    if missing:
        raise PermanentError(f"the map source needs {' and '.join(sorted(missing))}")
    try:
        url = config.url_template.format(**{k: quote(v, safe="") for k, v in keys.items()}, **values)
        shown = config.url_template.format(**{k: "***" for k in keys}, **values)
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise PermanentError(f"MAP_URL_TEMPLATE cannot be filled in: {type(exc).__name__}") from None
    return url, redaction.redact(shown)


# The names WMS servers give Web Mercator; EPSG:4326 and CRS:84 are the same degrees, axes apart.
_WEB_MERCATOR = {"EPSG:3857", "EPSG:900913", "EPSG:102100", "EPSG:102113", "EPSG:3785"}
_DEGREES = {"EPSG:4326", "CRS:84"}
_EARTH_RADIUS = 6378137.0  # Web Mercator's sphere, in metres
_MERCATOR_LAT = 85.0511287798  # the latitude where Web Mercator's square world ends


def bbox_crs(template: str) -> tuple[str, bool]:
    """The CRS a template's {bbox} is in (its CRS or SRS parameter, EPSG:4326 when it names none)
    and whether its axes are latitude first (WMS 1.3.0 with EPSG:4326)."""
    query = {k.upper(): v.strip().upper() for k, v in parse_qsl(urlsplit(template).query, keep_blank_values=True)}
    crs = query.get("CRS") or query.get("SRS") or "EPSG:4326"
    if crs not in _DEGREES | _WEB_MERCATOR:
        raise PermanentError(
            f"MAP_URL_TEMPLATE's {{bbox}} is computed in EPSG:4326, CRS:84 or EPSG:3857, not {_shown(crs, 60)}"
        )
    return crs, crs == "EPSG:4326" and query.get("VERSION", "").startswith("1.3")


def bbox(center: str, zoom: int, width: int, height: int, crs: str = "EPSG:4326", lat_first: bool = False) -> str:
    """The GetMap BBOX of the `width` x `height` view around a "lat,lon" center that web-map tiles
    of 256 px show at `zoom`, with square pixels: in degrees (EPSG:4326, CRS:84) as
    west,south,east,north, or south,west,north,east when `lat_first`; in metres for Web Mercator."""
    match = _LAT_LON.match(center)
    if not match:
        raise PermanentError(f"this map source needs center as 'lat,lon', not {center!r}")
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise PermanentError(f"center {center!r} is not a latitude and longitude")
    if crs in _WEB_MERCATOR:
        metres = 2 * math.pi * _EARTH_RADIUS / (256 * 2**zoom)  # a pixel, at the equator and on the map
        x = _EARTH_RADIUS * math.radians(lon)
        lat = max(-_MERCATOR_LAT, min(_MERCATOR_LAT, lat))
        y = _EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        half_w, half_h = width * metres / 2, height * metres / 2
        return ",".join(f"{v:.2f}" for v in (x - half_w, y - half_h, x + half_w, y + half_h))
    degrees = 360.0 / (256 * 2**zoom)  # a pixel, east-west and north-south alike
    half_w, half_h = width * degrees / 2, height * degrees / 2
    west, east = lon - half_w, lon + half_w
    # A view taller than the world from pole to pole is cut at the poles; otherwise it is moved inside.
    south = min(max(-90.0, lat - half_h), 90.0 - 2 * half_h) if half_h < 90 else -90.0
    north = min(90.0, south + 2 * half_h)
    corners = (south, west, north, east) if lat_first else (west, south, east, north)
    return ",".join(f"{v:.6f}" for v in corners)


def download(url: str, shown: str, config: FetchSettings) -> tuple[bytes, dict[str, str]]:
    """GET `url` from an allowed origin within the deadline; retries timeouts and 5xx,
    follows at most MAX_REDIRECTS redirects (each checked), caps the size."""
    first = _origin_of_template(url)
    policy = safehttp.Policy(
        hosts=config.allowed_hosts,
        # The template's own port is allowed for its host: the configuration names it.
        origins=frozenset([first]) if first and (first.host, None) in config.allowed_hosts else frozenset(),
        networks=config.allowed_networks,
    )
    seconds = fetch_deadline(config)
    with safehttp.Client(
        policy,
        deadline=seconds,
        retries=config.retries,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retry_statuses=_RETRY_STATUSES,
    ) as client:
        try:
            return _follow(client, url, shown, config)
        except safehttp.DeadlineExceeded:
            raise _deadline_error(shown, seconds) from None
        except (SourceUnavailable, requests.exceptions.RequestException, OSError):
            if client.expired:
                raise _deadline_error(shown, seconds) from None
            raise


def _follow(client: safehttp.Client, url: str, shown: str, config: FetchSettings) -> tuple[bytes, dict[str, str]]:
    scheme = ""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            prepared, where = client.prepare(url)
        except safehttp.Refused as exc:
            raise SourceError(f"{shown}: {redaction.redact(str(exc))} (FETCH_ALLOWED_HOSTS)") from None
        if scheme == "https" and where.scheme != "https":
            raise SourceError(f"{shown} redirected from https to http")
        scheme = where.scheme
        try:
            response = client.send(prepared)
        except safehttp.Refused as exc:
            raise SourceError(f"{shown}: {redaction.redact(str(exc))}") from None
        except requests.exceptions.RetryError as exc:
            raise SourceUnavailable(f"{shown} kept failing: {_reason(exc)}") from None
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            raise SourceUnavailable(f"{shown} did not answer: {_reason(exc)}") from None
        with response:
            if response.is_redirect:
                url = urljoin(prepared.url or url, response.headers["location"])
                shown = _shown(url, 300)
                continue
            _check_status(response, shown)
            body = _read_capped(client, response, shown, config.max_bytes)
            client.check()  # a body the watchdog cut short is not a body
            telemetry.bytes_in(len(body))
            return body, {k.lower(): v for k, v in response.headers.items()}
    raise SourceError(f"{shown} redirected more than {MAX_REDIRECTS} times")


def _origin_of_template(url: str) -> safehttp.Origin | None:
    try:
        return safehttp.origin(requests.Request("GET", url).prepare().url or "")
    except (safehttp.Refused, requests.exceptions.RequestException, ValueError):
        return None  # the client refuses it with a reason


def fetch_deadline(config: FetchSettings) -> float:
    """FETCH_DEADLINE, but never past the invocation's remaining time less the answer margin."""
    seconds = config.deadline
    context = lambda_context.get()
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        remaining = remaining_ms() / 1000
        seconds = min(seconds, remaining - min(ANSWER_MARGIN, remaining / 4))
    return seconds


def _deadline_error(shown: str, seconds: float) -> SourceError:
    return SourceError(
        f"{shown} did not answer in full within the fetch deadline of {max(seconds, 0):g} s "
        "(FETCH_DEADLINE, and the invocation's remaining time)"
    )


def _check_status(response: requests.Response, shown: str) -> None:
    status = response.status_code
    if status == 200:
        content_type = response.headers.get("content-type", "")
        if content_type and not content_type.startswith("image/"):
            data, truncated = _start_of(response)
            if not truncated:
                _refuse_report(data, shown)
            raise SourceError(
                f"{shown} answered {_shown(content_type, 100)}, not an image: {_excerpt(data, truncated)}"
            )
        return
    if status in _RETRY_STATUSES or status in (408, 429):
        raise SourceUnavailable(f"{shown} answered {status} after retries")
    data, truncated = _start_of(response)
    report = None if truncated else service_exception(data)
    said = f"ServiceException {_shown(report, REPORT_CHARS)}" if report is not None else _excerpt(data, truncated)
    raise SourceError(f"{shown} answered {status} {_shown(response.reason or '', 100)}: {said}")


def _refuse_report(data: bytes, shown: str) -> None:
    """ServiceException when `data` is an OGC exception report."""
    report = service_exception(data)
    if report is not None:
        raise ServiceException(f"{shown} answered a ServiceException: {_shown(report, REPORT_CHARS)}")


_REPORTS = {"ServiceExceptionReport", "ExceptionReport"}  # WMS 1.1.1 and 1.3.0; OWS Common (ows:)
_EXCEPTIONS = {"ServiceException", "Exception"}


def service_exception(data: bytes) -> str | None:
    """What an OGC exception report says, each exception as "code: text" (WMS ServiceExceptionReport
    1.1.1 and 1.3.0, OWS ExceptionReport with its ExceptionText), or None when `data` is not one.

    Parsed with expat, bounded: at most MAX_REPORT_BYTES, and no entity declarations (an internal
    DTD subset is refused, so nothing is expanded). A DOCTYPE naming an external DTD, as MapServer's
    1.1.1 reports have, is allowed: expat never fetches it."""
    if len(data) > MAX_REPORT_BYTES or not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return None

    class Refused(Exception):
        pass

    def refuse(*args: Any) -> int:
        raise Refused

    def doctype(name: str, system_id: str | None, public_id: str | None, internal_subset: bool) -> None:
        if internal_subset:
            raise Refused

    names: list[str] = []  # the open elements' local names
    parts: list[list[str]] = []  # per exception: its code, then its text

    def start(name: str, attributes: dict[str, str]) -> None:
        local = name.rpartition(" ")[2]
        if not names and local not in _REPORTS:
            raise Refused
        if len(names) == 1 and local in _EXCEPTIONS:
            parts.append([attributes.get("code") or attributes.get("exceptionCode") or ""])
        text(" ")  # ows:ExceptionText elements are words apart
        names.append(local)

    def end(name: str) -> None:
        names.pop()
        text(" ")

    def text(data: str) -> None:
        if len(names) >= 2 and names[1] in _EXCEPTIONS:
            parts[-1].append(data)

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except (Refused, expat.ExpatError, ValueError, LookupError):
        return None
    said = []
    for code, *texts in parts:
        words = " ".join("".join(c if c.isprintable() else " " for c in "".join(texts)).split())
        said.append(f"{code}: {words}" if code and words else code or words)
    return "; ".join(part for part in said if part) or "(an exception report with no text)"


def _read_capped(client: safehttp.Client, response: requests.Response, shown: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise SourceError(f"{shown} answered {int(declared)} bytes, over the cap of {max_bytes}")
    chunks, total = [], 0
    try:
        for chunk in response.iter_content(64 * 1024):
            client.check()
            total += len(chunk)
            if total > max_bytes:
                raise SourceError(f"{shown} answered more than the cap of {max_bytes} bytes")
            chunks.append(chunk)
    except requests.exceptions.RequestException as exc:
        client.check()
        raise SourceUnavailable(f"{shown} broke off its answer: {_reason(exc)}") from None
    return b"".join(chunks)


def answered_valid_time(header: str | None, requested: int, now: float | None = None) -> int:
    """The valid time the source says its frame is for (ISO 8601 with or without an offset,
    UTC YYYYMMDDhhmmss, epoch seconds or milliseconds, or an RFC 2822 date), else the
    requested one. SourceError when it cannot be read or is not a time for this request."""
    if header is None or not header.strip():
        return requested
    value = header.strip()
    shown = _shown(value, 60)
    seconds = parse_valid_time(value)
    if seconds is None:
        raise SourceError(f"the source's {VALID_DATE_HEADER} {shown!r} is not a time")
    now = time.time() if now is None else now
    if seconds < 0:
        raise SourceError(f"the source's {VALID_DATE_HEADER} {shown!r} is before 1970")
    if seconds > max(now, requested) + MAX_VALID_TIME_SKEW:
        raise SourceError(f"the source's {VALID_DATE_HEADER} {shown!r} is more than a day in the future")
    if abs(seconds - requested) > MAX_VALID_TIME_SKEW:
        raise SourceError(
            f"the source's {VALID_DATE_HEADER} {shown!r} is more than a day from the requested time {requested}"
        )
    return seconds


def parse_valid_time(value: str) -> int | None:
    """Epoch seconds of a valid-time text, or None when it is none of the forms read."""
    if len(value) > 64:  # no date is this long
        return None
    try:
        if re.fullmatch(r"\d{14}", value):  # before the all-digits forms: 20231114221500 is no epoch
            return int(datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp())
        if re.fullmatch(r"[+-]?\d{1,16}(\.\d{1,9})?", value):
            number = float(value) if "." in value else int(value)
            if abs(number) >= 10**11:  # 1e11 s is the year 5138: this many is milliseconds
                number = number / 1000
            return math.floor(number)
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return math.floor(when.timestamp())
    except (ValueError, TypeError, OverflowError, IndexError, OSError):
        return None


def _reason(exc: Exception) -> str:
    """The kind of failure, never its text: requests puts the URL (with keys) there."""
    cause = exc.args[0] if exc.args else None
    return type(getattr(cause, "reason", None) or exc).__name__


def _start_of(response: requests.Response, limit: int = MAX_REPORT_BYTES) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the source's answer, and whether there was more."""
    try:
        data = response.raw.read(limit + 1, decode_content=True) or b""
    except Exception:
        return b"", True
    return data[:limit], len(data) > limit


def _excerpt(data: bytes, truncated: bool) -> str:
    """The start of the source's answer, redacted and cut short, for an error."""
    return redaction.active().excerpt(data[:4096], EXCERPT_CHARS, truncated or len(data) > 4096)


def _shown(text: str, limit: int) -> str:
    """`text` redacted, then cut to `limit` characters (in this order: a secret cut in two
    would no longer be recognised)."""
    text = redaction.redact(text)
    return text if len(text) <= limit else text[:limit] + "..."
