"""The demo map source: synthetic but weather-like frames over real HTTP, in AMP's URL shape.

    GET /{keys}/{layers}/{width}x{height}/{center},{zoom}/{time}.png[?run=YYYYMMDDhhmmss][&transparent=true]

A fixed basemap (sea, land, coastlines, a graticule) seeded by the center and zoom;
a precipitation field ("radar" layers) or a temperature field ("temp" layers) that
drifts east and evolves with time, drawn in a discrete colour scale, or in smooth
gradients ("temp-gradient": a continuous colour ramp; "satellite": infrared clouds in
grey); a legend and a valid-time stamp. Observations are valid every 5 minutes, at any
time asked (past or future): the answer's `x-aeris-valid-date` says which frame a
requested time got. The keys' part of the path is not checked (the demo is keyless).

- `run`: a forecast of the model run that started then (runs every hour, out 20 minutes
  later, reaching 6 hours ahead, a frame every 15 minutes): the weather as observed at the
  run, drifting off it and blurring as the forecast reaches further, differently for each
  run, so two runs' frames for one valid time differ. A run not yet out, off the hourly
  grid, or a time outside its reach is refused.
- `transparent=true`: the weather (and its legend and stamp) on a transparent ground, an
  overlay with no geography of its own, to stack over a basemap.
- base layers alone (`basemap`, `flat`, `flat-dk`, `terrain`): the basemap, with no weather
  and no stamp: the same at every time.

The same URL always gives the same bytes. `DemoMapSource.environment()` configures a stage's
three demo sources on it (chalicelib.sources's presets `demo`, the default, `demo-forecast`
and `demo-overlay`).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FRAME_EVERY = 300  # seconds between the source's frames
RUN_EVERY = 3600  # seconds between the forecast model's runs
RUN_DELAY = 1200  # how long after its run a run's frames are out
RUN_AHEAD = 6 * 3600  # how far past its run a forecast reaches
FORECAST_EVERY = 900  # seconds between a forecast's frames
# How often a server loop here looks for shutdown(): socketserver's 0.5 s made every stop wait up to
# half a second (a test with three map servers waited a second and a half to end).
SHUTDOWN_POLL = 0.05
BASE_LAYERS = frozenset({"basemap", "flat", "flat-dk", "terrain"})
PATH = re.compile(
    r"^/(?P<keys>[^/]+)/(?P<layers>[^/]+)/(?P<width>\d{1,4})x(?P<height>\d{1,4})/"
    r"(?P<center>[^/]+),(?P<zoom>\d{1,2})/(?P<time>\d{14}|current)\.png$"
)
RADAR = [  # dBZ-like levels: light rain to hail
    (4, 233, 231),
    (1, 159, 244),
    (3, 0, 244),
    (2, 253, 2),
    (1, 197, 1),
    (0, 142, 0),
    (253, 248, 2),
    (229, 188, 0),
    (253, 149, 0),
]
TEMPERATURE = [  # -20 C to 40 C in 5-degree bands
    (145, 0, 200),
    (90, 40, 220),
    (40, 90, 240),
    (30, 160, 240),
    (60, 200, 200),
    (90, 210, 120),
    (170, 220, 80),
    (240, 220, 60),
    (250, 170, 40),
    (240, 110, 30),
    (220, 50, 30),
    (170, 20, 30),
]


class DemoMapSource:
    """The demo source on a free loopback port, in a thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(SHUTDOWN_POLL,), name="demo-map-source", daemon=True
        )

    def start(self) -> DemoMapSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url_template(self) -> str:
        """The default source's URL template: the AMP form on this host."""
        return f"{self.origin}/demo/{{layers}}/{{width}}x{{height}}/{{center}},{{zoom}}/{{time}}.png"

    SOURCES = ("demo", "demo-forecast", "demo-overlay")  # the default first

    def sources(self) -> dict[str, Any]:
        """MAP_SOURCES for this server: the observations (the default), the forecasts and the
        transparent overlay, each the preset of chalicelib.sources of its name, on this origin."""
        return {"default": "demo", "sources": {name: {"preset": name, "origin": self.origin} for name in self.SOURCES}}

    def environment(self) -> dict[str, str]:
        """The fetcher's configuration for this source. It listens on loopback, which the
        fetcher refuses unless FETCH_ALLOWED_NETWORKS names it: this one address only."""
        return {
            "MAP_SOURCES": json.dumps(self.sources(), separators=(",", ":")),
            "FETCH_ALLOWED_NETWORKS": str(self.host),
        }


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        match = PATH.match(path)
        if not match:
            return self._answer(
                400, b'{"error": "not a map URL: /{keys}/{layers}/{w}x{h}/{center},{zoom}/{time}.png[?run=...]"}'
            )
        width, height, zoom = int(match["width"]), int(match["height"]), int(match["zoom"])
        if not (16 <= width <= 2000 and 16 <= height <= 2000 and zoom <= 20):
            return self._answer(400, b'{"error": "size must be 16..2000 px and zoom 0..20"}')
        options = parse_qs(query)
        transparent = options.get("transparent", ["false"])[-1].lower() == "true"
        requested = int(time.time()) if match["time"] == "current" else _epoch(match["time"])
        run = None
        if "run" in options:
            run_text = options["run"][-1]
            if not re.fullmatch(r"\d{14}", run_text):
                return self._answer(400, b'{"error": "run must be YYYYMMDDhhmmss"}')
            run = _epoch(run_text)
            if run % RUN_EVERY:
                return self._answer(404, b'{"error": "no such run: the model runs every hour"}')
            if run + RUN_DELAY > time.time():
                return self._answer(404, b'{"error": "that run is not out yet"}')
            valid = requested - requested % FORECAST_EVERY
            if not run <= valid <= run + RUN_AHEAD:
                return self._answer(404, b'{"error": "the run does not reach that time (0 to 6 hours past it)"}')
        else:
            valid = requested - requested % FRAME_EVERY
        body = render(match["layers"], width, height, match["center"], zoom, valid, run, transparent)
        stamp = datetime.fromtimestamp(valid, timezone.utc).isoformat()
        self._answer(200, body, {"Content-Type": "image/png", "x-aeris-valid-date": stamp})

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {
            "Content-Type": "application/json",
            **(headers or {}),
            "Content-Length": str(len(body)),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _epoch(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).timestamp())


@functools.lru_cache(maxsize=128)
def render(
    layers: str,
    width: int,
    height: int,
    center: str,
    zoom: int,
    valid: int,
    run: int | None = None,
    transparent: bool = False,
) -> bytes:
    """One frame as PNG bytes (cached: the same URL gives the same bytes): observed, or of the
    forecast `run`; over the basemap, or on a transparent ground; the basemap alone for base layers."""
    buffer = io.BytesIO()
    if set(layers.split(",")) <= BASE_LAYERS:
        basemap(width, height, center, zoom).convert("RGB").save(buffer, "PNG", compress_level=3)
        return buffer.getvalue()
    ground = Image.new("RGBA", (width, height), (0, 0, 0, 0)) if transparent else None
    frame = ground if ground is not None else basemap(width, height, center, zoom).copy()
    seed = _seed(center, zoom)
    field = (
        weather_field(width, height, seed, valid) if run is None else forecast_field(width, height, seed, valid, run)
    )
    if "satellite" in layers:  # infrared clouds: grey, opaque where cold, smooth throughout
        cloud = np.clip((field - 0.3) / 0.55, 0, 1)
        colours = np.repeat((90 + cloud * 165).astype(np.uint8)[..., None], 3, axis=2)
        alpha = (cloud * 235).astype(np.uint8)
        scale, labels = [(90 + 33 * i,) * 3 for i in range(6)], ["warm", "", "", "", "", "cold"]
    elif "gradient" in layers:  # a temperature field in a continuous colour ramp
        position = np.clip((field - 0.15) / 0.7, 0, 1) * (len(TEMPERATURE) - 1)
        low = np.minimum(position.astype(np.int32), len(TEMPERATURE) - 2)
        ramp, fraction = np.array(TEMPERATURE, np.float32), (position - low)[..., None]
        colours = (ramp[low] * (1 - fraction) + ramp[low + 1] * fraction).astype(np.uint8)
        alpha = np.full(field.shape, 170, np.uint8)
        scale, labels = TEMPERATURE, ["-20", "", "-10", "", "0", "", "10", "", "20", "", "30", "40C"]
    elif "temp" in layers:
        values = np.clip(((field - 0.15) / 0.7) * len(TEMPERATURE), 0, len(TEMPERATURE) - 1).astype(np.uint8)
        alpha = np.full(field.shape, 150, np.uint8)
        scale, labels = TEMPERATURE, ["-20", "", "-10", "", "0", "", "10", "", "20", "", "30", "40C"]
    else:
        levels = np.clip(((field - 0.58) / 0.36) * len(RADAR), -1, len(RADAR) - 1)
        values = np.clip(levels, 0, None).astype(np.uint8)
        alpha = np.where(levels >= 0, 191, 0).astype(np.uint8)  # 75% where it rains
        scale, labels = RADAR, ["light", "", "", "", "moderate", "", "", "", "heavy"]
    if "satellite" not in layers and "gradient" not in layers:
        colours = np.array(scale, np.uint8)[values]
    overlay = Image.fromarray(np.dstack([colours, alpha]), "RGBA")
    frame.alpha_composite(overlay)
    title = layers if run is None else f"{layers} forecast, run {_hour(run)} +{(valid - run) / 3600:g}h"
    _decorate(frame, title, valid, scale, labels)
    (frame if transparent else frame.convert("RGB")).save(buffer, "PNG", compress_level=3)
    return buffer.getvalue()


def _hour(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H") + "Z"


@functools.lru_cache(maxsize=16)
def basemap(width: int, height: int, center: str, zoom: int) -> Image.Image:
    """Sea and land from smooth noise, coastlines where they meet, a graticule."""
    rng = np.random.default_rng(_seed(center, zoom))
    ground = _smooth(rng, width, height, cells=6) * 0.7 + _smooth(rng, width, height, cells=18) * 0.3
    land = ground > 0.5
    height_tint = np.clip((ground - 0.5) * 3, 0, 1)[..., None]
    depth = np.clip((0.5 - ground) * 3, 0, 1)[..., None]
    land_rgb = np.array([62, 96, 58]) * (1 - height_tint) + np.array([150, 140, 110]) * height_tint
    sea_rgb = np.array([52, 88, 132]) * (1 - depth) + np.array([24, 44, 82]) * depth
    rgb = np.where(land[..., None], land_rgb, sea_rgb)
    coast = np.zeros_like(land)
    coast[1:, :] |= land[1:, :] != land[:-1, :]
    coast[:, 1:] |= land[:, 1:] != land[:, :-1]
    rgb[coast] = (225, 225, 215)
    step = max(40, width // 8)
    rgb[::step, :] = rgb[::step, :] * 0.6 + 60
    rgb[:, ::step] = rgb[:, ::step] * 0.6 + 60
    return Image.fromarray(rgb.astype(np.uint8), "RGB").convert("RGBA")


def forecast_field(width: int, height: int, seed: int, valid: int, run: int) -> np.ndarray:
    """The field a run forecasts for `valid`: as observed at the run's start, then drifting off
    (each run at its own speed) and mixing with weather that never comes, the further ahead the more."""
    lead = max(0.0, (valid - run) / 3600.0)
    truth = weather_field(width, height, seed, valid)
    if lead == 0:
        return truth
    rng = np.random.default_rng([seed, run // RUN_EVERY])
    shift = int(round(lead * rng.uniform(-12, 12)))  # px: how far this run misplaces the weather
    a, b = _weather_layers(width, height, seed)
    never = np.roll(a if rng.random() < 0.5 else b, int(rng.integers(0, width)), axis=1)[:, :width]
    weight = min(0.6, lead / 8)
    return np.roll(truth, shift, axis=1) * (1 - weight) + never * weight


def weather_field(width: int, height: int, seed: int, valid: int) -> np.ndarray:
    """Values in 0..1 that drift east about 40 px an hour and slowly change shape."""
    hours = valid / 3600.0
    shift = int(hours * 40) % (2 * width)
    phase = (1 + np.cos(2 * np.pi * hours / 6)) / 2  # periodic: the same time, the same field
    a, b = _weather_layers(width, height, seed)
    field = a * phase + b * (1 - phase)
    return np.roll(field, shift, axis=1)[:, :width]


@functools.lru_cache(maxsize=16)
def _weather_layers(width: int, height: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    layers = []
    for _ in range(2):
        field = (
            _smooth(rng, 2 * width, height, 10, wrap=True) * 0.75
            + _smooth(rng, 2 * width, height, 30, wrap=True) * 0.25
        )
        layers.append(np.concatenate([field, field], axis=1))  # wraps around as it drifts, with no seam
    return layers[0], layers[1]


def _smooth(rng: np.random.Generator, width: int, height: int, cells: int, wrap: bool = False) -> np.ndarray:
    """Smooth noise in 0..1: a coarse random grid, upsampled bicubically; with `wrap`, its right
    edge runs on into its left (the grid padded with its own columns before the upsampling)."""
    grid_w = max(2, cells * width // max(width, height))
    grid_h = max(2, cells * height // max(width, height))
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    if wrap:
        pad, cell = 2, width / grid_w
        wide = Image.fromarray(np.pad(grid, ((0, 0), (pad, pad)), mode="wrap"), "F")
        fine = np.asarray(wide.resize((round(cell * (grid_w + 2 * pad)), height), Image.Resampling.BICUBIC))
        fine = fine[:, round(cell * pad) : round(cell * pad) + width]
    else:
        fine = np.asarray(Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC))
    low, high = float(fine.min()), float(fine.max())
    return (fine - low) / (high - low or 1)


def _decorate(frame: Image.Image, title: str, valid: int, scale: list, labels: list[str]) -> None:
    draw = ImageDraw.Draw(frame)
    width, height = frame.size
    font = ImageFont.load_default(size=max(10, height // 40))
    bar = max(18, height // 24)
    draw.rectangle((0, 0, width, bar), fill=(20, 24, 32, 230))
    when = datetime.fromtimestamp(valid, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    draw.text((8, bar // 2), f"weathergif demo - {title.replace(',', ' + ')}", font=font, fill="white", anchor="lm")
    draw.text((width - 8, bar // 2), when, font=font, fill="white", anchor="rm")
    swatch = max(12, width // (2 * len(scale) + 4))
    left, top = 8, height - bar - 6
    draw.rectangle((left - 4, top - 4, left + swatch * len(scale) + 4, height - 4), fill=(20, 24, 32, 200))
    for i, (colour, label) in enumerate(zip(scale, labels)):
        x = left + i * swatch
        draw.rectangle((x, top, x + swatch - 1, top + bar // 2), fill=tuple(colour) + (255,))
        if label:
            draw.text((x, top + bar // 2 + 1), label, font=ImageFont.load_default(size=max(8, bar // 3)), fill="white")


def _seed(center: str, zoom: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{center.lower()}|{zoom}".encode()).digest()[:4], "big")
