"""The fetcher against a real OGC WMS-T server, MapServer's mapserv (tests/wms.py), through the
worker's runner: the did-* message each test reads is the one the mediator would get.

The server needs Debian's cgi-mapserver and mapserver-bin (.ci/run installs them); without them
its tests skip and say so, unless REQUIRE_MAPSERVER=1 (CI) makes that a failure. The exception
reports MapServer does not send (OWS, hostile ones) come from the loopback source of
tests/mapsource.py, which needs nothing.
"""

from __future__ import annotations

import io
import json
import math
import urllib.request
from urllib.parse import parse_qsl, quote

import numpy as np
import pytest
from PIL import Image

from chalicelib.errors import PermanentError
from chalicelib.imaging.gif import encode_gif
from chalicelib.workers import fetcher, runner
from tests import wms as server
from tests.mapsource import Answer, MapSource

CENTER = (36.15, -97.0)  # lat, lon: the storm crosses the view from frame to frame
ZOOM = 5
WIDTH, HEIGHT = 320, 240
EARTH_RADIUS = 6378137.0
CLIENT_SECRET = "Sk/9+q=Zw8~xT"


def request(when: int, layers: tuple[str, ...] = (server.LAYER,), **extra: object) -> dict:
    return {
        "type": "please-fetch-amp-image",
        "imageId": "radar",
        "layers": list(layers),
        "width": WIDTH,
        "height": HEIGHT,
        "center": f"{CENTER[0]},{CENTER[1]}",
        "zoom": ZOOM,
        "validTime": when,
        "correlationId": "wms-1",
        **extra,
    }


def run(message: dict) -> dict:
    """The fetch worker's answer to `message`, sent to the mediator as the runner sends it."""
    token = runner.lambda_context.set(None)  # not an earlier test's (expired) Lambda context
    try:
        return runner.run(fetcher.WORKER, message)
    finally:
        runner.lambda_context.reset(token)


def pixel(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Where (lon, lat) is in a WIDTH x HEIGHT view around CENTER at ZOOM with square pixels: in
    degrees of EPSG:4326, or in Web Mercator's metres."""
    if crs == "EPSG:3857":
        metres = 2 * math.pi * EARTH_RADIUS / (256 * 2**ZOOM)

        def y(lat: float) -> float:
            return EARTH_RADIUS * math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

        dx = EARTH_RADIUS * math.radians(lon - CENTER[1]) / metres
        dy = (y(lat) - y(CENTER[0])) / metres
    else:
        degrees = 360 / (256 * 2**ZOOM)
        dx, dy = (lon - CENTER[1]) / degrees, (lat - CENTER[0]) / degrees
    return WIDTH / 2 + dx, HEIGHT / 2 - dy


def core(image: Image.Image) -> tuple[float, float] | None:
    """The middle (x, y) of the storm core's pixels, or None when there are none."""
    rgba = np.asarray(image.convert("RGBA"))
    mask = np.zeros(rgba.shape[:2], bool)
    for colour in server.CORE_COLOURS:
        mask |= (rgba[..., :3] == colour).all(axis=-1) & (rgba[..., 3] == 255)
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return None
    return float(columns.mean()) + 0.5, float(rows.mean()) + 0.5


def get(url: str) -> tuple[str, bytes]:
    """Content-Type and body of a GET straight to the server (no proxy from the environment)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.headers.get("Content-Type", ""), response.read()


def getmap(wms: server.Wms, bbox: str, when: str, version: str = "1.1.1", layer: str = server.LAYER) -> bytes:
    url = wms.template(version=version, layers=layer).format(bbox=bbox, width=WIDTH, height=HEIGHT, iso_time=when)
    content_type, body = get(url)
    assert content_type == "image/png", body[:500]
    return body


@pytest.fixture
def fetching(wms, monkeypatch):
    """The fetcher's environment pointed at the WMS server; call it again for another template."""

    def use(**template: str) -> server.Wms:
        for name, value in wms.environment(**template).items():
            monkeypatch.setenv(name, value)
        return wms

    use()
    return use


class TestBbox:
    """{bbox} as a WMS client writes it: the template's CRS, its axis order, square pixels."""

    @pytest.mark.parametrize(
        "query, expected",
        [
            ("", "-110.052500,25.603125,-81.927500,46.696875"),  # no SRS: EPSG:4326, as before
            ("VERSION=1.1.1&SRS=EPSG:4326", "-110.052500,25.603125,-81.927500,46.696875"),
            ("VERSION=1.3.0&CRS=EPSG:4326", "25.603125,-110.052500,46.696875,-81.927500"),
            ("version=1.3.0&crs=epsg%3A4326", "25.603125,-110.052500,46.696875,-81.927500"),
            ("VERSION=1.3.0&CRS=CRS:84", "-110.052500,25.603125,-81.927500,46.696875"),
            ("VERSION=1.1.1&SRS=EPSG:3857", "-12250988.26,3147208.06,-9120127.58,5495353.57"),
            ("VERSION=1.3.0&CRS=EPSG:900913", "-12250988.26,3147208.06,-9120127.58,5495353.57"),
        ],
    )
    def test_in_the_templates_crs_and_axis_order(self, query, expected):
        crs, lat_first = fetcher.bbox_crs(f"https://wms.example/wms?{query}&BBOX={{bbox}}&TIME={{iso_time}}")
        assert fetcher.bbox("36.15,-95.99", 4, 320, 240, crs, lat_first) == expected

    @pytest.mark.parametrize("center, zoom, width, height", [("10,20", 2, 256, 256), ("-33.9,151.2", 7, 800, 600)])
    def test_pixels_are_square_around_the_center(self, center, zoom, width, height):
        lat, lon = (float(v) for v in center.split(","))
        west, south, east, north = (float(v) for v in fetcher.bbox(center, zoom, width, height).split(","))
        assert (east - west) / width == pytest.approx((north - south) / height) == pytest.approx(360 / 256 / 2**zoom)
        assert ((west + east) / 2, (south + north) / 2) == pytest.approx((lon, lat))

    def test_a_view_past_a_pole_is_moved_inside_not_squeezed(self):
        west, south, east, north = (float(v) for v in fetcher.bbox("89,10", 3, 400, 200).split(","))
        assert north == 90 and (east - west) / (north - south) == pytest.approx(2)

    def test_another_crs_is_refused(self):
        with pytest.raises(PermanentError, match="computed in EPSG:4326, CRS:84 or EPSG:3857, not EPSG:32615"):
            fetcher.bbox_crs("https://wms.example/wms?VERSION=1.3.0&CRS=EPSG:32615&BBOX={bbox}")


class TestGetMap:
    @pytest.mark.parametrize(
        "version, crs",
        [
            ("1.1.1", "EPSG:4326"),
            ("1.3.0", "EPSG:4326"),
            ("1.3.0", "CRS:84"),
            ("1.1.1", "EPSG:3857"),
            ("1.3.0", "EPSG:3857"),
        ],
    )
    def test_the_frame_of_the_asked_time_in_the_asked_view(self, aws, fetching, version, crs):
        wms = fetching(version=version, crs=crs)
        when = wms.times[2]
        asked = len(wms.queries)
        reply = run(request(when))
        assert reply["type"] == "did-fetch-amp-image", reply
        assert aws.reply() == reply
        assert reply["validTime"] == when and reply["location"]["Key"] == f"radar/{WIDTH}x{HEIGHT}/{when}.png"

        [query] = wms.queries[asked:]
        sent = dict(parse_qsl(query))
        assert sent["VERSION"] == version and sent["CRS" if version == "1.3.0" else "SRS"] == crs
        assert sent["TIME"] == server.iso(when) and (sent["WIDTH"], sent["HEIGHT"]) == (str(WIDTH), str(HEIGHT))
        corners = [float(v) for v in sent["BBOX"].split(",")]
        if version == "1.3.0" and crs == "EPSG:4326":
            corners = [corners[1], corners[0], corners[3], corners[2]]  # latitude first
        west, south, east, north = corners
        assert (east - west) / (north - south) == pytest.approx(WIDTH / HEIGHT)  # square pixels

        frame = Image.open(io.BytesIO(aws.get(**reply["location"])))
        assert frame.format == "PNG" and frame.size == (WIDTH, HEIGHT) and frame.mode == "RGBA"
        alpha = np.asarray(frame)[..., 3]
        assert 0.02 < (alpha == 255).mean() < 0.8 and set(np.unique(alpha)) == {0, 255}  # an overlay
        found = core(frame)
        assert found is not None, "no storm core in the frame"
        assert found == pytest.approx(
            pixel(*wms.storm(when), "EPSG:3857" if crs == "EPSG:3857" else "EPSG:4326"), abs=1.5
        )

    def test_every_time_has_its_own_frame_and_they_make_a_gif(self, aws, fetching):
        wms = fetching()
        frames = []
        for when in wms.times:
            reply = run(request(when))
            assert reply["type"] == "did-fetch-amp-image", reply
            frames.append(Image.open(io.BytesIO(aws.get(**reply["location"]))))
        assert len(aws.replies()) == len(wms.times)
        for when, frame in zip(wms.times, frames):
            assert core(frame) == pytest.approx(pixel(*wms.storm(when), "EPSG:4326"), abs=1.5)

        gif = encode_gif(list(frames), delay=500)
        animation = Image.open(io.BytesIO(gif))
        assert animation.format == "GIF" and animation.size == (WIDTH, HEIGHT)
        assert animation.n_frames == len(wms.times)
        shown = []
        for index in range(animation.n_frames):
            animation.seek(index)
            shown.append(np.asarray(animation.convert("RGB")))
        assert all(not np.array_equal(a, b) for a, b in zip(shown, shown[1:]))
        # The storm moves east in the GIF as in the frames: its core keeps its colours.
        cores = [core(Image.fromarray(rgb)) for rgb in shown]
        assert all(c is not None for c in cores)
        assert [c[0] for c in cores] == sorted(c[0] for c in cores)  # type: ignore[index]


class TestServiceExceptions:
    @pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
    def test_a_time_outside_the_extent_is_a_did_fail_saying_so(self, aws, fetching, version):
        wms = fetching(version=version)
        asked = len(wms.queries)
        later = wms.times[-1] + 86400
        reply = run(request(later))
        assert reply["type"] == "did-fail-fetch-amp-image", reply
        assert aws.reply() == reply
        assert reply["errorType"] == "ServiceException"
        assert "answered a ServiceException: InvalidDimensionValue: msWMSApplyTime" in reply["error"]
        assert f"Time value(s) {server.iso(later)} given is invalid or outside the time extent" in reply["error"]
        assert "not an image" not in reply["error"]
        assert reply["request"]["validTime"] == later and reply["correlationId"] == "wms-1"
        assert len(wms.queries) == asked + 1  # not retried
        assert aws.keys(aws.names.frames_bucket) == []

    @pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
    def test_a_layer_the_server_does_not_have_is_a_did_fail_saying_so(self, aws, fetching, version):
        wms = fetching(version=version)
        asked = len(wms.queries)
        reply = run(request(wms.times[0], layers=("no-such-layer",)))
        assert reply["type"] == "did-fail-fetch-amp-image", reply
        assert reply["errorType"] == "ServiceException"
        assert "ServiceException: LayerNotDefined: msWMSLoadGetMapParams(): WMS server error." in reply["error"]
        assert len(wms.queries) == asked + 1
        assert aws.keys(aws.names.frames_bucket) == []


class TestMapServer:
    """What MapServer 8 does that the fetcher cannot see: pinned, so a change shows."""

    def test_a_layer_with_a_default_time_answers_a_time_outside_its_extent_with_that_frame(self, wms):
        bbox = "-104,31,-90,41.5"
        newest = getmap(wms, bbox, server.iso(wms.times[-1]), layer=server.LAYER_WITH_DEFAULT)
        later = getmap(wms, bbox, server.iso(wms.times[-1] + 86400), layer=server.LAYER_WITH_DEFAULT)
        assert later == newest  # as IEM's layers do: an image, of another time than the one asked

    def test_a_time_inside_the_extent_with_no_frame_is_an_empty_image(self, wms):
        body = getmap(wms, "-104,31,-90,41.5", server.iso(wms.times[0] + 60))
        assert (np.asarray(Image.open(io.BytesIO(body)))[..., 3] == 0).all()

    def test_wms_1_3_0_reads_an_epsg_4326_bbox_latitude_first(self, wms):
        when = server.iso(wms.times[0])
        right = getmap(wms, "31,-104,41.5,-90", when, version="1.3.0")
        wrong = getmap(wms, "-104,31,-90,41.5", when, version="1.3.0")  # 1.1.1's order: nowhere near
        assert core(Image.open(io.BytesIO(right))) is not None
        assert (np.asarray(Image.open(io.BytesIO(wrong)))[..., 3] == 0).all()

    def test_a_bbox_of_another_shape_than_the_image_is_stretched_to_it(self, wms):
        lon, lat = wms.storm(wms.times[0])
        square = getmap(wms, f"{lon - 3},{lat - 3},{lon + 3},{lat + 3}", server.iso(wms.times[0]))
        rgba = np.asarray(Image.open(io.BytesIO(square)))
        red = np.isin(rgba[..., 0], [c[0] for c in server.CORE_COLOURS]) & (rgba[..., 1] == 0)
        rows, columns = np.nonzero(red)
        # 6 x 6 degrees in 320 x 240 pixels: the round core is drawn wider than tall.
        width, height = np.ptp(columns) + 1, np.ptp(rows) + 1
        assert width / height == pytest.approx((WIDTH / 6) / (HEIGHT / 6), rel=0.1)


# Exception reports from a source whose answers each test sets ---------------------------------

REPORT_1_1_1 = b"""<?xml version='1.0' encoding="UTF-8" standalone="no" ?>
<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">
<ServiceExceptionReport version="1.1.1">
<ServiceException code="InvalidDimensionValue">
msWMSApplyTime: WMS server error. Time value(s) 2030-01-01T00:00:00Z given is invalid.
</ServiceException>
</ServiceExceptionReport>
"""
OWS_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0">
  <ows:Exception exceptionCode="InvalidParameterValue" locator="time">
    <ows:ExceptionText>No data for the time asked</ows:ExceptionText><ows:ExceptionText>Try another</ows:ExceptionText>
  </ows:Exception>
</ows:ExceptionReport>
"""


@pytest.fixture
def source(monkeypatch):
    """A loopback source behind a keyed WMS template (its secret must never leave the fetcher)."""
    source = MapSource()
    environment = source.environment("client-1234", CLIENT_SECRET)
    environment["MAP_URL_TEMPLATE"] = (
        f"http://127.0.0.1:{source.port}/wms?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS={{layers}}"
        "&SRS=EPSG:4326&BBOX={bbox}&WIDTH={width}&HEIGHT={height}&FORMAT=image/png&TIME={iso_time}"
        "&KEY={client_secret}"
    )
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FETCH_RETRIES", "1")
    source.start()
    yield source
    source.stop()


def failed(aws, source: MapSource) -> dict:
    reply = aws.reply()
    assert reply["type"] == "did-fail-fetch-amp-image", reply
    assert len(source.paths) == 1  # asked once: not retried
    assert aws.keys(aws.names.frames_bucket) == []
    assert CLIENT_SECRET not in json.dumps(reply)
    return reply


class TestReports:
    @pytest.mark.parametrize(
        "content_type", ["application/vnd.ogc.se_xml", "text/xml; charset=UTF-8", "image/png", "", "text/plain"]
    )
    def test_a_report_is_a_did_fail_whatever_its_content_type(self, aws, source, content_type):
        source.answer(Answer(body=REPORT_1_1_1, headers={"Content-Type": content_type}))
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "ServiceException"
        assert reply["error"].endswith(
            "answered a ServiceException: InvalidDimensionValue: msWMSApplyTime: WMS server error. "
            "Time value(s) 2030-01-01T00:00:00Z given is invalid."
        )
        assert "map source 'default' at http://127.0.0.1:" in reply["error"]
        assert "KEY" not in reply["error"] and "?" not in reply["error"]  # no path or query, keyed or not

    def test_an_ows_exception_report_says_each_text(self, aws, source):
        source.answer(Answer(body=OWS_REPORT, headers={"Content-Type": "application/xml"}))
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "ServiceException"
        assert reply["error"].endswith(
            "answered a ServiceException: InvalidParameterValue: No data for the time asked Try another"
        )

    def test_a_report_is_redacted_then_cut_short(self, aws, source):
        echoed = f"Unknown KEY {CLIENT_SECRET} and {quote(CLIENT_SECRET, safe='')}. " + "more " * 2000
        body = REPORT_1_1_1.replace(b"msWMSApplyTime", echoed.encode().replace(b"&", b"&amp;"))
        source.answer(Answer(body=body, headers={"Content-Type": "text/xml"}))
        run(request(1700000000))
        reply = failed(aws, source)
        said = reply["error"].split("answered a ServiceException: ", 1)[1]
        assert said.startswith("InvalidDimensionValue: Unknown KEY *** and ***. more more")
        assert len(said) == fetcher.REPORT_CHARS + len("...") and said.endswith("...")

    @pytest.mark.parametrize(
        "doctype",
        [
            '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',  # expansion
            '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',  # an external entity
        ],
    )
    def test_a_report_declaring_entities_is_not_read(self, aws, source, doctype):
        body = f'<?xml version="1.0"?>{doctype}<ServiceExceptionReport><ServiceException>&b;&x;'
        body += "</ServiceException></ServiceExceptionReport>"
        source.answer(Answer(body=body.encode(), headers={"Content-Type": "application/vnd.ogc.se_xml"}))
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "SourceError"
        assert "answered application/vnd.ogc.se_xml, not an image: <?xml" in reply["error"]
        assert "root:" not in reply["error"] and "aaaaaaaaaaaaaaaaaaaa" not in reply["error"]

    def test_a_report_over_the_bound_is_not_read(self, aws, source):
        padding = b"<!-- " + b"x" * fetcher.MAX_REPORT_BYTES + b" -->"
        source.answer(Answer(body=REPORT_1_1_1 + padding, headers={"Content-Type": "text/xml"}))
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "SourceError" and "answered text/xml, not an image: <?xml" in reply["error"]

    def test_other_text_is_not_an_image_as_before(self, aws, source):
        source.answer(
            Answer(body=b"<html><body>Service Unavailable</body></html>", headers={"Content-Type": "text/html"})
        )
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "SourceError"
        assert "answered text/html, not an image: <html><body>Service Unavailable</body></html>" in reply["error"]

    def test_a_report_with_an_error_status_says_what_it_says(self, aws, source):
        source.answer(Answer(400, OWS_REPORT, {"Content-Type": "application/xml"}))
        run(request(1700000000))
        reply = failed(aws, source)
        assert reply["errorType"] == "SourceError"
        assert reply["error"].endswith(
            "answered 400 Bad Request: ServiceException InvalidParameterValue: No data for the time asked Try another"
        )


# A backfill from the server, through the pipeline -----------------------------------------------


@pytest.mark.integration
def test_a_new_animation_on_a_wms_source_is_backfilled_into_a_gif_of_its_frames(runtime, wms, monkeypatch):
    """An animation created on a WMS-T source asks at once for its window's frames (the six times the
    server has, none asked twice), and the mediator makes its first GIF of them, oldest first: each
    of the GIF's frames is the server's frame of that time (its storm core where that time has it)."""
    from chalicelib.aws import client
    from chalicelib.mediator import decide, service, store
    from chalicelib.settings import TICK_SECONDS
    from chalicelib.mediator.animation import Animation

    stage = {
        "default": "nexrad",
        "sources": {"nexrad": {"urlTemplate": wms.template(), "step": 300, "back": 86400}},
    }
    monkeypatch.setenv("MAP_SOURCES", json.dumps(stage))
    monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "127.0.0.1")
    animation = Animation.from_dict(
        dict(
            imageId="nexrad-loop",
            source="nexrad",
            layers=[server.LAYER],
            width=WIDTH,
            height=HEIGHT,
            center=f"{CENTER[0]},{CENTER[1]}",
            zoom=ZOOM,
            interval=300,
            frames=len(wms.times),
        )
    )
    store.put_animation(animation)
    asked = len(wms.queries)
    now = wms.times[-1] + decide.phase(animation, TICK_SECONDS) + 20  # the newest time's frame is due
    service.mediator().start("nexrad-loop", now=now)
    runtime.drain(timeout=60)

    times = sorted(dict(parse_qsl(query))["TIME"] for query in wms.queries[asked:])
    assert times == [server.iso(when) for when in wms.times]  # each time of the window once
    [gif] = store.gifs("nexrad-loop")
    assert gif.done and gif.frame_times == wms.times, gif
    animation_file = Image.open(io.BytesIO(client("s3").get_object(**gif.location.to_dict())["Body"].read()))
    assert animation_file.format == "GIF" and animation_file.n_frames == len(wms.times)
    assert animation_file.size == (WIDTH, HEIGHT)
    for index, when in enumerate(wms.times):
        animation_file.seek(index)
        assert core(animation_file.convert("RGBA")) == pytest.approx(pixel(*wms.storm(when), "EPSG:4326"), abs=1.5)
    assert store.failures("nexrad-loop") == []
