"""Fetcher: please-fetch-amp-image -> a map frame in the frames bucket -> did-fetch-amp-image.

The request names its map source (chalicelib.sources; the stage's default when it names none),
and the URL comes from that source's template. Its placeholders:
{client_id} {client_secret} {layers} {width} {height} {center} {zoom}
{time} (UTC YYYYMMDDhhmmss), {iso_time} (YYYY-MM-DDThh:mm:ssZ), {epoch},
{bbox}, for WMS sources: the GetMap BBOX of the view a web map shows at {zoom} (256-pixel tiles)
around a "lat,lon" center, with square pixels, in the template's own SRS or CRS (EPSG:4326 when
it names none): EPSG:4326 and CRS:84 in degrees, west,south,east,north, but south,west,north,east
for WMS 1.3.0 with EPSG:4326 (its axis order is latitude first); EPSG:3857 in metres: the view a
web map shows (EPSG:4326's covers the same longitudes and 1/cos(latitude) times the latitudes);
and for a forecast source {run_time} and {run_iso_time}, the request's runTime in the same two forms.

A source's keys are read only when its template has a key placeholder (once per container per
source), and never reach a log line, an S3 key or a message. A text that leaves the fetcher
(errors, log records) names a fetch by its source's name, its origin (scheme://host:port) and
the HTTP status, never by the URL's path or query, redirect targets included; what the source
says (an excerpt of its answer, a header) goes through a redactor built from the keys in force
(chalicelib.redaction), the second line of defence. The source is fetched through
chalicelib.safehttp: the source's own hosts and ports, checked again at every redirect, public
addresses only (unless FETCH_ALLOWED_NETWORKS says otherwise), and one deadline for the whole
request.

With a `basemap`, the frame is a transparent overlay drawn over the basemap of its view (the
basemap's source and layers, the size, center and zoom): read from the frames bucket, or fetched
from its source (with that source's keys and hosts) and kept there the first time; the composed
frame is stored. Frames of a forecast are stored under their run (chalicelib.storage.frame_key).

A WMS server answers an error as an OGC exception report with HTTP 200 (MapServer: a
ServiceExceptionReport, as application/vnd.ogc.se_xml or text/xml): whatever its Content-Type,
such an answer is a did-fail that carries the report's codes and text (redacted, cut short), not
a retry and not "not an image".
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urljoin, urlsplit
from xml.parsers import expat

import requests

from .. import redaction, safehttp, sources, storage, telemetry
from ..aws import objects
from ..aws.clients import error_code
from ..credentials import source_keys
from ..errors import ImageError, MissingObject, PermanentError, ServiceException, SourceError
from ..imaging.decode import has_alpha, load, open_image, probe_frame
from ..messages import DidFetchAmpImage, Location, PleaseFetchAmpImage
from ..redaction import MIN_SECRET_LENGTH, Redactor
from ..settings import FetchSettings, fetch_settings, max_image_pixels, names
from ..sources import KEY_FIELDS, Source
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
    source = resolve(request.source)
    check_run(source, request)
    deadline = Deadline(fetch_deadline(config))
    keys = Keys()
    size = (request.width, request.height)
    body, headers = download(build_url(source, request, keys.of(source)), source, config, deadline)
    what = f"the answer of {named(source)}"
    _refuse_report(body, named(source))  # an exception report served as an image, or with no Content-Type
    frame = probe_frame(body, size, max_image_pixels(), what=what)
    valid_time = answered_valid_time(headers.get(VALID_DATE_HEADER), request.valid_time)
    if request.basemap is not None:
        body = stacked(request, body, what, config, deadline, keys)
        frame = probe_frame(body, size, max_image_pixels(), what="the composed frame")
    key = storage.frame_key(
        request.image_id, valid_time, request.width, request.height, frame.extension, run_time=request.run_time
    )
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
        source=request.source,
        run_time=request.run_time,
    )
    about = {"source": source.name, **({"run_time": request.run_time} if request.run_time is not None else {})}
    objects().put(
        bucket, key, body, frame.content_type, valid_time=valid_time, layers=",".join(request.layers), **about
    )
    return answer


WORKER = Worker("fetch-amp-image", PleaseFetchAmpImage, fetch)


# Sources and runs ---------------------------------------------------------------------------------


def resolve(name: str | None) -> Source:
    """The source a request names (the default for none): a did-fail for a name the stage does not
    have, a configuration that cannot be read, or (the legacy source's) a template that cannot be used."""
    try:
        found = sources.source(name)
    except sources.UnknownSource as exc:
        raise PermanentError(str(exc)) from None
    except ValueError as exc:
        raise PermanentError(f"the fetcher's configuration is wrong: {exc}") from None
    problems = found.problems()
    if problems:
        variable = "MAP_URL_TEMPLATE" if found.legacy else f"map source {found.name!r}'s urlTemplate"
        raise PermanentError(f"{variable} {'; '.join(problems)}")
    return found


def check_run(source: Source, request: PleaseFetchAmpImage) -> None:
    """A forecast source that names its run in the URL needs the request's runTime; an
    observation source has no runs."""
    if request.run_time is None and source.selects_run:
        raise PermanentError(f"map source {source.name!r} names the model run in its URL: the request needs runTime")
    if request.run_time is not None and not source.times.forecast:
        raise PermanentError(f"map source {source.name!r} serves observations, which have no model run (runTime)")


def named(source: Source, where: safehttp.Origin | None = None, redirects: int = 0) -> str:
    """How a text names a fetch: the source, its origin and, after redirects, where they went
    (scheme://host:port), never a path or query."""
    home = _home(source)
    text = f"map source {source.name!r} at {home or '(a URL that cannot be read)'}"
    if redirects:
        text += f" (after {redirects} redirect{'s' if redirects > 1 else ''}"
        text += f", to {where})" if where is not None and where != home else ")"
    return text


def _home(source: Source) -> safehttp.Origin | None:
    try:
        scheme, host, port = sources.template_host(source.url_template)
    except ValueError:
        return None
    return safehttp.Origin(scheme, host, port or safehttp.DEFAULT_PORTS[scheme])


# Keys ---------------------------------------------------------------------------------------------


class Keys:
    """The keys a request's sources need, each read once per container (credentials), and the
    redactor made of every one of them (and the configured legacy ones, used or not) put in force."""

    def __init__(self) -> None:
        self.secrets: set[str] = {os.environ.get("MAP_CLIENT_ID", ""), os.environ.get("MAP_CLIENT_SECRET", "")}
        self.secrets.discard("")
        redaction.activate(_redactor(frozenset(self.secrets)))

    def of(self, source: Source) -> dict[str, str]:
        """The keys `source`'s template needs (none for a keyless one: nothing is read then).
        PermanentError when they are missing or unusable; a passing error (throttling) raised."""
        needed = source.fields & KEY_FIELDS
        if not needed:
            return {}
        where = "MAP_KEYS_PARAMETER" if source.legacy else "its SSM parameter (keysParameter)"
        try:
            client_id, client_secret = source_keys(source)
        except Exception as exc:
            code = error_code(exc)
            if code in _UNREADABLE_PARAMETER:
                raise PermanentError(
                    f"the keys of map source {source.name!r} cannot be read from {where}: {code}"
                ) from None
            raise  # throttling, a timeout: worth retrying
        keys = {"client_id": client_id, "client_secret": client_secret}
        self.secrets.update(value for value in keys.values() if value)
        redaction.activate(_redactor(frozenset(self.secrets)))
        missing = sorted(name for name in needed if not keys[name])
        if missing:
            how = (
                "set MAP_CLIENT_ID and MAP_CLIENT_SECRET, or MAP_KEYS_PARAMETER naming an SSM SecureString"
                if source.legacy
                else "put in its SSM SecureString (keysParameter)"
            )
            raise PermanentError(
                f"map source {source.name!r} needs {' and '.join(missing)}: {how} that holds client_id:client_secret"
            )
        secret = "client_secret" if "client_secret" in needed else "client_id"
        if len(keys[secret]) < MIN_SECRET_LENGTH:
            raise PermanentError(
                f"map source {source.name!r}'s {secret} is shorter than {MIN_SECRET_LENGTH} characters: "
                "too short to keep out of logs"
            )
        return {name: keys[name] for name in needed}


_REDACTORS: dict[frozenset[str], Redactor] = {}


def _redactor(secrets: frozenset[str]) -> Redactor:
    """One per set of secrets a container meets (a few): its patterns are compiled once."""
    found = _REDACTORS.get(secrets)
    if found is None:
        if len(_REDACTORS) > 32:
            _REDACTORS.clear()
        found = _REDACTORS[secrets] = Redactor(secrets)
    return found


# The URL ------------------------------------------------------------------------------------------


def build_url(
    source: Source, request: PleaseFetchAmpImage, keys: dict[str, str] | None = None, layers: list[str] | None = None
) -> str:
    """The URL to GET for `request` (its layers, or `layers`) from `source`. It holds the keys:
    it goes to the HTTP library and nowhere else."""
    keys = keys or {}
    when = datetime.fromtimestamp(request.valid_time, timezone.utc)
    values: dict[str, Any] = {
        "layers": ",".join(quote(layer, safe=":()") for layer in (layers or request.layers)),
        "width": request.width,
        "height": request.height,
        "center": quote(request.center, safe=","),
        "zoom": request.zoom,
        "time": when.strftime("%Y%m%d%H%M%S"),
        "iso_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "epoch": request.valid_time,
    }
    fields = source.fields
    if "bbox" in fields:
        crs, lat_first = bbox_crs(source.url_template, source.name)
        values["bbox"] = bbox(request.center, request.zoom, request.width, request.height, crs, lat_first)
    if request.run_time is not None:
        run = datetime.fromtimestamp(request.run_time, timezone.utc)
        values["run_time"] = run.strftime("%Y%m%d%H%M%S")
        values["run_iso_time"] = run.strftime("%Y-%m-%dT%H:%M:%SZ")
    missing = (fields & KEY_FIELDS) - set(keys)
    if missing:
        raise PermanentError(f"map source {source.name!r} needs {' and '.join(sorted(missing))}")
    unfilled = fields - set(values) - KEY_FIELDS
    if unfilled:  # a run placeholder without a run: check_run refuses that first
        raise PermanentError(f"map source {source.name!r} needs {', '.join(sorted(unfilled))} for its URL")
    try:
        return source.url_template.format(**{k: quote(v, safe="") for k, v in keys.items()}, **values)
    except (ValueError, IndexError, KeyError, AttributeError) as exc:
        raise PermanentError(
            f"map source {source.name!r}'s URL template cannot be filled in: {type(exc).__name__}"
        ) from None


# The names WMS servers give Web Mercator; EPSG:4326 and CRS:84 are the same degrees, axes apart.
_WEB_MERCATOR = {"EPSG:3857", "EPSG:900913", "EPSG:102100", "EPSG:102113", "EPSG:3785"}
_DEGREES = {"EPSG:4326", "CRS:84"}
_EARTH_RADIUS = 6378137.0  # Web Mercator's sphere, in metres
_MERCATOR_LAT = 85.0511287798  # the latitude where Web Mercator's square world ends


def bbox_crs(template: str, source: str = "default") -> tuple[str, bool]:
    """The CRS a template's {bbox} is in (its CRS or SRS parameter, EPSG:4326 when it names none)
    and whether its axes are latitude first (WMS 1.3.0 with EPSG:4326)."""
    query = {k.upper(): v.strip().upper() for k, v in parse_qsl(urlsplit(template).query, keep_blank_values=True)}
    crs = query.get("CRS") or query.get("SRS") or "EPSG:4326"
    if crs not in _DEGREES | _WEB_MERCATOR:
        raise PermanentError(
            f"map source {source!r}: its {{bbox}} is computed in EPSG:4326, CRS:84 or EPSG:3857, not {_shown(crs, 60)}"
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


# The fetch ----------------------------------------------------------------------------------------


class Deadline:
    """One deadline for everything a request fetches (its frame, and its basemap the first time)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()


def download(
    url: str, source: Source, config: FetchSettings, deadline: Deadline | None = None
) -> tuple[bytes, dict[str, str]]:
    """GET `url` from `source`'s hosts within the deadline; retries timeouts and 5xx, follows at
    most MAX_REDIRECTS redirects (each checked), caps the size."""
    deadline = deadline or Deadline(fetch_deadline(config))
    policy = safehttp.Policy(hosts=source.hosts, networks=config.allowed_networks)
    seconds = deadline.remaining()
    if seconds <= 0:
        raise _deadline_error(named(source), deadline.seconds)
    with safehttp.Client(
        policy,
        deadline=seconds,
        retries=config.retries,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retry_statuses=_RETRY_STATUSES,
        label=f"map source {source.name!r}",
    ) as client:
        try:
            return _follow(client, url, source, config)
        except safehttp.DeadlineExceeded:
            raise _deadline_error(named(source), deadline.seconds) from None
        except (SourceUnavailable, requests.exceptions.RequestException, OSError) as exc:
            if client.expired:
                raise _deadline_error(named(source), deadline.seconds) from None
            if isinstance(exc, SourceUnavailable):
                raise
            # Anything else the HTTP library raises names the URL: say what it was, not its text.
            raise SourceUnavailable(f"{named(source)} failed: {_reason(exc)}") from None


def _follow(client: safehttp.Client, url: str, source: Source, config: FetchSettings) -> tuple[bytes, dict[str, str]]:
    scheme = ""
    where: safehttp.Origin | None = None
    for hop in range(MAX_REDIRECTS + 1):
        shown = named(source, where, hop)
        try:
            prepared, target = client.prepare(url)
        except safehttp.Refused as exc:
            fix = "FETCH_ALLOWED_HOSTS" if source.legacy else "the source's hosts"
            raise SourceError(f"{shown}: {redaction.redact(str(exc))} ({fix})") from None
        where = target
        shown = named(source, where, hop)
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
                continue
            _check_status(response, shown)
            body = _read_capped(client, response, shown, config.max_bytes)
            client.check()  # a body the watchdog cut short is not a body
            telemetry.bytes_in(len(body))
            return body, {k.lower(): v for k, v in response.headers.items()}
    raise SourceError(f"{named(source, where, MAX_REDIRECTS + 1)}: redirected more than {MAX_REDIRECTS} times")


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


# A basemap under the frame ------------------------------------------------------------------------


def stacked(
    request: PleaseFetchAmpImage, overlay: bytes, what: str, config: FetchSettings, deadline: Deadline, keys: Keys
) -> bytes:
    """The frame `overlay` (transparent) drawn over its view's basemap, as PNG bytes."""
    assert request.basemap is not None
    top = load(open_image(overlay, max_image_pixels(), what), what)
    if not (has_alpha(top) or "transparency" in top.info):
        raise ImageError(
            f"{what} has no transparency ({top.mode}): it would hide the basemap; ask the source for a "
            "transparent overlay, or fetch it without a basemap"
        )
    base = basemap(request, config, deadline, keys)
    bottom = load(open_image(base, max_image_pixels(), "the basemap"), "the basemap")
    if bottom.size != top.size:
        raise ImageError(
            f"the basemap is {bottom.width}x{bottom.height} and {what} {top.width}x{top.height}: they cannot be stacked"
        )
    from PIL import Image

    composed = Image.alpha_composite(bottom.convert("RGBA"), top.convert("RGBA"))
    if not (has_alpha(bottom) or "transparency" in bottom.info):
        composed = composed.convert("RGB")
    out = io.BytesIO()
    composed.save(out, "PNG", compress_level=6)
    return out.getvalue()


def basemap(request: PleaseFetchAmpImage, config: FetchSettings, deadline: Deadline, keys: Keys) -> bytes:
    """The basemap of the request's view: from the frames bucket, or from its source (then kept
    there; of fetchers racing to keep it, the first one's is kept and every one uses it)."""
    assert request.basemap is not None
    source = resolve(request.basemap.source)
    if source.selects_run:
        raise PermanentError(f"map source {source.name!r} names a model run: it cannot give a basemap, which is kept")
    location = Location(
        bucket=names().frames_bucket,
        key=storage.basemap_key(request.image_id, request.width, request.height, view(request, source)),
    )
    try:
        return objects().get(location)
    except MissingObject:
        pass
    layers = list(request.basemap.layers)
    url = build_url(source, request.replace(run_time=None), keys.of(source), layers=layers)
    body, _ = download(url, source, config, deadline)
    frame = probe_frame(body, (request.width, request.height), max_image_pixels(), f"the basemap of {named(source)}")
    if objects().put_new(
        location.bucket, location.key, body, frame.content_type, source=source.name, layers=",".join(layers)
    ):
        return body
    try:  # another fetcher's came first: every frame of the view is drawn over that one
        return objects().get(location)
    except MissingObject:  # still being written: this one is the same view
        return body


def view(request: PleaseFetchAmpImage, source: Source) -> str:
    """A digest naming a basemap's view: its source (and that source's template, so a new template
    makes a new basemap), layers, size, center and zoom."""
    assert request.basemap is not None
    named_view = [
        source.name,
        source.url_template,
        list(request.basemap.layers),
        request.width,
        request.height,
        request.center,
        request.zoom,
    ]
    return hashlib.sha256(json.dumps(named_view, separators=(",", ":")).encode()).hexdigest()[:20]


# Valid times --------------------------------------------------------------------------------------


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
