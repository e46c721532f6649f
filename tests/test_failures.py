"""Nothing is lost silently: a worker's event that fails every attempt reaches the mediator as a
did-fail of its frame or GIF (through Lambda's on-failure destination, as the runtime does it),
is recorded with its request, and can be redriven; dead letters are kept and redriven."""

from __future__ import annotations

import json

import pytest

from chalicelib.aws import objects
from chalicelib.messages import DidFail, DidFetchAmpImage
from chalicelib.mediator import service, store
from chalicelib.mediator.animation import Animation
from chalicelib.settings import names
from chalicelib.workers import failures, fetcher
from chalicelib.workers.runner import reply
from tests.images import encode, radar_frame

T0 = 1_700_000_400


def invocation(function: str, payload: dict, error: str = "source down", kind: str = "ConnectionError") -> dict:
    """Lambda's on-failure invocation record (developer guide, "Capturing records of asynchronous invocations")."""
    return {
        "version": "1.0",
        "timestamp": "2026-12-01T12:00:00.000Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{function}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error, "errorType": kind, "stackTrace": []},
    }


def sns(message: dict) -> dict:
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}


class TestInvocationRecords:
    def test_an_sns_workers_record_is_its_did_fail_with_the_request(self):
        request = {
            "type": "please-create-gif",
            "imageId": "temps",
            "validTime": T0,
            "correlationId": "run-1",
            "locations": [{"Bucket": "b-b", "Key": "k"}],
        }
        failed = failures.did_fail(invocation("weathergif-prod-eu-create_gif", sns(request)))
        assert isinstance(failed, DidFail) and failed.type == "did-fail-create-gif"
        assert failed.request == request and failed.correlation_id == "run-1" and failed.extras == {}
        assert failed.error == "RetriesExhausted after 3 attempts: ConnectionError: source down"
        assert failed.error_type == "ConnectionError"

    def test_an_uploads_record_names_the_upload(self):
        s3 = {"Records": [{"s3": {"bucket": {"name": "up"}, "object": {"key": "my+canyon-400x400.jpg"}}}]}
        failed = failures.did_fail(invocation("weathergif-dev-thumbnail_upload", s3))
        assert failed.type == "did-fail-create-thumbnail"
        assert failed.request == {"source": {"Bucket": "up", "Key": "my canyon-400x400.jpg"}}

    @pytest.mark.parametrize(
        "record",
        [
            {"hello": 1},
            [],
            "text",
            invocation("weathergif-dev-mediate", sns({})),  # not a worker
            {**invocation("weathergif-dev-create_gif", sns({})), "requestPayload": {"Records": []}},
        ],
    )
    def test_anything_else_is_no_invocation_record(self, record):
        with pytest.raises((ValueError, KeyError, IndexError, TypeError)):
            failures.did_fail(record)


def test_a_fetch_that_fails_every_attempt_is_recorded_and_redriven(runtime, monkeypatch):
    store.put_animation(
        Animation(
            image_id="temps", layers=["radar"], width=64, height=48, center="tulsa,ok", zoom=4, interval=60, frames=2
        )
    )  # a one-minute interval: every tick is its time; its first asks for its window of two frames

    def down(request):
        raise ConnectionError("the source did not answer")

    monkeypatch.setattr(fetcher, "WORKER", fetcher.WORKER._replace(work=down))
    runtime.fire("fetch_due_frames", T0)
    runtime.drain(timeout=60)

    assert runtime.stats.count("fetch_amp_image", "error") == 2 * 3  # each once, then Lambda's two retries
    assert runtime.stats.count("worker_failed", "ok") >= 1
    assert {fetch.status for fetch in store.fetches("temps")} == {"failed"}
    failures = {failure.valid_time: failure for failure in store.failures("temps")}
    assert sorted(failures) == [T0 - 60, T0]
    failure = failures[T0]
    assert failure.action == "fetch-amp-image" and failure.correlation_id == f"run-temps-{T0}"
    assert failure.error == "RetriesExhausted after 3 attempts: ConnectionError: the source did not answer"
    assert failure.request["type"] == "please-fetch-amp-image" and failure.request["validTime"] == T0

    def up(request):  # the source answers again
        location = objects().put(
            names().frames_bucket, f"temps/64x48/{request.valid_time}.png", encode(radar_frame(0, 64, 48)), "image/png"
        )
        return reply(
            DidFetchAmpImage, request, image_id=request.image_id, valid_time=request.valid_time, location=location
        )

    monkeypatch.setattr(fetcher, "WORKER", fetcher.WORKER._replace(work=up))
    assert service.redrive_failures("temps") == {"redriven": 2, "kept": 0}
    runtime.drain(timeout=60)
    assert store.failures("temps") == [] and store.get_animation("temps", consistent=True).frame_count == 2
    assert {fetch.status for fetch in store.fetches("temps")} == {"done"}


def test_a_gif_that_fails_every_attempt_marks_its_gif_failed(runtime, monkeypatch):
    from chalicelib.workers import gifmaker

    store.put_animation(
        Animation(
            image_id="temps", layers=["radar"], width=64, height=48, center="tulsa,ok", zoom=4, interval=600, frames=2
        )
    )
    for i in range(2):
        t = T0 + 600 * i
        location = objects().put(
            names().frames_bucket, f"temps/64x48/{t}.png", encode(radar_frame(i, 64, 48)), "image/png"
        )
        service.handle(DidFetchAmpImage(image_id="temps", valid_time=t, location=location), T0 + 1200)

    def broken(request):
        raise MemoryError("out of memory")

    monkeypatch.setattr(gifmaker, "WORKER", gifmaker.WORKER._replace(work=broken))
    runtime.drain(timeout=60)
    [gif] = store.gifs("temps")
    assert gif.status == "failed"
    [failure] = store.failures("temps")
    assert failure.action == "create-gif" and "MemoryError: out of memory" in failure.error


def test_dead_letters_are_kept_and_redriven_once(runtime):
    from chalicelib.aws import client

    sqs = client("sqs")
    dead_letter_queue = sqs.get_queue_url(QueueName=names().dead_letter_queue)["QueueUrl"]
    sqs.send_message(  # a FIFO queue, as the mediator's is
        QueueUrl=dead_letter_queue,
        MessageBody='{"type": "did-create-gif", "poison": 1}',
        MessageGroupId="temps",
        MessageDeduplicationId="poison",
    )
    runtime.drain()
    [letter] = store.dead_letters()
    assert letter.message == {"type": "did-create-gif", "poison": 1} and letter.sent_at > 0
    assert service.redrive_dead_letters() == 1
    assert store.dead_letters() == [] and service.redrive_dead_letters() == 0
    runtime.drain()  # back on the mediator's queue: invalid, so recorded and dropped this time
    assert "did-create-gif" in store.timeline("invalid")[0].message["body"]


def test_a_did_fail_stays_small_whatever_its_request():
    from chalicelib.messages import MAX_REQUEST_COPY, failure

    huge = {
        "type": "please-create-gif",
        "imageId": "temps",
        "validTime": T0,
        "locations": ["x" * 100] * 3000,
        "correlationId": "run-9",
        "note": "y" * 5000,
    }
    reply = failure("create-gif", "too big", huge, extras={"note": huge["note"]}, correlation_id="run-9")
    assert len(reply.to_json()) < MAX_REQUEST_COPY
    assert reply.request["imageId"] == "temps" and reply.request["validTime"] == T0 and "truncated" in reply.request
    assert reply.correlation_id == "run-9" and reply.extras == {}  # a long extra is not passed on


def test_each_thumbnail_size_of_a_frame_fails_on_its_own(aws, monkeypatch):
    """Two sizes of one frame fail: two failures, both redriven (the label tells them apart)."""
    published = []
    monkeypatch.setattr(service, "publish", lambda messages: published.extend(messages) or [])
    store.put_animation(Animation(image_id="temps", layers=["radar"], width=64, height=48, center="tulsa,ok", zoom=4))
    for width, height in ((20, 15), (40, 30)):
        request = {
            "type": "please-create-thumbnail",
            "imageId": "temps",
            "validTime": T0,
            "width": width,
            "height": height,
            "location": {"Bucket": "b-b", "Key": "k"},
        }
        service.handle(DidFail(type="did-fail-create-thumbnail", error="out of memory", request=request), T0)
    assert sorted(f.detail for f in store.failures("temps")) == ["20x15-cover", "40x30-cover"]
    assert service.redrive_failures("temps") == {"redriven": 2, "kept": 0}
    assert sorted(m.width for m in published) == [20, 40]


def test_a_failure_that_names_no_animation_is_kept_and_shown(aws):
    upload = {"source": {"Bucket": "u-p", "Key": "canyon-400x400.jpg"}}
    for error in ("one", "two", "two"):  # distinct failures each kept; the same one twice, once
        service.handle(DidFail(type="did-fail-create-thumbnail", error=error, request=upload), T0)
    kept = store.failures("-unattributed")
    assert sorted(f.error for f in kept) == ["one", "two"] and all(f.request == upload for f in kept)
