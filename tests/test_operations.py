"""The operator's view, through the real pipeline (the local runtime on the embedded AWS): the metrics
the handlers emit, read back from CloudWatch; what each animation's work cost; the status view."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from chalicelib.mediator import store
from chalicelib.mediator.animation import Animation
from tests import records
from tests.mapsource import Answer, radar_source

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 600


def next_slot() -> int:
    """The next slot on the grid, as the test runs (not as the module was imported): a new animation
    is not yet late for it."""
    return (int(time.time()) // INTERVAL + 1) * INTERVAL


def animation(**changes) -> Animation:
    config = dict(  # the configuration as the API takes it: camelCase keys
        imageId="ops",
        layers=["radar"],
        width=160,
        height=120,
        center="tulsa,ok",
        zoom=4,
        interval=INTERVAL,
        frames=3,
        thumbnails=[{"width": 40, "height": 30}],
        email={"to": ["desk@example.com"], "from": "wx@example.com"},
    )
    return Animation.from_dict({**config, **changes})


@pytest.fixture
def source(monkeypatch):
    server = radar_source(monkeypatch, 160, 120)
    yield server
    server.stop()


@pytest.fixture
def api(runtime):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:

        def get(path: str) -> dict:
            response = client.http.get(path)
            assert response.status_code == 200, response.body
            return json.loads(response.body)

        yield get


def run(runtime, ticks: int, config: Animation | None = None, start: int | None = None) -> int:
    """The fetch ticks of the animation's first `ticks` grid times from `start` (the next slot), each
    at its phase; the start."""
    start = next_slot() if start is None else start
    for tick in range(ticks):
        runtime.fire("fetch_due_frames", records.due(config or animation(), start + tick * INTERVAL))
        runtime.drain()
    return start


def metric(answer: dict, function: str, name: str, reason: str | None = None) -> dict:
    found = [
        m for m in answer["metrics"] if m["function"] == function and m["name"] == name and m.get("reason") == reason
    ]
    assert found, f"no {name} of {function} in {[(m['function'], m['name']) for m in answer['metrics']]}"
    return found[0]


def test_metrics_and_cost_of_a_gif_made_and_emailed(runtime, source, api):
    store.put_animation(animation())
    run(runtime, 1)  # a new animation: its window of three frames at its first tick
    [gif] = store.gifs("ops")
    assert (gif.status, gif.email_status) == ("done", "sent")

    metrics = api("/metrics?minutes=30")
    assert metrics["namespace"] == "weathergif" and metrics["stage"] == "dev"
    for function in ("fetch_due_frames", "tick", "mediate", "fetch_amp_image", "create_thumbnail", "create_gif"):
        duration = metric(metrics, function, "Duration")
        assert duration["count"] >= 1 and duration["maximum"] > 0, duration
    assert metric(metrics, "fetch_amp_image", "Duration")["count"] == 3
    assert metric(metrics, "fetch_amp_image", "BytesIn")["sum"] > 3 * 1000  # the map source's PNGs
    assert metric(metrics, "fetch_amp_image", "BytesOut")["sum"] > 3 * 1000  # into the frames bucket
    gif_bytes = metric(metrics, "create_gif", "BytesOut")
    assert gif_bytes["count"] == 1 and gif_bytes["sum"] > 1000
    assert metric(metrics, "create_gif", "BytesIn")["sum"] > 3 * 1000  # three frames read
    assert metric(metrics, "create_gif", "FramesPerGif")["sum"] == 3
    age = metric(metrics, "mediate", "FrameAge")
    assert age["count"] == 3  # each frame once, however often its message came
    assert metric(metrics, "tick", "StaleAnimations")["sum"] == 0
    assert not [m for m in metrics["metrics"] if m["name"] == "Failures"]

    cost = api("/animations/ops/cost")
    day = cost["day"]
    functions = day["byFunction"]
    assert functions["fetch_amp_image"]["invocations"] == 3
    assert functions["create_thumbnail"]["invocations"] == 3
    assert functions["create_gif"]["invocations"] == 1 and functions["send_email"]["invocations"] == 1
    assert functions["create_gif"]["gbSeconds"] > 0  # 1024 MB x its duration
    assert 0 < functions["mediate"]["invocations"] <= 3 + 3 + 1 + 1  # its share of the batches
    requests = day["requests"]
    assert requests["s3.write"] >= 3 + 3 + 1  # frames, thumbnails, the GIF
    assert requests["s3.read"] >= 3 + 3  # the thumbnailer's and the GIF maker's reads
    assert requests["sqs"] >= 8 and requests["ses"] == 1
    assert requests["dynamodb.write"] > 0 and requests["dynamodb.read"] > 0
    assert day["usd"] > 0 and day["usd"] == pytest.approx(sum(day["byService"].values()))
    assert cost["month"]["usd"] >= day["usd"]

    shared = api("/cost")
    assert {"fetch_due_frames", "tick"} <= set(shared["day"]["byFunction"])
    assert shared["prices"]["lambda.gbSecond"] > 0

    status = api("/status")
    assert status["ok"] is True and status["problems"] == []
    assert all(depth == {"visible": 0, "inFlight": 0, "delayed": 0} for depth in status["queues"].values())
    assert status["stale"]["count"] == 0 and status["stale"]["checked"] is not None


def test_failures_and_stale_animations_show_in_the_status_and_the_metrics(runtime, source, api):
    config = animation(frames=2)
    store.put_animation(config)
    source.respond = lambda path: Answer(404, b"no such layer", {"Content-Type": "text/plain"})
    start = run(runtime, 1, config)  # its window of two frames: both fail
    status = api("/status")
    assert status["ok"] is False
    assert status["failuresLastHour"]["count"] == 2
    assert status["failuresLastHour"]["byAction"] == {"fetch-amp-image": 2}
    recent = status["failuresLastHour"]["recent"]
    assert {r["imageId"] for r in recent} == {"ops"} and all("404" in r["error"] for r in recent)
    assert "2 failures in the last hour" in status["problems"]
    assert status["stale"]["count"] == 0  # configured just now: its frames are not yet late

    # Three intervals on, still no frame: stale, in the status and in the metric the alarm reads.
    runtime.fire("fetch_due_frames", records.due(config, start + 4 * INTERVAL))
    runtime.drain()
    status = api("/status")
    [stale] = status["stale"]["animations"]
    assert status["stale"]["count"] == 1 and stale["imageId"] == "ops" and stale["interval"] == INTERVAL
    assert "1 animation without a new frame for three intervals" in status["problems"]

    metrics = api("/metrics?minutes=30")
    assert metric(metrics, "tick", "StaleAnimations")["maximum"] == 1
    failures = metric(metrics, "fetch_amp_image", "Failures", reason="SourceError")
    assert failures["sum"] == 4  # the first window's two, then the new window's two (the old ones out of it)


@pytest.mark.parametrize("query", ["minutes=0", "minutes=x", "minutes=99999999", "other=1"])
def test_metrics_refuse_a_bad_window(runtime, query):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        response = client.http.get(f"/metrics?{query}")
    assert response.status_code == 400
    assert json.loads(response.body)["error"]


def test_the_cost_of_an_animation_that_does_not_exist_is_404(runtime):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        response = client.http.get("/animations/nothing-here/cost")
    assert response.status_code == 404


def test_kept_dead_letters_and_stopped_ticks_are_problems(runtime, api):
    now = int(time.time())
    store.record_stale(0, "ops", [], now - 3600 + 60)  # the last fetch tick looked nearly an hour ago
    store.record_dead_letter(message_id="m-1", body='{"type": "did-create-gif"}', sent_at=now, error="boom")
    status = api("/status")
    assert status["ok"] is False and status["deadLetters"] == 1
    assert "1 dead letter kept: see them below" in status["problems"]
    assert status["stale"]["ticking"] is False
    assert any(p.startswith("no fetch tick since") for p in status["problems"])
