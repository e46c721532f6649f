"""The embedded AWS emulation's HTTP side (local/emulator.py): connections kept open between calls,
headers as sent."""

from __future__ import annotations

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


def test_an_emulator_on_a_port_in_use_says_so(emulator):
    from local.emulator import Emulator

    port = int(emulator.endpoint.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        Emulator(port=port).start()
