"""Every route answers as openapi.json says: each real answer, of every route, method and status,
validated against the schema the document declares for it.

The app is driven as it runs (chalice.test.Client against the embedded AWS, frames, GIFs, failures,
dead letters, runs, usage and metrics put in place; an observed animation with its GIF's formats, a
forecast with its run, a loop), every route called for each answer it declares:
its successes and its errors (400, 404, 409, 413, 415, 503, and the gateway's 401 and 403 where a
token is needed). An answer must be one the route declares, with the headers it says it always carries,
of its media type, valid against its schema; its objects closed (a key added anywhere the API's own
shape is makes it invalid: a renamed or new field fails here until the schema says it); and every
answer each route declares must have been seen.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from chalicelib.mediator import store
from chalicelib.mediator.decide import Decision, FinishGif, RecordEmail, RecordFailure
from chalicelib.messages import Location, Output
from tests import records
from tests import answers
from tests.answers import AUTH, JSON, Answers

TOKEN = AUTH["Authorization"].removeprefix("Bearer ")
PUBLIC = {"Content-Type": JSON}
WRONG = {"Authorization": "Bearer wrong", "Content-Type": JSON}
CONFIG = {
    **answers.CONFIG,
    "formats": ["gif", "webp", "mp4"],
    "email": {"to": ["desk@example.com"], "from": "Weather Desk <wx@example.com>"},
}
RUN = 1_700_002_800  # a run of the demo forecast source (hourly runs, out 20 minutes after)
RUN_SOURCES = {"default": "obs", "sources": {"obs": {"preset": "demo"}, "fc": {"preset": "demo-forecast"}}}
FORECAST = {
    "kind": "forecast",
    "source": "fc",
    "layers": ["fradar"],
    "width": 64,
    "height": 48,
    "center": "tulsa,ok",
    "zoom": 4,
    "interval": 900,
    "frames": 4,
}
LOOP = {
    **FORECAST,
    "kind": "loop",
    "source": "obs",
    "layers": ["radar"],
    "frames": 3,
    "forecast": {"source": "fc", "layers": ["fradar"], "frames": 2},
}
THREE_SOURCES = {
    "default": "radar",
    "sources": {
        "radar": {"preset": "xweather"},
        "forecast": {"preset": "xweather-forecast", "ahead": 43200},
        "nexrad": {"preset": "iem-nexrad"},
    },
}


@pytest.fixture
def answers(chalice_client, monkeypatch) -> Answers:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    monkeypatch.delenv("MAP_SOURCES", raising=False)
    return Answers(chalice_client)


def test_every_route_answers_as_the_openapi_document_says(answers, aws, monkeypatch):
    from app import app
    from chalicelib.api.params import PATH_PARAMETERS

    call = answers
    site(call, monkeypatch)
    animations(call)
    put_results(aws)
    results(call)
    actions(call)
    forecasts(call, monkeypatch)
    operator(call, aws)
    deletes(call, aws)

    # Every route of the app's table was called, and every answer each one declares was seen.
    routes = {
        (re.sub(r"\{(\w+)\}", lambda m: "{%s}" % PATH_PARAMETERS[m.group(1)]["name"], path), method)
        for path, methods in app.routes.items()
        for method in methods
    }
    called = {(path, method) for path, method, _ in answers.seen}
    assert routes - called == set(), sorted(routes - called)
    declared = {
        (path, method.upper(), status)
        for path, item in answers.document["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
        for status in operation["responses"]
    }
    assert declared - answers.seen == set(), sorted(declared - answers.seen)
    assert answers.checked >= len(declared)


def site(call: Answers, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call("GET", "/", headers={})[0] == 200
    assert call("GET", "/openapi.json", headers={})[0] == 200
    assert call("GET", "/health", headers={})[0] == 200
    assert call("GET", "/sources", headers={})[0] == 200  # today's variables: the one source
    monkeypatch.setenv("MAP_SOURCES", json.dumps(THREE_SOURCES))
    status, listed = call("GET", "/sources", headers={})
    assert status == 200 and {s["kind"] for s in listed["sources"]} == {"observations", "forecast"}
    assert any(s["serving"]["latestRun"] for s in listed["sources"])
    monkeypatch.setenv("MAP_SOURCES", '{"sources": {"x": {"preset": "nope"}}}')
    assert call("GET", "/sources", headers={})[0] == 503
    monkeypatch.delenv("MAP_SOURCES")


def animations(call: Answers) -> None:
    status, created = call("PUT", "/animations/temps", CONFIG)
    assert status == 201 and created["formats"] == ["gif", "webp", "mp4"] and created["email"]
    assert call("PUT", "/animations/temps", CONFIG)[0] == 200
    assert call("PUT", "/animations/quiet", {**CONFIG, "enabled": False, "every": 1})[0] == 201
    assert call("PUT", "/animations/temps", {**CONFIG, "width": "800"})[0] == 400
    assert call("PUT", "/animations/temps", raw=b'{"layers": "' + b"x" * 70_000 + b'"}')[0] == 413
    assert call("PUT", "/animations/temps", CONFIG, headers={**AUTH, "Content-Type": "text/plain"})[0] == 415
    assert call("PUT", "/animations/temps", CONFIG, headers=PUBLIC)[0] == 401
    assert call("PUT", "/animations/temps", CONFIG, headers=WRONG)[0] == 403
    for headers in (AUTH, PUBLIC):
        assert call("GET", "/animations", headers=headers)[0] == 200
        assert call("GET", "/animations?limit=1&prefix=te", headers=headers)[0] == 200
        assert call("GET", "/animations/temps", headers=headers)[0] == 200
    assert call("GET", "/animations?limit=0")[0] == 400
    assert call("GET", "/animations/-temps")[0] == 400
    assert call("GET", "/animations/nope")[0] == 404
    status, page = call("GET", "/summary", headers={})  # cards before any frame
    assert status == 200 and all(card["gif"] is None for card in page["animations"])
    assert call("GET", "/summary?after=x")[0] == 400


def put_results(aws: Any) -> None:
    """Frames with thumbnails; a GIF made before formats were, a GIF with its WebP (its MP4 failed) and
    a failed email, one being made; failures (one redrivable, one of an email); a run's events."""
    n = aws.names
    for t in (600, 1200, 1800):
        frame = aws.put(n.frames_bucket, f"temps/{t}.png", b"frame")
        records.frame(store, "temps", t, Location.from_dict(frame), "run-1")
        thumb = aws.put(n.thumbnails_bucket, f"temps/80x60-cover/{t}.jpg", b"thumbnail")
        records.thumbnail(store, "temps", t, "80x60-cover", Location.from_dict(thumb))
    old = Location.from_dict(aws.put(n.gifs_bucket, "temps/600.gif", b"GIF89a"))
    records.gif(store, "temps", [600], old, "run-1")
    gif = Location.from_dict(aws.put(n.gifs_bucket, "temps/1200.gif", b"GIF89a and more"))
    webp = Location.from_dict(aws.put(n.gifs_bucket, "temps/1200.webp", b"RIFF"))
    records.gif_claim(store, "temps", [600, 1200], "count", "run-2")
    outputs = (Output(format="gif", location=gif, bytes=15), Output(format="webp", location=webp, bytes=4))
    store.apply(Decision("d:temps:1200", (FinishGif("temps", 1200, gif, None, outputs),)))
    store.apply(Decision("e:temps:600", (RecordEmail("temps", 600, "ses-1"),)))
    records.gif_claim(store, "temps", [1200, 1800], "manual", "run-3")
    request = {
        "type": "please-fetch-amp-image",
        "imageId": "temps",
        "layers": ["radar"],
        "width": 64,
        "height": 48,
        "center": "tulsa,ok",
        "zoom": 4,
        "validTime": 2400,
    }
    for change in (
        RecordFailure("temps", 1200, "create-gif", "ffmpeg: no encoder", "run-2", None, "mp4"),
        RecordFailure("temps", 1200, "send-email", "SES refused desk@example.com", "run-2"),
        RecordFailure("temps", 2400, "fetch-amp-image", "answered 404", "run-4", request),
    ):
        store.apply(Decision(f"f:{change.valid_time}:{change.action}", (change,)))
    store.log_event("out", {"type": "please-fetch-amp-image", "imageId": "temps"}, "run-1")
    store.log_event("in", {"type": "did-fetch-amp-image", "imageId": "temps"}, "run-1")
    store.log_event("error", {"type": "error", "error": "TimeoutError: throttled"}, "run-1")


def results(call: Answers) -> None:
    for headers in (AUTH, PUBLIC):
        status, page = call("GET", "/summary", headers=headers)
        [card] = [card for card in page["animations"] if card["imageId"] == "temps"]
        assert status == 200 and [f["format"] for f in card["gif"]["formats"]] == ["webp", "gif", "mp4"]
        status, gifs = call("GET", "/animations/temps/gifs", headers=headers)
        assert status == 200 and {g["status"] for g in gifs["gifs"]} == {"claimed", "done"}
        [made] = [g for g in gifs["gifs"] if g["validTime"] == 1200]
        assert made["formats"][-1] == {
            "format": "mp4",
            "type": "video/mp4",
            "bytes": None,
            "url": None,
            "error": "ffmpeg: no encoder",
        }
        assert call("GET", "/animations/temps/frames", headers=headers)[0] == 200
        status, failures = call("GET", "/animations/temps/failures", headers=headers)
        assert status == 200 and len(failures["failures"]) == 3
    for route in ("frames", "gifs", "failures"):
        assert call("GET", f"/animations/temps/{route}?limit=101")[0] == 400
        assert call("GET", f"/animations/nope/{route}")[0] == 404
    for link in (
        "/animations/temps/gifs/1200/image",
        "/animations/temps/gifs/1200/image?format=webp",
        "/animations/temps/frames/600/image",
        "/animations/temps/frames/600/thumbnails/80x60-cover",
    ):
        assert call("GET", link, headers={})[0] == 302
    for link in (
        "/animations/temps/gifs/1200/image?format=bmp",
        "/animations/temps/frames/0600/image",
        "/animations/temps/frames/600/thumbnails/0x1",
    ):
        assert call("GET", link, headers={})[0] == 400
    for link in (
        "/animations/temps/gifs/1800/image",  # being made
        "/animations/temps/gifs/1200/image?format=mp4",  # failed
        "/animations/temps/frames/2400/image",
        "/animations/temps/frames/600/thumbnails/40x30-cover",
    ):
        assert call("GET", link, headers={})[0] == 404


def actions(call: Answers) -> None:
    for action in ("fetch", "gif", "failures/redrive"):
        assert call("POST", f"/animations/temps/{action}", headers=PUBLIC)[0] == 401
        assert call("POST", f"/animations/temps/{action}", headers=WRONG)[0] == 403
        assert call("POST", f"/animations/-temps/{action}")[0] == 400
        assert call("POST", f"/animations/nope/{action}")[0] == 404
    status, asked = call("POST", "/animations/temps/fetch")
    assert status == 202 and asked["asked"]["type"] == "please-fetch-amp-image"
    assert call("POST", "/animations/temps/fetch")[0] == 409  # this minute's frame was asked for already
    assert call("POST", "/animations/quiet/fetch")[0] == 409  # disabled
    status, asked = call("POST", "/animations/temps/gif")  # the GIF being made, not known sent: sent now
    assert status == 202 and asked["asked"]["type"] == "please-create-gif"
    assert call("POST", "/animations/temps/gif")[0] == 409  # sent: being made
    status, redriven = call("POST", "/animations/temps/failures/redrive")
    assert status == 202 and redriven["redriven"] == 1


def forecasts(call: Answers, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forecast: before its first run, while its run's frames come, and its run's GIF made with the
    frame that failed said (a gap); a loop of observed frames and a run's."""
    from chalicelib.mediator import service
    from chalicelib.mediator.store import keys
    from chalicelib.mediator.ticks import TickSlice
    from chalicelib.messages import DidCreateGif, DidFail, DidFetchAmpImage, PleaseFetchAmpImage

    monkeypatch.setenv("MAP_SOURCES", json.dumps(RUN_SOURCES))
    with monkeypatch.context() as held:  # their starts held back: the runs below are asked for at set times
        held.setattr(service, "start", lambda image_id: None)
        assert call("PUT", "/animations/fcst", FORECAST)[0] == 201
        assert call("PUT", "/animations/loop", LOOP)[0] == 201
    status, page = call("GET", "/summary?prefix=fcst", headers={})
    assert status == 200 and page["animations"][0]["progress"]["run"] is None
    service.run_slice(TickSlice(kind="fetch", time=RUN + 25 * 60, shard=keys.shard("fcst"), only=["fcst"]))
    status, page = call("GET", "/summary?prefix=fcst", headers={})
    assert status == 200 and page["animations"][0]["progress"]["need"] == 4
    times = [RUN + k * 900 for k in range(4)]
    for t in times[:3]:
        location = Location(bucket="frames-b", key=f"fcst/{RUN}/{t}.png")
        service.handle(DidFetchAmpImage(image_id="fcst", valid_time=t, location=location, run_time=RUN), RUN + 1600)
    request = PleaseFetchAmpImage(
        image_id="fcst",
        **{k: FORECAST[k] for k in ("layers", "width", "height", "center", "zoom", "source")},
        valid_time=times[3],
        run_time=RUN,
    )
    failed = DidFail(type="did-fail-fetch-amp-image", error="answered 404", request=request.to_dict())
    service.handle(failed, RUN + 1600)
    made = DidCreateGif(image_id="fcst", valid_time=RUN, location=Location(bucket="gifs-b", key=f"fcst/run-{RUN}.gif"))
    service.handle(made, RUN + 1700)
    status, page = call("GET", "/summary?prefix=fcst", headers={})
    [card] = page["animations"]
    assert status == 200 and (card["gif"]["runTime"], card["progress"]["rule"]) == (RUN, "run")
    assert card["gif"]["gaps"] == ["2023-11-14T23:45:00Z"]
    status, frames = call("GET", "/animations/fcst/frames", headers={})
    assert status == 200 and frames["runTime"] == RUN and len(frames["frames"]) == 3
    assert call("GET", f"/animations/fcst/frames?run={RUN}&limit=2", headers={})[0] == 200
    status, gifs = call("GET", "/animations/fcst/gifs", headers={})
    assert status == 200 and gifs["gifs"][0]["gaps"] and gifs["gifs"][0]["runTime"] == RUN
    assert call("GET", f"/animations/fcst/frames/{RUN}/image?run={RUN}", headers={})[0] == 302
    assert call("GET", f"/animations/fcst/frames/{RUN}/image?run=x", headers={})[0] == 400
    assert call("GET", f"/animations/fcst/frames/{RUN}/thumbnails/80x60-cover?run={RUN}", headers={})[0] == 404
    assert call("GET", "/animations/fcst/failures", headers={})[0] == 200
    status, page = call("GET", "/summary?prefix=loop", headers={})
    assert status == 200 and page["animations"][0]["kind"] == "loop"
    assert call("GET", "/animations/loop", headers={})[1]["forecast"]["source"] == "fc"
    monkeypatch.delenv("MAP_SOURCES")


def operator(call: Answers, aws: Any) -> None:
    from chalicelib.aws import client

    now = int(time.time())
    store.record_stale(0, "temps", [{"imageId": "temps", "since": now - 4 * 600, "interval": 600}], now)
    store.record_dead_letter("m-1", '{"type": "did-create-gif"}', now, "TimeoutError: throttled")
    store.record_dead_letter("m-2", "not JSON", now, None)
    from chalicelib.mediator import service
    from chalicelib.messages import DidFail

    upload = {"source": {"Bucket": "u-p", "Key": "canyon-400x400.jpg"}}
    service.handle(DidFail(type="did-fail-create-thumbnail", error="not an image", request=upload), now)
    usage = {"function": "create_gif", "ms": 900, "memoryMb": 1024, "requests": {"s3.read": 3, "s3.write": 2}}
    store.add_usage({"temps": [usage], "": [{**usage, "function": "tick"}]}, now)
    dimensions = [{"Name": "Stage", "Value": "dev"}, {"Name": "Function", "Value": "create_gif"}]
    client("cloudwatch").put_metric_data(
        Namespace="weathergif",
        MetricData=[
            {"MetricName": "Duration", "Dimensions": dimensions, "Value": 812.0, "Unit": "Milliseconds"},
            {
                "MetricName": "Failures",
                "Dimensions": [*dimensions, {"Name": "Reason", "Value": "EncodeError"}],
                "Value": 1.0,
                "Unit": "Count",
            },
        ],
    )
    for headers in (AUTH, PUBLIC):
        status, body = call("GET", "/status", headers=headers)
        assert status == 200 and body["ok"] is False and body["stale"]["animations"]
    status, body = call("GET", "/metrics?minutes=30", headers={})
    assert status == 200 and {m["name"] for m in body["metrics"]} == {"Duration", "Failures"}
    assert call("GET", "/metrics?minutes=0")[0] == 400
    status, body = call("GET", "/animations/temps/cost", headers={})
    assert status == 200 and body["day"]["byFunction"]["create_gif"]["invocations"] == 1
    assert call("GET", "/animations/-temps/cost")[0] == 400
    assert call("GET", "/animations/nope/cost")[0] == 404
    assert call("GET", "/cost", headers={})[0] == 200
    status, run = call("GET", "/runs/run-1")
    assert status == 200 and [e["direction"] for e in run["events"]] == ["out", "in", "error"]
    assert call("GET", "/runs/" + "r" * 201)[0] == 400
    assert call("GET", "/runs/nothing-here")[0] == 404
    status, letters = call("GET", "/failures")
    assert status == 200 and len(letters["deadLetters"]) == 2 and letters["unattributed"]
    for target in ("/runs/run-1", "/failures"):
        assert call("GET", target, headers=PUBLIC)[0] == 401
        assert call("GET", target, headers=WRONG)[0] == 403
    assert call("POST", "/failures/redrive", headers=PUBLIC)[0] == 401
    assert call("POST", "/failures/redrive", headers=WRONG)[0] == 403
    assert call("POST", "/failures/redrive") == (202, {"redriven": 2})


def deletes(call: Answers, aws: Any) -> None:
    assert call("DELETE", "/animations/temps?images=some")[0] == 400
    assert call("DELETE", "/animations/-temps")[0] == 400
    assert call("DELETE", "/animations/nope")[0] == 404
    assert call("DELETE", "/animations/temps", headers=PUBLIC)[0] == 401
    assert call("DELETE", "/animations/temps", headers=WRONG)[0] == 403
    assert call("DELETE", "/animations/quiet")[0] == 200
    status, deleted = call("DELETE", "/animations/temps?images=remove")
    assert status == 200 and deleted["removed"]["objects"] > 0
    aws.s3.delete_bucket(Bucket=aws.names.uploads_bucket)
    assert call("GET", "/health", headers={})[0] == 503
