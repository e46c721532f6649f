"""The demo map source, and `make demo` end to end."""

from __future__ import annotations

import email
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from local.mapsource import DemoMapSource
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def source():
    server = DemoMapSource().start()
    yield server
    server.stop()


def get(source: DemoMapSource, path: str):
    return urllib.request.urlopen(f"http://127.0.0.1:{source.port}{path}", timeout=10)


def test_frames_answer_the_amp_url_shape(source):
    answer = get(source, "/demo_key/flat-dk,radar/400x300/tulsa,ok,6/20261122140700.png")
    image = Image.open(io.BytesIO(answer.read()))
    assert (image.format, image.size) == ("PNG", (400, 300))
    assert answer.headers["x-aeris-valid-date"] == "2026-11-22T14:05:00+00:00"  # frames every 5 minutes


def test_the_same_url_gives_the_same_bytes_and_time_moves_the_weather(source):
    path = "/k_s/radar/320x240/tulsa,ok,6/{}.png"
    first = get(source, path.format("20261122140000")).read()
    assert get(source, path.format("20261122140000")).read() == first
    later = np.asarray(Image.open(get(source, path.format("20261122150000"))).convert("RGB"), np.int16)
    changed = np.mean(np.any(later != np.asarray(Image.open(io.BytesIO(first)).convert("RGB"), np.int16), axis=2))
    assert 0.05 < changed < 0.9  # the field moved; the basemap stayed


def test_temperature_layers_and_bad_paths(source):
    assert Image.open(get(source, "/k_s/temperatures/200x150/denver,co,5/20261122140000.png")).size == (200, 150)
    with pytest.raises(urllib.error.HTTPError) as error:
        get(source, "/not/a/map.png")
    assert error.value.code == 400


def stamp(epoch: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y%m%d%H%M%S")


def pixels(answer) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(answer.read())).convert("RGBA"), np.int16)


def test_forecasts_of_two_runs_for_one_time_differ(source):
    import time

    run = int(time.time()) // 3600 * 3600 - 3 * 3600  # out long ago
    valid = run + 3 * 3600
    path = "/demo/radar/320x240/tulsa,ok,6/{}.png?run={}"
    newer = get(source, path.format(stamp(valid), stamp(run)))
    assert newer.headers["x-aeris-valid-date"] == datetime_iso(valid)
    older = get(source, path.format(stamp(valid), stamp(run - 2 * 3600)))
    changed = np.mean(np.any(pixels(newer) != pixels(older), axis=2))
    assert changed > 0.05  # the weather where each run put it
    at_its_start = get(source, path.format(stamp(run), stamp(run)))
    observed = get(source, f"/demo/radar/320x240/tulsa,ok,6/{stamp(run)}.png")
    title = 24  # the top bar names the run; below it a run starts from what was observed
    assert np.array_equal(pixels(at_its_start)[title:], pixels(observed)[title:])


@pytest.mark.parametrize(
    "query, status",
    [
        ("run=29990101000000", 404),  # not out yet
        ("run=20261122143000", 404),  # off the hourly grid
        ("run=20261122000000", 404),  # does not reach 14:00 (6 hours at most)
        ("run=20261122150000", 404),  # after the time asked
        ("run=yesterday", 400),
    ],
)
def test_runs_that_cannot_be_are_refused(source, query, status):
    with pytest.raises(urllib.error.HTTPError) as error:
        get(source, f"/demo/radar/320x240/tulsa,ok,6/20261122140000.png?{query}")
    assert error.value.code == status


def test_an_overlay_is_transparent_and_a_basemap_has_no_weather(source):
    overlay = Image.open(get(source, "/demo/radar/320x240/tulsa,ok,6/20261122140000.png?transparent=true"))
    assert overlay.mode == "RGBA" and 0.2 < np.mean(np.asarray(overlay)[..., 3] == 0) < 0.95
    first = get(source, "/demo/basemap/320x240/tulsa,ok,6/20261122140000.png").read()
    assert get(source, "/demo/flat-dk/320x240/tulsa,ok,6/20261122170000.png").read() == first  # no time in it
    composed = Image.alpha_composite(Image.open(io.BytesIO(first)).convert("RGBA"), overlay).convert("RGB")
    observed = Image.open(get(source, "/demo/radar/320x240/tulsa,ok,6/20261122140000.png")).convert("RGB")
    difference = np.abs(np.asarray(composed, np.int16) - np.asarray(observed, np.int16))[24:200]
    assert difference.max() <= 2  # the stack is the frame (but for rounding), between its title bar and legend


def test_the_demo_configures_its_three_sources(source):
    import json

    from chalicelib import sources

    environment = source.environment()
    config = json.loads(environment["MAP_SOURCES"])
    assert config["default"] == "demo" and sorted(config["sources"]) == ["demo", "demo-forecast", "demo-overlay"]
    os.environ.update(environment)  # read as a stage reads it
    try:
        found = sources.sources()
        assert found["demo"].kind == "observations" and found["demo-forecast"].kind == "forecast"
        assert all(s.hosts == {("127.0.0.1", source.port)} and not s.keyed for s in found.values())
    finally:
        for name in environment:
            os.environ.pop(name, None)


def datetime_iso(epoch: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


@pytest.mark.integration
def test_make_demo_writes_the_gif_thumbnails_and_email(tmp_path):
    out = tmp_path / "demo-output"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAP_", "FETCH_"))}
    run = subprocess.run(
        [sys.executable, "-m", "local", "demo", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "weathergif demo done in" in run.stdout
    gif = Image.open(out / "radar-demo.gif")
    assert (gif.n_frames, gif.size) == (12, (800, 600))
    assert len(list((out / "thumbnails").glob("*-200x150-cover.jpg"))) == 12
    assert len(list((out / "thumbnails").glob("*-96x96-cover.jpg"))) == 12
    assert Image.open(out / "canyon-400x400.jpg").size == (400, 400)
    message = email.message_from_bytes((out / "email.eml").read_bytes())
    assert message["To"] == "forecast-desk@example.com" and message.is_multipart()
    assert [part.get_content_type() for part in message.walk()][1:] == ["text/plain", "text/html"]
    html = (out / "email.html").read_text()
    assert 'src="radar-demo.gif"' in html and "http" not in html  # links to the files beside it
