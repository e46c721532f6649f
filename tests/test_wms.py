"""A real OGC WMS-T server, MapServer's mapserv (tests/wms.py): what it answers.

It needs Debian's cgi-mapserver and mapserver-bin (.ci/run installs them); without them these
tests skip and say so, unless REQUIRE_MAPSERVER=1 (CI) makes that a failure.
"""

from __future__ import annotations

import io
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests import wms as server

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 320, 240


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
