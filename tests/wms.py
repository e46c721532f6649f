"""A real OGC WMS-T server for tests: MapServer's `mapserv`, as a CGI, over HTTP on loopback.

    wms = start(folder, times=TIMES)  # -> Wms; wms.stop() when done

`wms.url` is the server's base URL (ending "?"), `wms.layer` its time-indexed radar layer,
`wms.times` the frames' times (epoch seconds), `wms.bbox` what they cover (west, south, east,
north in degrees); `wms.template(version, crs)` is a MAP_URL_TEMPLATE for a GetMap of it and
`wms.environment(...)` what the fetcher needs to use it (with monkeypatch: loopback is allowed
only where FETCH_ALLOWED_NETWORKS says); `wms.storm(time)` is where that frame's storm core is,
and `wms.queries` what the server was asked. The session fixture `wms` (tests/conftest.py) is one
with TIMES. Without MapServer `start` skips the test, unless REQUIRE_MAPSERVER=1 makes it fail.

`start` writes into `folder`
- one radar-like frame per time: a paletted PNG (transparent where there is no echo, the dBZ
  colour scale) with a world file, EPSG:4326 at 0.04 degrees a pixel over the southern Great
  Plains: a storm cell in a ragged rain shield, both moving east from frame to frame, the shield
  changing too, so no two frames are alike;
- a tile index (GeoJSON, read through OGR) of each frame's file and time;
- a mapfile with two raster layers over that index (`wms_timeitem`, `wms_timeextent` from the
  times, `wms_srs` EPSG:4326 and EPSG:3857): `radar`, with no default time, and `radar-default`,
  whose `wms_timedefault` is the newest frame, as IEM's NEXRAD layers have one;
- MapServer's config file, which names the mapfile (MS_MAPFILE, as IEM's n0q-t.cgi does) and lets
  no request name another (MS_MAP_NO_PATH): the server answers `/wms?SERVICE=WMS&...`;
then serves `mapserv` on 127.0.0.1 from a threaded http.server that runs it once per request with
the CGI environment (QUERY_STRING, REQUEST_METHOD, MAPSERVER_CONFIG_FILE, ...) and sends what it
prints (its headers, a Status if it gives one, and the body). Six frames take about 0.1 s, 48
about 0.5 s; a GetMap, about 0.1 s.

What MapServer 8.0 does with these layers (tests/test_wms.py pins it):
- errors are a ServiceExceptionReport with HTTP 200: `application/vnd.ogc.se_xml` with a DOCTYPE
  naming the 1.1.1 DTD for WMS 1.1.1, `text/xml` with a namespace for 1.3.0;
- a TIME outside the extent is an InvalidDimensionValue on `radar`, but gets the default time's
  frame, silently, on `radar-default`;
- a TIME inside the extent that no frame has gets a fully transparent image;
- WMS 1.3.0 reads an EPSG:4326 BBOX latitude first (given longitude first: an empty image);
- a BBOX whose shape differs from WIDTH/HEIGHT is stretched to fit (non-square pixels).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from local.mapsource import RADAR, SHUTDOWN_POLL

MAPSERV_PATHS = ("/usr/lib/cgi-bin/mapserv", "/usr/bin/mapserv")
INSTALL = "apt-get install cgi-mapserver mapserver-bin"
LAYER = "radar"
LAYER_WITH_DEFAULT = "radar-default"
# Frames every 5 minutes, the newest at 2026-12-07T12:00:00Z.
TIMES = tuple(1796644800 - 300 * i for i in range(5, -1, -1))
# What the frames cover (west, south, east, north), in degrees, and how finely.
EXTENT = (-110.0, 25.0, -80.0, 47.0)
RESOLUTION = 0.04
# The storm's core starts here and moves east, with the rain, STEP pixels (0.6 degrees) a frame,
# fewer when there are so many frames that they would move more than CROSSING pixels in all.
STORM = (-99.0, 36.15)
STEP = 15
CROSSING = 300
CORE_DBZ = 55  # the storm's core is at least this (the scale's last three colours); the rain shield is under it
# dBZ from 10 in steps of 5: the colours of a radar reflectivity scale (the demo source's levels, then
# the reds of the storm's core).
SCALE = np.array([*RADAR, (253, 0, 0), (212, 0, 0), (188, 0, 0)], np.uint8)
CORE_COLOURS = {tuple(int(c) for c in SCALE[i]) for i in range((CORE_DBZ - 10) // 5, len(SCALE))}


def mapserv() -> str | None:
    """The mapserv CGI, or None when MapServer is not installed."""
    for path in MAPSERV_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("mapserv")


def require() -> str:
    """mapserv's path; skips the test when it is missing, unless REQUIRE_MAPSERVER=1 (CI) makes
    that a failure."""
    path = mapserv()
    if path is None:
        if os.environ.get("REQUIRE_MAPSERVER") == "1":
            pytest.fail(f"REQUIRE_MAPSERVER=1 but MapServer's mapserv is not installed ({INSTALL})")
        pytest.skip(f"MapServer's mapserv is not installed ({INSTALL}); CI installs it")
    return path


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Wms(NamedTuple):
    """A running server. `url` ends with "?": a GetMap URL is `url` + its query."""

    url: str
    layer: str  # no default time: a TIME outside the extent is a ServiceException
    layer_with_default: str  # a TIME outside the extent gets the newest frame
    times: tuple[int, ...]  # epoch seconds, oldest first
    bbox: tuple[float, float, float, float]  # what the frames cover: west, south, east, north (EPSG:4326)
    folder: Path
    queries: list[str]  # the query string of each request, in order
    step: int  # pixels of the frames the storm moves east a frame
    server: ThreadingHTTPServer

    def template(self, version: str = "1.1.1", crs: str = "EPSG:4326", layers: str = "{layers}") -> str:
        """MAP_URL_TEMPLATE for a GetMap of `version` in `crs`, the fetcher's {bbox} and {iso_time}."""
        srs = "CRS" if version == "1.3.0" else "SRS"
        return (
            f"{self.url}SERVICE=WMS&VERSION={version}&REQUEST=GetMap&LAYERS={layers}&STYLES=&{srs}={crs}"
            "&BBOX={bbox}&WIDTH={width}&HEIGHT={height}&FORMAT=image/png&TRANSPARENT=TRUE&TIME={iso_time}"
        )

    def environment(self, **template: str) -> dict[str, str]:
        """What the fetcher needs to fetch from this server (`template`: as for `template()`)."""
        return {
            "MAP_URL_TEMPLATE": self.template(**template),
            "MAP_CLIENT_ID": "",
            "MAP_CLIENT_SECRET": "",
            "FETCH_ALLOWED_HOSTS": "127.0.0.1",
            "FETCH_ALLOWED_NETWORKS": "127.0.0.1",
        }

    def storm(self, when: int) -> tuple[float, float]:
        """Where the storm's core is (lon, lat) in the frame of time `when`."""
        return storm(self.times.index(when), self.step)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def storm(index: int, step: int) -> tuple[float, float]:
    return STORM[0] + index * step * RESOLUTION, STORM[1]


def step(count: int) -> int:
    """Pixels the storm moves a frame, when there are `count` frames."""
    return max(1, min(STEP, CROSSING // max(count - 1, 1)))


def start(folder: Path, times: Sequence[int] = TIMES) -> Wms:
    """Frames for `times` (epoch seconds), the index, the mapfile and the config in `folder`, and
    mapserv served on a free port of 127.0.0.1. Stop it when done."""
    program = require()
    folder = Path(folder)
    times = tuple(sorted(times))
    if not times:
        raise ValueError("a WMS-T server needs at least one time")
    moves = step(len(times))
    write_frames(folder, times, moves)
    config = write_mapfile(folder, times)
    queries: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(program, config, queries))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL,), name="wms", daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/wms?"
    return Wms(url, LAYER, LAYER_WITH_DEFAULT, times, EXTENT, folder, queries, moves, server)


class Weather(NamedTuple):
    """What every frame's field is made from: patterns of smooth noise in [0, 1]."""

    drift: np.ndarray  # the rain shield, wide enough to drift across every frame
    change: tuple[np.ndarray, np.ndarray]  # blended a little differently in each frame


def weather(count: int, step: int) -> Weather:
    rows, columns = _grid()
    return Weather(_noise(0, rows, columns + step * (count - 1)), (_noise(1, rows, columns), _noise(2, rows, columns)))


def dbz(index: int, step: int, made: Weather) -> np.ndarray:
    """The reflectivity field of frame `index` (rows north to south): the storm, a symmetric cell
    whose core the tests find, in a ragged rain shield (under CORE_DBZ) that drifts east with it
    `step` pixels a frame and changes from frame to frame."""
    rows, columns = _grid()
    west, _, _, north = EXTENT
    lon = west + (np.arange(columns, dtype=np.float32) + 0.5) * RESOLUTION
    lat = north - (np.arange(rows, dtype=np.float32) + 0.5) * RESOLUTION
    x, y = storm(index, step)
    spread = np.float32(2 * 1.1**2)
    cell = np.float32(62) * np.outer(np.exp(-((lat - y) ** 2) / spread), np.exp(-((lon - x) ** 2) / spread))
    start = made.drift.shape[1] - columns - step * index  # the view slides west: the rain moves east
    angle = 0.7 * index
    one, other = made.change
    texture = made.drift[:, start : start + columns] * np.float32(0.75)
    texture += one * np.float32(0.25 * math.cos(angle)) + other * np.float32(0.25 * math.sin(angle))
    texture += np.float32(0.125 * (1 - math.cos(angle) - math.sin(angle)))  # centred on 0.5 as the patterns are
    shield = (texture - np.float32(0.68)) * np.float32(36 / 0.32) + np.float32(12)  # about a fifth has rain
    shield[texture <= 0.68] = 0
    return np.maximum(cell, np.minimum(shield, np.float32(CORE_DBZ - 6)))


def _grid() -> tuple[int, int]:
    west, south, east, north = EXTENT
    return round((north - south) / RESOLUTION), round((east - west) / RESOLUTION)


def _noise(seed: int, rows: int, columns: int) -> np.ndarray:
    """Smooth noise in [0, 1] of shape (rows, columns): a coarse random grid, scaled up."""
    cell = 40  # pixels between the grid's points
    coarse = np.random.default_rng(seed).random((rows // cell + 2, columns // cell + 2)).astype(np.float32)
    size = (coarse.shape[1] * cell, coarse.shape[0] * cell)
    image = Image.fromarray(coarse, "F").resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image)[:rows, :columns], 0, 1)


def write_frames(folder: Path, times: Sequence[int], step: int) -> None:
    """A paletted PNG per time (index 0 transparent, then the dBZ scale) with its world file, and
    the tile index."""
    west, _, _, north = EXTENT
    palette = [0, 0, 0, *SCALE.flatten().tolist()]
    features = []
    made = weather(len(times), step)
    for index, when in enumerate(times):
        field = np.clip(dbz(index, step, made), 5, 5 * len(SCALE) + 9.9)
        levels = ((field - 5) * np.float32(0.2)).astype(np.uint8)  # 0 under 10 dBZ, then 5 dBZ a level
        image = Image.fromarray(levels, "P")
        image.putpalette(palette)
        name = f"radar-{iso(when).replace(':', '')}"
        image.save(folder / f"{name}.png", compress_level=1, transparency=0)
        # A world file: pixel sizes, rotations, then the centre of the top-left pixel.
        (folder / f"{name}.wld").write_text(
            f"{RESOLUTION}\n0\n0\n{-RESOLUTION}\n{west + RESOLUTION / 2}\n{north - RESOLUTION / 2}\n"
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"location": str(folder / f"{name}.png"), "time": iso(when)},
                "geometry": {"type": "Polygon", "coordinates": [_ring()]},
            }
        )
    (folder / "index.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def _ring() -> list[list[float]]:
    west, south, east, north = EXTENT
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def time_extent(times: Sequence[int]) -> str:
    """start/end/resolution when the times are evenly spaced (as real WMS-T servers give it), else
    the list of times."""
    steps = {b - a for a, b in zip(times, times[1:])}
    if len(steps) == 1:
        (step,) = steps
        return f"{iso(times[0])}/{iso(times[-1])}/PT{step}S"
    return ",".join(iso(t) for t in times)


def write_mapfile(folder: Path, times: Sequence[int]) -> Path:
    """The mapfile and MapServer's config file naming it; the config file's path."""
    west, south, east, north = EXTENT

    def layer(name: str, default: str) -> str:
        return f"""
  LAYER
    NAME "{name}"
    TYPE RASTER
    STATUS OFF
    TILEINDEX "frames"
    TILEITEM "location"
    PROJECTION "init=epsg:4326" END
    METADATA
      "wms_title" "Radar reflectivity"
      "wms_srs" "EPSG:4326 EPSG:3857"
      "wms_extent" "{west} {south} {east} {north}"
      "wms_timeitem" "time"
      "wms_timeextent" "{time_extent(times)}"{default}
    END
  END"""

    default = f'\n      "wms_timedefault" "{iso(times[-1])}"'
    mapfile = folder / "radar.map"
    mapfile.write_text(f"""MAP
  NAME "weathergif-test"
  EXTENT {west} {south} {east} {north}
  SIZE 800 600
  UNITS DD
  PROJECTION "init=epsg:4326" END
  OUTPUTFORMAT
    NAME "png"
    DRIVER AGG/PNG
    MIMETYPE "image/png"
    IMAGEMODE RGBA
    EXTENSION "png"
    TRANSPARENT ON
  END
  WEB
    METADATA
      "wms_title" "weathergif test radar"
      "wms_onlineresource" "http://127.0.0.1/wms?"
      "wms_srs" "EPSG:4326 EPSG:3857"
      "wms_enable_request" "*"
    END
  END
  LAYER
    NAME "frames"
    TYPE POLYGON
    STATUS OFF
    CONNECTIONTYPE OGR
    CONNECTION "{folder / "index.geojson"}"
    PROJECTION "init=epsg:4326" END
  END{layer(LAYER, "")}{layer(LAYER_WITH_DEFAULT, default)}
END
""")
    config = folder / "mapserver.conf"
    config.write_text(f"""CONFIG
  ENV
    MS_MAPFILE "{mapfile}"
    MS_MAP_NO_PATH "1"
  END
END
""")
    return config


def _handler(program: str, config: Path, queries: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            path, _, query = self.path.partition("?")
            if path != "/wms":
                self._send(404, {"Content-Type": "text/plain"}, b"not here: /wms?SERVICE=WMS&...")
                return
            queries.append(query)
            port = self.server.server_address[1]
            environment = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "MAPSERVER_CONFIG_FILE": str(config),
                "GATEWAY_INTERFACE": "CGI/1.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_SOFTWARE": "weathergif-tests",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": str(port),
                "REQUEST_METHOD": "GET",
                "SCRIPT_NAME": "/wms",
                "QUERY_STRING": query,
                "REMOTE_ADDR": self.client_address[0],
            }
            try:
                done = subprocess.run(
                    [program], env=environment, stdin=subprocess.DEVNULL, capture_output=True, timeout=30
                )
            except subprocess.TimeoutExpired:
                self._send(504, {"Content-Type": "text/plain"}, b"mapserv took too long")
                return
            status, headers, body = _cgi_answer(done.stdout)
            if done.returncode != 0 or status is None:
                message = f"mapserv exited {done.returncode}: {done.stderr.decode(errors='replace')[:2000]}"
                self._send(500, {"Content-Type": "text/plain"}, message.encode())
                return
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _cgi_answer(output: bytes) -> tuple[int | None, dict[str, str], bytes]:
    """A CGI program's output as status, headers and body (RFC 3875: a Status header or 200)."""
    ends = [i for i in (output.find(b"\r\n\r\n"), output.find(b"\n\n")) if i >= 0]
    if not ends:
        return None, {}, output
    end = min(ends)
    head = output[:end]
    body = output[end + (4 if output[end : end + 4] == b"\r\n\r\n" else 2) :]
    headers: dict[str, str] = {}
    status = 200
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip().lower() not in ("content-length", "connection"):
            headers[name.strip()] = value.strip()
    return status, headers, body
