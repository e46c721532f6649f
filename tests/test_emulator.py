"""The embedded AWS emulation (local/emulator.py) where it differs from moto's own: connections kept
open between calls, headers as sent, queues' clock and deduplication as SQS's."""

from __future__ import annotations

import json

import boto3
import pytest


def client(emulator, service: str):
    return boto3.client(service, endpoint_url=emulator.endpoint, region_name="us-east-1")


def test_calls_of_one_client_share_one_connection(emulator):
    """As AWS's endpoints do, the emulator keeps a connection open after its answer: ten calls, one
    connection, open after each (moto's own server closed each, so each call opened a new one)."""
    sqs = client(emulator, "sqs")
    open_after = []
    for _ in range(10):
        answer = sqs.list_queues()
        [pool] = sqs._endpoint.http_session._manager.pools._container.values()
        open_after.append({conn.sock.getsockname() for conn in pool.pool.queue if conn is not None and conn.sock})
    assert answer["ResponseMetadata"]["HTTPHeaders"].get("connection") != "close"
    assert len(open_after[0]) == 1 and open_after == open_after[:1] * 10, open_after


def test_s3_metadata_named_with_an_underscore_keeps_its_name(emulator):
    """S3 keeps `x-amz-meta-valid_time` as sent (the fetcher writes such names); WSGI folds `_` and
    `-` together, so the server hands moto the name as sent."""
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="emulator-headers")
    metadata = {"valid_time": "1700000000", "layer-name": "radar", "run_time": "0"}
    s3.put_object(Bucket="emulator-headers", Key="k", Body=b"x", Metadata=metadata)
    assert s3.head_object(Bucket="emulator-headers", Key="k")["Metadata"] == metadata


def test_queues_keep_time_by_the_clock_whatever_the_app_patches(emulator, monkeypatch):
    """A message's delay and visibility, and a queue's counts, follow the clock (local/emulator.py
    reads it without a datetime per message), and not a `time.time` a test has moved an hour on."""
    import time

    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="emulator-clock")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=2)  # 2 s: room for a slow step
    sqs.send_message(QueueUrl=url, MessageBody="now")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    counts = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]

    def count() -> list[int]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counts)["Attributes"]
        return [int(attributes[name]) for name in counts]

    assert count() == [1, 0, 1]
    [got] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"]
    assert got["Body"] == "now" and count() == [0, 1, 1]
    time.sleep(2.1)
    assert count() == [2, 0, 0]  # the delay and the visibility timeout are over: both to receive
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]}
    assert bodies == {"now", "late"}


def fifo(sqs, name: str, **attributes: str) -> str:
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true", **attributes})["QueueUrl"]


def drained(sqs, url: str) -> list[str]:
    """The bodies a queue hands out now, each deleted once received."""
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [message["Body"] for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


@pytest.mark.parametrize("scope", ["queue", "messageGroup"])
def test_a_fifo_queue_drops_a_deduplication_id_it_took_in_five_minutes_even_once_deleted(emulator, scope):
    """SQS's deduplication interval: a message sent with an id the queue took in the last five
    minutes is taken and not delivered, though the first was received and deleted (moto 5.2.5
    compared only with messages still in the queue); in the queue's scope, or each group's."""
    sqs = client(emulator, "sqs")
    url = fifo(sqs, f"emulator-dedup-{scope}", DeduplicationScope=scope)
    sent = sqs.send_message(QueueUrl=url, MessageBody="first", MessageGroupId="a", MessageDeduplicationId="d")
    assert drained(sqs, url) == ["first"]
    again = sqs.send_message(QueueUrl=url, MessageBody="again", MessageGroupId="a", MessageDeduplicationId="d")
    assert again["MessageId"] and sent["MessageId"]  # taken: SendMessage answers as for any other
    sqs.send_message(QueueUrl=url, MessageBody="other group", MessageGroupId="b", MessageDeduplicationId="d")
    sqs.send_message(QueueUrl=url, MessageBody="other id", MessageGroupId="a", MessageDeduplicationId="e")
    assert drained(sqs, url) == (["other group", "other id"] if scope == "messageGroup" else ["other id"])


def test_messages_moved_to_a_dead_letter_queue_are_not_deduplicated_there(emulator):
    """Two messages of one deduplication id in two groups (a messageGroup scope) that fail both
    reach the dead-letter queue: a move there is not a send."""
    sqs = client(emulator, "sqs")
    dlq = fifo(sqs, "emulator-dedup-dlq")
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    url = fifo(sqs, "emulator-dedup-main", DeduplicationScope="messageGroup", RedrivePolicy=redrive)
    for group in ("a", "b"):
        sqs.send_message(QueueUrl=url, MessageBody=group, MessageGroupId=group, MessageDeduplicationId="d")
    for _ in range(2):  # received once and not deleted, each is seen again at once: moved instead
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert sorted(drained(sqs, dlq)) == ["a", "b"] and drained(sqs, url) == []


def test_a_waiter_wakes_when_a_message_becomes_visible_though_none_was_due_when_it_began():
    """An idle poller's wait (local/emulator.Arrivals) ends when a message on its queue becomes
    visible, also when nothing on that queue was due when the wait began; and at its timeout."""
    import threading
    import time

    from local.emulator import Arrivals

    arrivals = Arrivals()
    seen, asked = arrivals.seen("q"), arrivals.clock()
    threading.Timer(0.05, lambda: arrivals.due("q", arrivals.clock() + 0.1)).start()
    started = time.monotonic()
    assert arrivals.wait("q", seen, 5, since=asked) is True
    assert time.monotonic() - started < 1
    assert arrivals.wait("q", seen, 0.05, since=arrivals.clock()) is False  # nothing more: the timeout


def test_an_emulator_on_a_port_in_use_says_so(emulator):
    from local.emulator import Emulator

    port = int(emulator.endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        Emulator(port=port).start()
