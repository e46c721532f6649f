"""The mediator loses no record of a batch, whether or not its SQS event source mapping
has ReportBatchItemFailures (post-deploy switches it on; a plain `chalice deploy` does not).

Lambda's rules, as the local runtime follows them: with ReportBatchItemFailures only the
records the handler names come back; without it, Lambda deletes the whole batch when the
handler returns, whatever it returns; a handler that raises leaves the whole batch.
"""

from __future__ import annotations

import json

import pytest

from chalicelib.aws import client
from chalicelib import batch
from chalicelib.mediator import handler, service, store
from chalicelib.mediator.animation import Animation
from chalicelib.settings import names

T0 = 1_700_000_400


@pytest.fixture(params=[True, False], ids=["with-ReportBatchItemFailures", "without-it"])
def runtime(request, emulator):
    from local.provision import provision
    from local.runtime import Runtime

    from app import app

    emulator.reset()
    provision(visibility_timeout=1, max_receives=3)
    rt = Runtime(app, workers=2, visibility_timeout=1, report_batch_item_failures=request.param)
    yield rt.setup()
    rt.stop()


def test_a_failing_record_comes_back_and_the_good_ones_are_applied_once(runtime, monkeypatch):
    store.put_animation(
        Animation(image_id="temps", layers=["radar"], width=32, height=24, center="tulsa,ok", zoom=4, frames=3)
    )
    handle = service.Mediator.handle

    def flaky(self, message, now, again=False):
        if message.extras.get("poison"):
            raise ConnectionError("the table timed out")
        handle(self, message, now, again)

    monkeypatch.setattr(service.Mediator, "handle", flaky)
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName=names().mediator_queue)["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {
                "Id": str(i),
                "MessageGroupId": "temps",  # the animation's message group, as the workers send
                "MessageDeduplicationId": str(i),
                "MessageBody": json.dumps(
                    {
                        "type": "did-fetch-amp-image",
                        "imageId": "temps",
                        "validTime": T0 + 600 * i,
                        "poison": i == 0,
                        "location": {"Bucket": names().frames_bucket, "Key": f"temps/32x24/{T0 + 600 * i}.png"},
                        "correlationId": f"run-{i}",
                    }
                ),
            }
            for i in range(3)
        ],
    )
    batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert len(batch) == 3

    runtime._deliver(runtime.source("mediate"), batch)  # one invocation, as Lambda makes it

    assert runtime.stats.count("mediate", "error") == 1  # the handler raised: some records failed
    assert [f.valid_time for f in store.newest_frames("temps", 10)] == [T0 + 1200, T0 + 600]
    runtime.drain(timeout=30)  # the failed record comes back until the receive limit
    assert store.get_animation("temps", consistent=True).frame_count == 2
    for good in ("run-1", "run-2"):  # applied once: one arrival each in the event log
        assert [e.direction for e in store.timeline(good)] == ["in"]
    [dead] = store.dead_letters()  # not lost: in the dead-letter queue, then kept by its handler
    assert dead.message["poison"] is True and dead.error == "ConnectionError: the table timed out"


def test_a_batch_that_passes_returns_no_failures_and_deletes_nothing_itself(runtime, monkeypatch):
    deleted = []
    monkeypatch.setattr(batch, "delete_from_queue", lambda arn, handles: deleted.append(handles))
    monkeypatch.setattr(service.Mediator, "handle", lambda self, message, now, again=False: None)
    record = {
        "messageId": "m1",
        "receiptHandle": "r1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "body": json.dumps(
            {
                "type": "did-create-thumbnail",
                "imageId": "temps",
                "validTime": 1,
                "location": {"Bucket": "b-b", "Key": "k"},
            }
        ),
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    }
    assert handler.handle_messages({"Records": [record]}) == {"batchItemFailures": []}
    assert deleted == []


def test_publish_and_send_batches_hold_10_entries_and_256_kib():
    from chalicelib.aws.batches import MAX_BYTES, chunks

    assert chunks([1] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    big = MAX_BYTES // 3
    assert chunks([big, big, big, big, 5]) == [[0, 1, 2], [3, 4]]  # never over 256 KiB a call
    assert chunks([MAX_BYTES + 1]) == [[0]]  # one too big goes alone (and SQS or SNS refuses it)
    assert chunks([]) == []
