"""The mediator with the workers, through real queues and topics (the local runtime)."""

from __future__ import annotations

import io
import json
import random

import pytest
from PIL import Image

from chalicelib import bus
from chalicelib.mediator import service, store
from chalicelib.mediator.animation import Animation
from chalicelib.messages import DidCreateGif, DidFetchAmpImage, Location
from chalicelib.settings import names
from tests import records
from tests.images import encode, radar_frame
from tests.mapsource import Answer, radar_source

T0 = 1_700_000_400  # on the 600 s grid
EMAIL = {"to": ["desk@example.com"], "from": "Weather Desk <wx@example.com>"}


def animation(**changes) -> Animation:
    config = dict(  # the configuration as the API takes it: camelCase keys
        imageId="temps",
        layers=["radar"],
        width=320,
        height=240,
        center="tulsa,ok",
        zoom=4,
        interval=600,
        frames=3,
        every=2,
        thumbnails=[{"width": 80, "height": 60}, {"width": 32, "height": 32}],
        email=EMAIL,
    )
    return Animation.from_dict({**config, **changes})


@pytest.fixture
def source(monkeypatch):
    server = radar_source(monkeypatch)
    yield server
    server.stop()


def gif_frames(data: bytes) -> int:
    return Image.open(io.BytesIO(data)).n_frames


@pytest.mark.heavy
def test_schedule_to_email(runtime, emulator, source, monkeypatch):
    """A new animation asks for its window (N=3) at its first tick: its first GIF then; then a frame
    each interval, at the animation's phase, and a GIF per K=2 new frames."""
    monkeypatch.setenv("PUBLIC_URL", "https://wx.example.com/api")
    store.put_animation(animation())
    for tick in range(5):
        runtime.fire("fetch_due_frames", records.due(animation(), T0 + tick * 600))
        runtime.drain()

    state = store.get_animation("temps", consistent=True)
    assert state.frame_count == 7 and state.last_requested == T0 + 4 * 600
    frames = store.newest_frames("temps", 10)
    assert [f.valid_time for f in frames] == [T0 + i * 600 for i in range(4, -3, -1)]
    assert all(set(f.thumbnails) == {"80x60-cover", "32x32-cover"} for f in frames)

    gifs = store.gifs("temps", newest_first=False)
    assert [(g.valid_time, g.status, g.email_status) for g in gifs] == [
        (T0, "done", "sent"),  # the first GIF once N=3 frames exist: the first tick's window
        (T0 + 1200, "done", "sent"),  # then one per K=2 new frames
        (T0 + 2400, "done", "sent"),
    ]
    assert gifs[0].frame_times == (T0 - 1200, T0 - 600, T0)
    assert gifs[2].frame_times == (T0 + 1200, T0 + 1800, T0 + 2400)
    s3 = runtime_client("s3")
    gif = s3.get_object(**gifs[2].location.to_dict())["Body"].read()
    assert gif_frames(gif) == 3

    sent = emulator.sent_emails()
    assert len(sent) == 3 and all(e["destinations"]["ToAddresses"] == ["desk@example.com"] for e in sent)
    gif_link = f"https://wx.example.com/api/animations/temps/gifs/{T0 + 2400}/image"
    [body] = [e["body"] for e in sent if gif_link in e["body"]]  # a link to the route that redirects to the GIF
    assert not any(word in body for word in SIGNED)  # nothing in the email ends with the signer's session
    # the first size of the newest 4 thumbnails, each an image and its link
    assert body.count("32x32-cover") == 0 and body.count("80x60-cover") == 8
    assert f'src="https://wx.example.com/api/animations/temps/frames/{T0 + 2400}/thumbnails/80x60-cover"' in body
    assert_link_redirects_to(gif_link, gif)

    # a run's timeline: the fetch asked for, the frame, its thumbnails, the GIF it triggered, the email
    timeline = [(e.direction, e.type) for e in store.timeline(f"run-temps-{T0 + 2400}")]
    assert timeline[0] == ("out", "please-fetch-amp-image")
    for step in [
        ("in", "did-fetch-amp-image"),
        ("out", "please-create-thumbnail"),
        ("in", "did-create-thumbnail"),
        ("out", "please-create-gif"),
        ("in", "did-create-gif"),
        ("out", "please-send-email"),
        ("in", "did-send-email"),
    ]:
        assert step in timeline, step
    first = {step: timeline.index(step) for step in set(timeline)}
    for cause, effect in [  # each message after the one that caused it
        (("out", "please-fetch-amp-image"), ("in", "did-fetch-amp-image")),
        (("in", "did-fetch-amp-image"), ("out", "please-create-thumbnail")),
        (("out", "please-create-thumbnail"), ("in", "did-create-thumbnail")),
        (("in", "did-fetch-amp-image"), ("out", "please-create-gif")),
        (("out", "please-create-gif"), ("in", "did-create-gif")),
        (("in", "did-create-gif"), ("out", "please-send-email")),
        (("out", "please-send-email"), ("in", "did-send-email")),
    ]:
        assert first[cause] < first[effect], (cause, effect, timeline)


SIGNED = ("X-Amz-Security-Token", "X-Amz-Credential", "X-Amz-Signature")


def assert_link_redirects_to(link: str, data: bytes) -> None:
    """Follow an emailed link through the app's REST routes: 302 to a URL that gives `data`."""
    import urllib.request
    from urllib.parse import urlsplit

    from chalice.test import Client

    from app import app
    from tests.conftest import ROOT

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        response = client.http.get(urlsplit(link).path.removeprefix("/api"))
    assert response.status_code == 302, response.body
    assert urllib.request.urlopen(response.headers["Location"], timeout=10).read() == data


def gif_done(t: int, key: str) -> DidCreateGif:
    return DidCreateGif(image_id="temps", valid_time=t, location=Location(bucket=names().gifs_bucket, key=key))


class TestEmailLinks:
    """service.email_links, with the session credentials the emulator's fake ones are (as Lambda's are)."""

    @pytest.fixture
    def made(self, store, aws, monkeypatch):
        import os

        assert os.environ["AWS_SESSION_TOKEN"]
        monkeypatch.setattr(service, "_warned_no_public_url", False)
        warnings: list[str] = []
        monkeypatch.setattr(service.logger, "warning", lambda text, *a, **k: warnings.append(text))
        store.put_animation(animation())
        for t in (T0, T0 + 600):
            frame = aws.put(names().frames_bucket, f"temps/320x240/{t}.png", b"frame")
            thumb = aws.put(names().thumbnails_bucket, f"temps/80x60-cover/{t}.jpg", f"thumb {t}".encode())
            records.frame(store, "temps", t, Location.from_dict(frame), None)
            records.thumbnail(store, "temps", t, "80x60-cover", Location.from_dict(thumb))
        return warnings

    def test_route_links_under_public_url(self, made, monkeypatch):
        monkeypatch.setenv("PUBLIC_URL", "https://wx.example.com/api/")
        links = service.mediator().email_links(store.get_animation("temps"), gif_done(T0 + 600, "temps/x.gif"))
        assert links.gif == f"https://wx.example.com/api/animations/temps/gifs/{T0 + 600}/image"
        assert links.thumbnails == [
            (t, f"https://wx.example.com/api/animations/temps/frames/{t}/thumbnails/80x60-cover")
            for t in (T0, T0 + 600)
        ]
        assert made == []

    def test_without_public_url_presigned_links_and_one_warning(self, made, aws, monkeypatch):
        import urllib.request

        monkeypatch.delenv("PUBLIC_URL", raising=False)
        aws.put(names().gifs_bucket, "temps/x.gif", b"GIF89a")
        for _ in range(2):
            links = service.mediator().email_links(store.get_animation("temps"), gif_done(T0 + 600, "temps/x.gif"))
        assert all(word in links.gif for word in SIGNED)  # signed with the session: it ends when the session does
        assert urllib.request.urlopen(links.gif, timeout=10).read() == b"GIF89a"
        assert urllib.request.urlopen(links.thumbnails[0][1], timeout=10).read() == f"thumb {T0}".encode()
        assert len(made) == 1 and "PUBLIC_URL" in made[0] and "session" in made[0]


@pytest.mark.heavy
def test_the_hourly_rebuild_catches_up_and_never_builds_a_window_twice(runtime, emulator, source):
    config = animation(every=3)
    store.put_animation(config)
    for tick in range(2):
        runtime.fire("fetch_due_frames", records.due(config, T0 + tick * 600))
        runtime.drain()
    # the window at the first tick (N=3: the first GIF), then a 4th frame: 1 of K=3
    assert [g.valid_time for g in store.gifs("temps")] == [T0]

    runtime.fire("rebuild_gifs", T0 + 3600)
    runtime.drain()
    runtime.fire("rebuild_gifs", T0 + 7200)  # nothing newer: nothing built
    runtime.drain()
    gifs = store.gifs("temps", newest_first=False)
    assert [(g.valid_time, g.reason) for g in gifs] == [(T0, "count"), (T0 + 600, "rebuild")]
    assert len(emulator.sent_emails()) == 2

    for tick in (2, 3, 4):  # the count restarts from the rebuild: K=3 new frames make the next GIF
        runtime.fire("fetch_due_frames", records.due(config, T0 + tick * 600))
        runtime.drain()
    gifs = store.gifs("temps", newest_first=False)
    assert [g.valid_time for g in gifs] == [T0, T0 + 600, T0 + 2400]
    assert gifs[-1].frame_times == (T0 + 1200, T0 + 1800, T0 + 2400)


def test_a_failed_fetch_is_recorded_and_asked_again_while_in_the_window(runtime, source):
    """The source is down: each frame's fetch fails for good (recorded, redrivable) and is asked again
    at the animation's next tick while its time is in the window; when the source is back, the
    window fills and the first GIF comes."""
    config = animation(frames=2, every=2)
    store.put_animation(config)
    working = source.respond
    source.respond = lambda path: Answer(404, b"no such layer", {"Content-Type": "text/plain"})
    runtime.fire("fetch_due_frames", records.due(config, T0))
    runtime.drain()
    fetches = {f.valid_time: f for f in store.fetches("temps")}
    assert sorted(fetches) == [T0 - 600, T0]
    assert all(f.status == "failed" and "answered 404" in f.error for f in fetches.values())
    assert {f.correlation_id for f in store.failures("temps")} == {f"run-temps-{T0 - 600}", f"run-temps-{T0}"}
    assert store.get_animation("temps").frame_count == 0
    assert store.get_animation("temps", consistent=True).failed_slots == ((T0 - 600, 1), (T0, 1))

    runtime.fire("fetch_due_frames", records.due(config, T0 + 600))  # still down
    runtime.drain()
    # T0 asked again (and failed again), T0 + 600 asked and failed; T0 - 600 is out of the window now
    assert store.get_animation("temps", consistent=True).failed_slots == ((T0, 2), (T0 + 600, 1))

    source.respond = working  # back: the window fills, and the first GIF is made of it
    runtime.fire("fetch_due_frames", records.due(config, T0 + 1200))
    runtime.drain()
    state = store.get_animation("temps", consistent=True)
    assert state.failed_slots == () and state.frame_count == 2
    assert [f.valid_time for f in store.newest_frames("temps", 5)] == [T0 + 1200, T0 + 600]
    assert [g.valid_time for g in store.gifs("temps")] == [T0 + 1200]
    assert {f.valid_time for f in store.failures("temps")} == {T0 - 600, T0}  # what never came, kept


def test_every_message_twice_shuffled_by_four_concurrent_mediators(runtime, emulator, monkeypatch):
    """One frame record per validTime, one GIF per window, one email per GIF, no frame lost."""
    store.put_animation(animation(frames=4, every=4, thumbnails=[{"width": 40, "height": 30}]))
    s3 = runtime_client("s3")
    arrivals = []
    for i in range(12):
        t = T0 + i * 600
        key = f"temps/320x240/{t}.png"
        s3.put_object(Bucket=names().frames_bucket, Key=key, Body=encode(radar_frame(i)))
        arrivals.append(
            DidFetchAmpImage(
                image_id="temps",
                valid_time=t,
                location=Location(bucket=names().frames_bucket, key=key),
                correlation_id=f"run-temps-{t}",
                requested_valid_time=t,
            )
        )

    from chalicelib.workers import runner

    send, publish = bus.send_to_mediator, bus.publish
    monkeypatch.setattr(runner, "send_to_mediator", lambda m: [send(m), send(m)][0])  # every reply twice
    monkeypatch.setattr(service, "publish", lambda m: [publish(m), publish(m)][0])  # every request twice
    shuffled = arrivals * 2
    random.Random(7).shuffle(shuffled)
    for message in shuffled:
        send(message)
    runtime.drain(timeout=120)

    state = store.get_animation("temps", consistent=True)
    frames = store.frames("temps", limit=100)
    assert len(frames) == 12 and state.frame_count == 12  # none lost, none counted twice
    assert all(len(f.thumbnails) == 1 for f in frames)
    gifs = store.gifs("temps", limit=100)
    windows = [g.frame_times for g in gifs]
    assert len(windows) == len(set(windows)) >= 1
    assert all(g.status == "done" and g.email_status == "sent" for g in gifs)
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=names().gifs_bucket)["Contents"]) == sorted(
        f"temps/{g.valid_time}.gif" for g in gifs
    )
    sent = emulator.sent_emails()
    assert len(sent) == len(gifs)  # one email per GIF, though each was asked for at least twice
    print(f"{len(shuffled)} arrivals, {len(gifs)} GIFs {windows}, {runtime.stats.count('mediate')} mediator runs")
    assert runtime.stats.count("mediate") >= 3
    assert runtime.dead_letters() == []


def test_an_invalid_message_is_recorded_and_dropped(runtime):
    bus.resend_to_mediator('{"type": "did-nothing"}')  # in a message group of its own, as a worker sends
    bus.resend_to_mediator("not json")
    runtime.drain()
    assert runtime.stats.count("mediate", "error") == 0
    logged = store.timeline("invalid")
    assert len(logged) == 2 and "unknown message type 'did-nothing'" in logged[0].message["error"]
    assert queue_depth(names().dead_letter_queue) == 0


def test_a_passing_error_fails_only_its_record_and_ends_in_the_dead_letter_queue(runtime, monkeypatch):
    store.put_animation(animation())
    handle = service.Mediator.handle

    def flaky(self, message, now, again=False):
        if message.extras.get("poison"):
            raise ConnectionError("the table timed out")
        handle(self, message, now, again)

    monkeypatch.setattr(service.Mediator, "handle", flaky)
    for t, poison in ((T0, True), (T0 + 600, False), (T0 + 1200, False)):
        message = {
            "type": "did-create-thumbnail",
            "imageId": "temps",
            "validTime": t,
            "location": {"Bucket": "b-b", "Key": "k"},
            "poison": poison,
        }
        bus.resend_to_mediator(json.dumps(message))  # each in the animation's message group
    runtime.drain(timeout=60)
    assert runtime.stats.count("mediate", "partial") + runtime.stats.count("mediate", "error") >= 3
    assert queue_depth(names().dead_letter_queue) == 0  # read by its handler, which keeps the letter
    [dead] = store.dead_letters()
    assert dead.message["poison"] is True and "the table timed out" in dead.error
    assert len([e for e in store.timeline("none") if e.type == "did-create-thumbnail"]) == 2


def test_a_failed_record_leaves_the_batch_after_the_done_ones_are_deleted(monkeypatch):
    """Each record on its own; when one fails, the others are deleted from their queue and the
    handler raises, so only the failed one comes back, with or without ReportBatchItemFailures
    (tests/test_batches.py shows both through the runtime)."""
    from chalicelib import batch
    from chalicelib.mediator import handler

    calls, deleted = [], []

    def handle(self, message, now, again=False):
        calls.append(message.valid_time)
        if message.valid_time == 2:
            raise TimeoutError("throttled")

    monkeypatch.setattr(service.Mediator, "handle", handle)
    monkeypatch.setattr(batch, "delete_from_queue", lambda arn, handles: deleted.append((arn, handles)))
    records = [
        {
            "messageId": f"m{i}",
            "receiptHandle": f"r{i}",
            "body": json.dumps(
                {
                    "type": "did-create-thumbnail",
                    "imageId": "temps",
                    "validTime": i,
                    "location": {"Bucket": "b-b", "Key": "k"},
                }
            ),
            "attributes": {},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            "awsRegion": "us-east-1",
        }
        for i in range(1, 5)
    ]
    with pytest.raises(batch.BatchIncomplete, match="1 of 4 records failed"):
        handler.handle_messages({"Records": records})
    assert calls == [1, 2, 3, 4]
    assert deleted == [("arn:aws:sqs:us-east-1:123456789012:q", ["r1", "r3", "r4"])]


def runtime_client(service_name: str):
    from chalicelib.aws import client

    return client(service_name)


def mediator_queue() -> str:
    return runtime_client("sqs").get_queue_url(QueueName=names().mediator_queue)["QueueUrl"]


def queue_depth(name: str) -> int:
    sqs = runtime_client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def test_an_upload_gets_its_thumbnail_through_the_runtime(runtime):
    from tests.images import jpeg

    s3 = runtime_client("s3")
    s3.put_object(Bucket=names().uploads_bucket, Key="photos/grand canyon-300x200.jpg", Body=jpeg(1200, 900))
    s3.put_object(Bucket=names().uploads_bucket, Key="notes.txt", Body=b"not for thumbnails")
    runtime.drain()
    thumbnail = s3.get_object(Bucket=names().thumbnails_bucket, Key="uploads/photos/grand canyon-300x200.jpg")
    assert Image.open(io.BytesIO(thumbnail["Body"].read())).size == (300, 200)
    assert runtime.stats.count("thumbnail_upload", "ok") == 2  # the text file was looked at and skipped
    assert [k["Key"] for k in s3.list_objects_v2(Bucket=names().thumbnails_bucket)["Contents"]] == [
        "uploads/photos/grand canyon-300x200.jpg"
    ]
