"""The demo map source, and `make demo` end to end."""

from __future__ import annotations

import email
import io
import os
import re
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


@pytest.mark.heavy
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
    # each animation's first GIF within a minute: each asked for its whole window at once
    timings = dict(re.findall(r"(GIF|forecast GIF) at ([\d.]+) s", run.stdout))
    assert float(timings["GIF"]) < 60 and float(timings["forecast GIF"]) < 60, run.stdout
    forecast = Image.open(out / "forecast-demo.gif")
    assert (forecast.n_frames, forecast.size) == (8, (800, 600))
    assert (out / "radar-demo.webp").stat().st_size < (out / "radar-demo.gif").stat().st_size
    assert (out / "radar-demo.mp4").read_bytes()[4:8] == b"ftyp"
    assert len(list((out / "thumbnails").glob("*-200x150-cover.jpg"))) == 12
    assert len(list((out / "thumbnails").glob("*-96x96-cover.jpg"))) == 12
    assert Image.open(out / "canyon-400x400.jpg").size == (400, 400)
    message = email.message_from_bytes((out / "email.eml").read_bytes())
    assert message["To"] == "forecast-desk@example.com" and message.is_multipart()
    assert [part.get_content_type() for part in message.walk()][1:] == ["text/plain", "text/html"]
    html = (out / "email.html").read_text()
    assert 'src="radar-demo.gif"' in html and "http" not in html  # links to the files beside it
    # the text alternative links the same files: the GIF and each thumbnail the HTML shows
    text = (
        next(part for part in message.walk() if part.get_content_type() == "text/plain")
        .get_payload(decode=True)
        .decode()
    )
    thumbnails = set(re.findall(r'src="(thumbnails/[^"]+)"', html))
    assert "<radar-demo.gif>" in text and len(thumbnails) == 4
    assert {f"<{name}>" for name in thumbnails} <= set(re.findall(r"<[^<>\s]+>", text)), text


@pytest.mark.integration
def test_make_serve_passes_its_speed_to_the_runtime():
    def command(*variables: str) -> str:
        run = subprocess.run(
            ["make", "--no-print-directory", "-n", "serve", *variables],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")},
        )  # as typed at a shell, also when this test runs under `make test`
        assert run.returncode == 0, run.stderr
        return next(line for line in reversed(run.stdout.splitlines()) if "-m local serve" in line)

    assert command("SPEED=60", "PORT=8123").endswith("-m local serve --port 8123 --speed 60")
    assert command().endswith("-m local serve --port 8000 --speed 1")  # real time unless asked
    helped = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    assert "SPEED=60" in next(line for line in helped.splitlines() if line.startswith("make serve"))


def test_serve_takes_a_speed_above_zero(monkeypatch):
    from local import __main__ as cli
    from local import serve

    asked = {}
    monkeypatch.setattr(serve, "main", lambda **kwargs: asked.update(kwargs) or 0)
    assert cli.main(["serve", "--speed", "60"]) == 0 and asked["speed"] == 60.0
    for wrong in ("0", "-1", "nan", "inf", "fast"):
        with pytest.raises(SystemExit):
            cli.main(["serve", "--speed", wrong])


@pytest.mark.integration
def test_serve_runs_the_schedules_at_its_speed_and_logs_each_invocation_once():
    """`python -m local serve --speed 600` (make serve SPEED=600): the 5-minute fetch schedule fires every
    half second of the wall clock, and each invocation is one plain line, not again as JSON."""
    import signal
    import socket
    import threading
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAP_", "FETCH_", "POWERTOOLS_"))}
    serve = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port), "--speed", "600", "--no-demo"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    err: list[tuple[float, str]] = []
    readers = [
        threading.Thread(target=lambda: out.extend(serve.stdout), daemon=True),
        threading.Thread(target=lambda: err.extend((time.monotonic(), line) for line in serve.stderr), daemon=True),
    ]
    for reader in readers:
        reader.start()
    ticks: list[float] = []
    try:
        deadline = time.monotonic() + 90
        while len(ticks) < 6 and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.2)
            ticks = [at for at, line in list(err) if re.search(r"\bfetch_due_frames \d+ ms ok\b", line)]
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=60)
        for reader in readers:
            reader.join(timeout=10)
    printed = "".join(out) + "".join(line for _, line in err)
    assert len(ticks) >= 6, printed
    assert "Schedules run 600 times faster: the 1-minute fetch schedule every 0.1 s" in printed
    # the first fires at the start; then one every 0.1 s (at speed 1: one a minute), as fast as they run
    assert ticks[5] - ticks[1] < 8, ticks
    assert not [line for line in out if "fetch_due_frames" in line], out  # the runtime's line once, plain
    assert not [line for _, line in err if line.lstrip().startswith("{")], err  # the app's JSON only on stdout
    assert not [line for _, line in err if "Found credentials" in line or "Found endpoint" in line], err
