"""Map sources: the stage's named sources, each with its URL template, keys, hosts and the times it serves.

A stage configures its sources in MAP_SOURCES, a JSON document (every bad field named, by its path):

    {"default": "radar",
     "sources": {
       "radar":    {"preset": "xweather"},
       "forecast": {"preset": "xweather-forecast", "ahead": 43200},
       "nexrad":   {"preset": "iem-nexrad"}}}

A source is a preset (PRESETS) with overrides, or written out whole (`urlTemplate` and `step` at
least). Its fields, all optional where a preset gives them:

- `urlTemplate`: the URL with placeholders (TEMPLATE_FIELDS: the fetcher's, and `{run_time}` (UTC
  YYYYMMDDhhmmss) and `{run_iso_time}` for a forecast source that picks its model run in the URL);
  `origin` (`scheme://host[:port]`) puts the preset's template on another host (the demo's loopback).
- `hosts`: the hosts ("host", or "host:port") it may be fetched from, at every redirect too; by
  default the template's own.
- `keysParameter`: the SSM SecureString holding "client_id:client_secret", read only when the
  template has a key placeholder; by default `/weathergif/{stage}/map-keys/{name}` for such a template.
- the times it serves (seconds): `back` (how far before now its valid times reach), `step` (between
  the valid times it has, on the grid of multiples of it since 1970), `latency` (observations: how long
  after its valid time a frame appears); for a forecast, `runEvery` (between model runs, on their
  grid: 21600 is 0Z, 6Z, 12Z, 18Z), `runDelay` (how long after its run a run's frames appear) and
  `ahead` (how far past its run a run's frames reach). `ahead` is 0 for observations only.

With no MAP_SOURCES, the variables of a single source define the default source, named "default",
exactly as before: MAP_URL_TEMPLATE (Aeris AMP by default), FETCH_ALLOWED_HOSTS (and the template's
own port for its host), and its keys from MAP_CLIENT_ID and MAP_CLIENT_SECRET or MAP_KEYS_PARAMETER.

`sources()` gives them by name, `default_name()` the default's, `source(name)` one (UnknownSource
for a name the stage does not have), `public()` what anyone may know of them (never a key, a
parameter or a template). `Times` says which valid times and runs a source serves at a given now.
Standard library and msgspec only (the ground layer).
"""

from __future__ import annotations

import functools
import json
import math
import os
import string
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from .model import Invalid, Record, whole
from .settings import AMP_URL_TEMPLATE, DEFAULT_ALLOWED_HOSTS, STAGE, host_entry

SOURCES_VARIABLE = "MAP_SOURCES"
LEGACY_NAME = "default"  # the source today's variables define, when there is no MAP_SOURCES
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
NAME_SAYS = "must be 1 to 64 letters, digits, '.', '_' or '-', from a letter or digit"
SourceName = Annotated[str, Meta(pattern=whole(NAME_PATTERN, NAME_SAYS))]

KEY_FIELDS = frozenset({"client_id", "client_secret"})
RUN_FIELDS = frozenset({"run_time", "run_iso_time"})
TEMPLATE_FIELDS = (
    frozenset({"layers", "width", "height", "center", "zoom", "time", "iso_time", "epoch", "bbox"})
    | RUN_FIELDS
    | KEY_FIELDS
)
DEFAULT_PORTS = {"http": 80, "https": 443}
Host = tuple[str, int | None]  # (host, port); None: the scheme's own port

MINUTE, HOUR, DAY = 60, 3600, 86400
MAX_SECONDS = 20 * 365 * DAY


def key_parameter(name: str, stage: str = STAGE) -> str:
    """Where a keyed source's keys live by default: an SSM SecureString of the stage."""
    return f"/weathergif/{stage}/map-keys/{name}"


# Times -----------------------------------------------------------------------------------------


class Times(NamedTuple):
    """The times a source serves, in seconds. Valid times are multiples of `step` since 1970, runs
    multiples of `run_every`. For an observation source (`run_every` 0), the valid times from
    `now - back` to `now - latency`; for a forecast source, those from `now - back` to the newest
    run's reach (`latest_run(now) + ahead`), each from the newest run out by `now` that reaches it."""

    back: int
    step: int
    ahead: int = 0
    latency: int = 0
    run_every: int = 0
    run_delay: int = 0

    @property
    def forecast(self) -> bool:
        return self.run_every > 0

    def latest_run(self, now: float) -> int | None:
        """The newest run whose frames have appeared by `now` (None for observations)."""
        if not self.forecast:
            return None
        return _floor(math.floor(now) - self.run_delay, self.run_every)

    def oldest(self, now: float) -> int:
        """The oldest valid time served at `now`."""
        return _ceil(math.floor(now) - self.back, self.step)

    def newest(self, now: float) -> int:
        """The newest valid time served at `now` (observations: out by now; forecasts: the newest run's reach)."""
        latest = self.latest_run(now)
        if latest is None:
            return _floor(math.floor(now) - self.latency, self.step)
        return _floor(latest + self.ahead, self.step)

    def valid_times(self, now: float) -> range:
        """Every valid time served at `now`, oldest first (a range: it may be long)."""
        return range(self.oldest(now), self.newest(now) + 1, self.step)

    def run_for(self, valid_time: int, now: float) -> int | None:
        """The run a frame valid at `valid_time` comes from, asked for at `now`: the newest run out by
        then whose frames reach it (at or before it, at most `ahead` before). None for observations,
        and when no run out by `now` reaches it (a time too far ahead)."""
        latest = self.latest_run(now)
        if latest is None:
            return None
        run = min(latest, _floor(valid_time, self.run_every))
        return run if valid_time - run <= self.ahead else None

    def run_times(self, run: int, now: float) -> range:
        """The valid times of `run` (from it to its reach) that are served at `now`, oldest first."""
        return range(max(_ceil(run, self.step), self.oldest(now)), _floor(run + self.ahead, self.step) + 1, self.step)

    def runs(self, now: float) -> range:
        """The runs out by `now` whose frames reach a valid time still served (newest last)."""
        latest = self.latest_run(now)
        if latest is None:
            return range(0)
        return range(_ceil(self.oldest(now) - self.ahead, self.run_every), latest + 1, self.run_every)

    def serves(self, valid_time: int, now: float, run: int | None = None) -> bool:
        """Whether `valid_time` (of `run`, for a forecast) is one this source has at `now`."""
        if valid_time % self.step or not self.oldest(now) <= valid_time <= self.newest(now):
            return False
        if run is None:
            return not self.forecast or self.run_for(valid_time, now) is not None
        latest = self.latest_run(now)
        return (
            latest is not None and run % self.run_every == 0 and run <= latest and run <= valid_time <= run + self.ahead
        )

    def describe(self) -> dict[str, int]:
        """In the configuration's words (camelCase)."""
        return {
            "back": self.back,
            "ahead": self.ahead,
            "step": self.step,
            "latency": self.latency,
            "runEvery": self.run_every,
            "runDelay": self.run_delay,
        }


def _floor(value: int, step: int) -> int:
    return value - value % step


def _ceil(value: int, step: int) -> int:
    return -_floor(-value, step)


# Sources -----------------------------------------------------------------------------------------


class Source(NamedTuple):
    name: str
    url_template: str
    hosts: frozenset[Host]
    times: Times
    preset: str | None = None  # the preset it was made from (None: written out whole)
    keys_parameter: str | None = None  # the SSM SecureString with its keys (None: none, or the legacy ones)
    legacy: bool = False  # defined by today's variables (MAP_URL_TEMPLATE, ...), its keys read as before

    @property
    def fields(self) -> frozenset[str]:
        """Its template's placeholders (none when it cannot be read: `problems()` says why)."""
        try:
            return template_fields(self.url_template)
        except ValueError:
            return frozenset()

    def problems(self) -> list[str]:
        """What makes its template unusable (a configured source's were refused with the configuration;
        the legacy one's, MAP_URL_TEMPLATE, are the fetcher's to report)."""
        return _template_problems(self.url_template)

    @property
    def keyed(self) -> bool:
        """Whether its template needs keys (only then are they read)."""
        return bool(self.fields & KEY_FIELDS)

    @property
    def selects_run(self) -> bool:
        """Whether its URL names the model run (else it serves the newest run it has)."""
        return bool(self.fields & RUN_FIELDS)

    @property
    def kind(self) -> str:
        return "forecast" if self.times.forecast else "observations"

    def origin(self) -> str:
        """scheme://host[:port] of its template (never its path or query)."""
        return template_origin(self.url_template)

    def public(self) -> dict[str, Any]:
        """What anyone may know of it: never a key, a parameter, or its template (which may hold a key)."""
        return {
            "name": self.name,
            "preset": self.preset,
            "kind": self.kind,
            "hosts": sorted(_host_text(host) for host in self.hosts),
            "keyed": self.keyed,
            "selectsRun": self.selects_run,
            "times": self.times.describe(),
        }


class UnknownSource(LookupError):
    """A source name the stage does not configure."""


class Catalog(NamedTuple):
    sources: dict[str, Source]
    default: str


def sources() -> dict[str, Source]:
    """The stage's sources by name. ValueError naming every bad field of the configuration."""
    return catalog().sources


def default_name() -> str:
    """The name of the source a request that names none is fetched from."""
    return catalog().default


def source(name: str | None) -> Source:
    """The source `name` (the default for None). UnknownSource for a name the stage does not have."""
    found = catalog()
    if name is None:
        return found.sources[found.default]
    try:
        return found.sources[name]
    except KeyError:
        raise UnknownSource(
            f"there is no map source named {name!r}: this stage has {', '.join(sorted(found.sources))}"
        ) from None


def public() -> list[dict[str, Any]]:
    """Every source as anyone may see it, the default marked, by name."""
    found = catalog()
    return [{**found.sources[name].public(), "default": name == found.default} for name in sorted(found.sources)]


def catalog() -> Catalog:
    """The stage's sources and default, read from the environment (each text parsed once)."""
    raw = os.environ.get(SOURCES_VARIABLE, "").strip()
    if raw:
        return _configured(raw, STAGE)
    return _legacy(
        os.environ.get("MAP_URL_TEMPLATE") or AMP_URL_TEMPLATE,
        os.environ.get("FETCH_ALLOWED_HOSTS") or DEFAULT_ALLOWED_HOSTS,
        bool(os.environ.get("MAP_URL_TEMPLATE")),
    )


# Templates ---------------------------------------------------------------------------------------


def template_fields(template: str) -> frozenset[str]:
    """The placeholders of a template (ValueError when it cannot be read)."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def template_origin(template: str) -> str:
    scheme, host, port = template_host(template)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


def template_host(template: str) -> tuple[str, str, int | None]:
    """(scheme, host (lower case, IPv6 without brackets), port or None) of a template's fixed start.
    ValueError says what is wrong."""
    parts = urlsplit(template)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("must be an http or https URL")
    if "{" in parts.netloc or "}" in parts.netloc:
        raise ValueError("must write its host out (no placeholder before its path)")
    if "@" in parts.netloc:
        raise ValueError("must not carry user info")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("has no valid port") from None
    if not host:
        raise ValueError("has no host")
    return scheme, host.lower(), port


def _template_problems(template: str) -> list[str]:
    try:
        fields = template_fields(template)
    except ValueError as exc:
        return [f"cannot be read: {exc}"]
    problems = []
    unknown = sorted(name or "{}" for name in fields - TEMPLATE_FIELDS)
    if unknown:
        problems.append(f"has unknown or unnamed placeholders: {unknown}")
    try:
        template_host(template)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def _own_host(template: str) -> Host:
    scheme, host, port = template_host(template)
    return (host, None) if port in (None, DEFAULT_PORTS[scheme]) else (host, port)


def _allows(hosts: frozenset[Host], template: str) -> bool:
    scheme, host, port = template_host(template)
    port = port or DEFAULT_PORTS[scheme]
    return (host, port) in hosts or ((host, None) in hosts and port == DEFAULT_PORTS[scheme])


def _host_text(host: Host) -> str:
    name, port = host
    shown = f"[{name}]" if ":" in name else name
    return shown if port is None else f"{shown}:{port}"


# Presets -----------------------------------------------------------------------------------------

_AMP_PATH = "/{client_id}_{client_secret}/{layers}/{width}x{height}/{center},{zoom}/{time}.png"
_WMS_QUERY = (
    "?SERVICE=WMS&REQUEST=GetMap&VERSION=1.1.1&LAYERS={layers}&STYLES=&SRS=EPSG:4326&BBOX={bbox}"
    "&WIDTH={width}&HEIGHT={height}&FORMAT=image/png&TRANSPARENT=TRUE&TIME={iso_time}"
)
_DEMO_PATH = "/demo/{layers}/{width}x{height}/{center},{zoom}/{time}.png"
DEMO_ORIGIN = "http://127.0.0.1:8765"  # the demo's presets name its origin; a stage gives its own


class Preset(NamedTuple):
    url_template: str
    times: Times
    says: str


# Figures from the sources' documentation (checked 2026-12): Xweather's radar reaches 30 days back,
# satellite and temperatures 7 days, updated every 2 to 15 minutes; its forecast layers (fradar, ...)
# come from HRRR over CONUS (about 18 hours ahead, hourly runs), NAM and GFS (6-hourly runs). IEM's
# N0Q composite is every 5 minutes since November 2010. GIBS's layers are mostly daily. A source's
# `runDelay` and `latency` here are estimates: override them with what the account sees.
PRESETS: dict[str, Preset] = {
    "xweather": Preset(
        "https://maps.api.xweather.com" + _AMP_PATH,
        Times(back=7 * DAY, step=5 * MINUTE),
        "Xweather Raster Maps, observation layers (radar, satellite, temperatures); keyed",
    ),
    "xweather-forecast": Preset(
        "https://maps.api.xweather.com" + _AMP_PATH,
        Times(back=0, step=HOUR, ahead=18 * HOUR, run_every=HOUR, run_delay=90 * MINUTE),
        "Xweather Raster Maps, forecast layers (fradar, ...): the newest run it has; keyed",
    ),
    "aeris-amp": Preset(
        "https://maps.aerisapi.com" + _AMP_PATH,
        Times(back=7 * DAY, step=5 * MINUTE),
        "Aeris Maps Platform, Xweather's old host; keyed",
    ),
    "iem-nexrad": Preset(
        "https://mesonet.agron.iastate.edu/cgi-bin/wms/nexrad/n0q-t.cgi" + _WMS_QUERY,
        Times(back=365 * DAY, step=5 * MINUTE, latency=10 * MINUTE),
        "Iowa Environmental Mesonet's NEXRAD base reflectivity, OGC WMS-T (layer nexrad-n0q-wmst); keyless",
    ),
    "nasa-gibs": Preset(
        "https://gibs.earthdata.nasa.gov/wms/epsg4326/best/wms.cgi" + _WMS_QUERY,
        Times(back=365 * DAY, step=DAY, latency=DAY),
        "NASA GIBS, OGC WMS-T (daily layers; set step for sub-daily ones); keyless",
    ),
    "demo": Preset(
        DEMO_ORIGIN + _DEMO_PATH,
        Times(back=7 * DAY, step=5 * MINUTE),
        "the demo map source's observations (local/mapsource.py); keyless",
    ),
    "demo-forecast": Preset(
        DEMO_ORIGIN + _DEMO_PATH + "?run={run_time}",
        Times(back=HOUR, step=15 * MINUTE, ahead=6 * HOUR, run_every=HOUR, run_delay=20 * MINUTE),
        "the demo map source's forecasts: hourly runs, 6 hours ahead; keyless",
    ),
    "demo-overlay": Preset(
        DEMO_ORIGIN + _DEMO_PATH + "?transparent=true",
        Times(back=7 * DAY, step=5 * MINUTE),
        "the demo map source's observations on a transparent ground, to stack over a basemap; keyless",
    ),
}
PresetName = Literal[
    "xweather", "xweather-forecast", "aeris-amp", "iem-nexrad", "nasa-gibs", "demo", "demo-forecast", "demo-overlay"
]


# The configuration -------------------------------------------------------------------------------

Seconds = Annotated[int, Meta(ge=0, le=MAX_SECONDS)]
HostText = Annotated[
    str,
    Meta(
        pattern=whole(
            r"(?:[A-Za-z0-9][A-Za-z0-9.\-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?",
            "must be host or host:port",
        )
    ),
]
Parameter = Annotated[
    str,
    Meta(pattern=whole(r"/[A-Za-z0-9_.\-/]{1,1000}", "must be an SSM parameter name from '/' (letters, digits, _.-/)")),
]
Template = Annotated[str, Meta(min_length=10, max_length=2000)]
Origin = Annotated[str, Meta(pattern=whole(r"https?://[^/?#@{}\s]+", "must be scheme://host or scheme://host:port"))]


class SourceConfig(Record, frozen=True, kw_only=True):
    """One source of MAP_SOURCES: a preset with overrides, or written out whole."""

    preset: PresetName | None = None
    url_template: Template | None = None
    origin: Origin | None = None
    hosts: Annotated[list[HostText], Meta(min_length=1, max_length=16)] | None = None
    keys_parameter: Parameter | None = None
    back: Seconds | None = None
    step: Annotated[int, Meta(ge=1, le=MAX_SECONDS)] | None = None
    ahead: Seconds | None = None
    latency: Seconds | None = None
    run_every: Seconds | None = None
    run_delay: Seconds | None = None


def _configured(raw: str, stage: str) -> Catalog:
    found = _parse_configured(raw, stage)
    if isinstance(found, Invalid):
        raise ValueError(f"{SOURCES_VARIABLE}: {found.describe()}")
    return found


@functools.lru_cache(maxsize=8)
def _parse_configured(raw: str, stage: str) -> Catalog | Invalid:
    """MAP_SOURCES, or what is wrong with it (kept too: a wrong text stays wrong)."""
    try:
        data = json.loads(raw, object_pairs_hook=_no_repeats)
    except _Repeated as exc:
        return Invalid([("", f"names {exc.args[0]!r} twice")], SOURCES_VARIABLE)
    except ValueError as exc:
        return Invalid([("", f"is not JSON: {exc}")], SOURCES_VARIABLE)
    if not isinstance(data, dict):
        return Invalid([("", "must be a JSON object with 'sources' (by name) and 'default'")], SOURCES_VARIABLE)
    problems: list[tuple[str, str]] = [
        (str(key), "is not a known key") for key in data if key not in ("default", "sources")
    ]
    listed = data.get("sources")
    made: dict[str, Source] = {}
    if not isinstance(listed, dict) or not listed:
        problems.append(("sources", "must be an object of at least one source by name"))
        listed = {}
    for name, config in listed.items():
        at = f"sources.{name}"
        if not _is_name(name):
            problems.append((at, f"is not a source name: {NAME_SAYS}"))
            continue
        try:
            parsed = SourceConfig.from_dict(config)
        except Invalid as exc:
            problems += [(f"{at}.{path}" if path else at, text) for path, text in exc.problems]
            continue
        made_one, wrong = _made(name, parsed, stage)
        problems += [(f"{at}.{path}" if path else at, text) for path, text in wrong]
        if made_one is not None:
            made[name] = made_one
    default = data.get("default")
    if default is None:
        if len(listed) != 1:
            problems.append(("default", "is required when there is more than one source"))
        else:
            default = next(iter(listed))
    elif not isinstance(default, str) or not _is_name(default):
        problems.append(("default", f"must be a source name: {NAME_SAYS}"))
    elif default not in listed:
        problems.append(("default", f"names no source of 'sources' ({', '.join(sorted(listed)) or 'none'})"))
    if problems:
        return Invalid(problems, SOURCES_VARIABLE)
    assert isinstance(default, str)
    return Catalog(made, default)


def _made(name: str, config: SourceConfig, stage: str) -> tuple[Source | None, list[tuple[str, str]]]:
    """The source a configuration describes, or the problems of its fields."""
    preset = PRESETS[config.preset] if config.preset else None
    problems: list[tuple[str, str]] = []
    template = config.url_template or (preset.url_template if preset else None)
    if template is None:
        return None, [("urlTemplate", "is required without a preset")]
    if config.origin is not None:
        try:
            template_host(template)
        except ValueError:
            return None, [("origin", "needs a template whose host is written out")]
        parts = urlsplit(template)
        template = config.origin.rstrip("/") + template[len(f"{parts.scheme}://{parts.netloc}") :]
    wrong = _template_problems(template)
    at = "origin" if config.origin and not config.url_template else "urlTemplate"
    problems += [(at, text) for text in wrong]
    fields = frozenset() if wrong else template_fields(template)

    base = preset.times if preset else None
    step = config.step if config.step is not None else (base.step if base else None)
    if step is None:
        problems.append(("step", "is required without a preset"))
        step = 1
    times = Times(
        back=_pick(config.back, base.back if base else DAY),
        step=step,
        ahead=_pick(config.ahead, base.ahead if base else 0),
        latency=_pick(config.latency, base.latency if base else 0),
        run_every=_pick(config.run_every, base.run_every if base else 0),
        run_delay=_pick(config.run_delay, base.run_delay if base else 0),
    )
    if times.ahead and not times.run_every:
        problems.append(("runEvery", "is required when 'ahead' is above 0: a forecast comes from model runs"))
    if times.run_every and not times.ahead:
        problems.append(("ahead", "must be above 0 for a forecast (a source with 'runEvery')"))
    if times.run_delay and not times.run_every:
        problems.append(("runDelay", "is for a forecast (a source with 'runEvery')"))
    if times.latency and times.run_every:
        problems.append(("latency", "is for observations: a forecast's frames appear 'runDelay' after its run"))
    if fields & RUN_FIELDS and not times.run_every:
        problems.append(("urlTemplate", "names a run ({run_time} or {run_iso_time}): set 'runEvery'"))

    hosts: frozenset[Host] = frozenset()  # none to allow or to check against if the template is wrong
    if not wrong and config.hosts is None:
        hosts = frozenset([_own_host(template)])
    elif not wrong and config.hosts is not None:
        entries = []
        for index, entry in enumerate(config.hosts):
            try:
                entries.append(host_entry(entry, "host"))
            except ValueError as exc:
                problems.append((f"hosts.{index}", str(exc).removeprefix("host: ")))
        hosts = frozenset(entries)
        if entries and len(entries) == len(config.hosts) and not _allows(hosts, template):
            problems.append(("hosts", f"must allow the template's own host, {template_origin(template)}"))

    keyed = bool(fields & KEY_FIELDS)
    if config.keys_parameter is not None and not keyed and not wrong:
        problems.append(("keysParameter", "is set, but the template has no {client_id} or {client_secret}"))
    parameter = (config.keys_parameter or key_parameter(name, stage)) if keyed else None
    if problems:
        return None, problems
    return Source(name, template, hosts, times, config.preset, parameter), []


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _is_name(name: Any) -> bool:
    try:
        msgspec.convert(name, SourceName)
    except msgspec.ValidationError:
        return False
    return True


class _Repeated(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Repeated(key)
        out[key] = value
    return out


@functools.lru_cache(maxsize=8)
def _legacy(template: str, hosts: str, own_template: bool) -> Catalog:
    """The one source today's variables define. A wrong FETCH_ALLOWED_HOSTS is a ValueError, as
    before; a template that cannot be used is refused by the fetcher, which names it."""
    allowed = {host_entry(h, "FETCH_ALLOWED_HOSTS") for h in hosts.split(",") if h.strip()}
    try:  # the template's own port is allowed for its host: the configuration names it
        scheme, host, port = template_host(template)
        if port is not None and (host, None) in allowed:
            allowed.add((host, port))
    except ValueError:
        pass
    preset = None if own_template else "aeris-amp"
    source = Source(LEGACY_NAME, template, frozenset(allowed), PRESETS["aeris-amp"].times, preset, legacy=True)
    return Catalog({LEGACY_NAME: source}, LEGACY_NAME)
