"""The local event runtime on its own: event shapes, filters, retries, dead letters, concurrency."""

from __future__ import annotations

import collections
import json
from datetime import datetime, timezone
import threading
import time

import pytest
from chalice import Chalice, Rate

from local.runtime import Runtime


@pytest.fixture
def resources(emulator):
    from chalicelib.aws import client

    emulator.reset()
    client("s3").create_bucket(Bucket="rt-bucket")
    client("sns").create_topic(Name="rt-topic")
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="rt-queue-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(
        QueueName="rt-queue",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )
    return client


def make_app(seen: dict, lock: threading.Lock) -> Chalice:
    app = Chalice(app_name="runtime-test")

    def note(kind, value):
        with lock:
            seen.setdefault(kind, []).append(value)

    @app.on_s3_event(bucket="rt-bucket", prefix="in/", suffix=".png", events=["s3:ObjectCreated:*"])
    def on_upload(event):
        note("s3", (event.bucket, event.key))

    @app.on_sns_message(topic="rt-topic")
    def on_message(event):
        note("sns", event.message)
        if event.message == "poison":
            raise RuntimeError("never works")
        if event.message.startswith("slow"):
            time.sleep(0.4)

    @app.on_sqs_message(queue="rt-queue", batch_size=5)
    def on_batch(event):
        records = list(event)
        note("sqs", [r.body for r in records])
        return {"batchItemFailures": [{"itemIdentifier": r.to_dict()["messageId"]} for r in records if r.body == "bad"]}

    @app.schedule(Rate(5, unit=Rate.MINUTES))
    def every_five(event):
        note("schedule", event.to_dict())

    return app


@pytest.fixture
def rt(resources):
    seen, lock = {}, threading.Lock()
    runtime = Runtime(make_app(seen, lock), workers=4, visibility_timeout=1, async_retries=1, prefix="rt").setup()
    runtime.seen = seen
    yield runtime
    runtime.stop()


def test_s3_notifications_honour_prefix_and_suffix_and_decode_keys(rt, resources):
    s3 = resources("s3")
    for key in ("in/a b.png", "in/skip.jpg", "other/c.png"):
        s3.put_object(Bucket="rt-bucket", Key=key, Body=b"x")
    rt.drain()
    assert rt.seen["s3"] == [("rt-bucket", "in/a b.png")]


def test_sns_messages_arrive_in_lambdas_shape(rt, resources):
    sns = resources("sns")
    arn = sns.create_topic(Name="rt-topic")["TopicArn"]
    sns.publish(TopicArn=arn, Message=json.dumps({"hello": 1}))
    rt.drain()
    assert rt.seen["sns"] == ['{"hello": 1}']


def test_a_handler_that_raises_is_retried_then_dead_lettered(rt, resources):
    sns = resources("sns")
    sns.publish(TopicArn=sns.create_topic(Name="rt-topic")["TopicArn"], Message="poison")
    rt.drain(timeout=30)
    assert rt.seen["sns"] == ["poison", "poison"]  # async_retries = 1: tried twice
    assert rt.stats.count("on_message", "error") == 2
    [dead] = rt.dead_letters()  # Lambda's invocation record, as an on-failure destination gets it
    record = json.loads(dead["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == "poison"
    assert record["responsePayload"] == {"errorMessage": "never works", "errorType": "RuntimeError"}


def test_batch_item_failures_are_honoured(rt, resources):
    sqs = resources("sqs")
    url = sqs.get_queue_url(QueueName="rt-queue")["QueueUrl"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["ok1", "bad", "ok2"])]
    )
    rt.drain(timeout=30)
    delivered = [body for batch in rt.seen["sqs"] for body in batch]
    assert sorted(delivered) == ["bad", "bad", "ok1", "ok2"]  # only the failed record came back
    assert all(len(batch) <= 5 for batch in rt.seen["sqs"])
    assert rt.stats.count("on_batch", "partial") >= 1


def test_handlers_run_concurrently(rt, resources):
    sns = resources("sns")
    arn = sns.create_topic(Name="rt-topic")["TopicArn"]
    for i in range(4):
        sns.publish(TopicArn=arn, Message=f"slow-{i}")
    started = time.perf_counter()
    rt.drain()
    assert sorted(rt.seen["sns"]) == [f"slow-{i}" for i in range(4)]
    assert time.perf_counter() - started < 4 * 0.4  # four 0.4 s handlers, not one after another


def test_an_idle_queue_is_asked_again_when_a_message_arrives_on_it_not_on_another(rt, resources):
    """Started, the runtime's pollers sleep while their queues are empty: a message wakes its own
    queue's poller at once, and the other pollers sleep on through it (up to their longest pause)."""
    from chalicelib.aws import client
    from local.runtime import IDLE_POLL_MAX
    from local.stack import wait_for

    asked: collections.Counter[str] = collections.Counter()
    sqs, sns = client("sqs"), resources("sns")

    def count(params, **_):
        asked[params["QueueUrl"].rsplit("/", 1)[-1]] += 1

    sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", count, unique_id="idle-test")
    try:
        rt.start(schedules=False)
        time.sleep(1.5)  # every poller idle, at its longest pause
        asked.clear()
        arn = sns.create_topic(Name="rt-topic")["TopicArn"]
        started = time.perf_counter()
        for i in range(20):
            sns.publish(TopicArn=arn, Message=f"m-{i}")
            time.sleep(0.05)
        assert wait_for(lambda: len(rt.seen.get("sns", [])) == 20, timeout=10, every=0.05)
        took = time.perf_counter() - started
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.ReceiveMessage", unique_id="idle-test")
    assert asked["rt-queue"] <= took / IDLE_POLL_MAX + 1, asked  # its own pauses, not a poll a message
    assert asked["rt-on_message"] >= 10, asked  # woken by its messages, most of them one by one


def test_a_failed_message_is_asked_for_when_its_visibility_timeout_ends_not_on_a_timer(resources):
    """The emulator in this process tells when a received message becomes visible again: a poller
    asks for a failed message as its visibility timeout of 3 s ends (its doubling pauses alone
    would ask at about 5 s), while an idle queue's poller, its pause grown long, asks little."""
    from chalicelib.aws import client
    from local.runtime import IDLE_POLL_TOLD_MAX

    seen, lock = {}, threading.Lock()
    runtime = Runtime(make_app(seen, lock), workers=2, visibility_timeout=3, async_retries=1, prefix="rt").setup()
    asked: collections.Counter[str] = collections.Counter()
    sqs, sns = client("sqs"), resources("sns")
    count = lambda params, **_: asked.update([params["QueueUrl"].rsplit("/", 1)[-1]])  # noqa: E731
    sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", count, unique_id="due-test")
    tried: list[float] = []
    plain = runtime._invoke

    def invoke(source, event, records):
        if source.name == "on_message":
            tried.append(time.monotonic())
        return plain(source, event, records)

    runtime._invoke = invoke
    try:
        runtime.start(schedules=False)
        time.sleep(2.6)  # the idle pollers' pauses, doubling from 10 ms, past a second
        asked.clear()
        sns.publish(TopicArn=sns.create_topic(Name="rt-topic")["TopicArn"], Message="poison")
        deadline = time.monotonic() + 10
        while len(tried) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runtime.stop()
        sqs.meta.events.unregister("before-parameter-build.sqs.ReceiveMessage", unique_id="due-test")
    assert IDLE_POLL_TOLD_MAX > 3
    # the tries' starts: each a little after its receive, which the 3 s are counted from
    assert len(tried) == 2 and 2.8 <= tried[1] - tried[0] < 4.5, tried  # doubling pauses alone: 5.1 s
    assert asked["rt-queue"] <= 3, asked  # over 3 s: not two asks a second


def test_drain_asks_a_queue_found_empty_again_only_when_a_message_arrives_on_it(rt, resources):
    """While one queue's messages are delivered round after round, drain does not ask a queue it
    found empty again until something arrives on it; when something does, it is delivered."""
    from chalicelib.aws import client

    asked: collections.Counter[str] = collections.Counter()
    sqs, sns = client("sqs"), resources("sns")
    count = lambda params, **_: asked.update([params["QueueUrl"].rsplit("/", 1)[-1]])  # noqa: E731
    sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", count, unique_id="drain-test")
    try:
        arn = sns.create_topic(Name="rt-topic")["TopicArn"]
        for i in range(12):  # 12 one-message batches, 4 a round: at least 3 rounds
            sns.publish(TopicArn=arn, Message=f"m-{i}")
        rt.drain()
        assert len(rt.seen["sns"]) == 12 and asked["rt-on_message"] >= 4
        assert asked["rt-queue"] == 1, asked  # found empty once, and nothing arrived on it
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="rt-queue")["QueueUrl"], MessageBody="late")
        rt.drain()
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.ReceiveMessage", unique_id="drain-test")
    assert rt.seen["sqs"] == [["late"]] and asked["rt-queue"] == 3  # asked again, delivered, found empty


def test_schedules_fire_with_the_simulated_time(rt):
    rt.set_clock(1_700_000_000)
    rt.fire("every_five", 1_700_000_300)
    [event] = rt.seen["schedule"]
    assert event["detail-type"] == "Scheduled Event" and event["time"] == "2023-11-14T22:18:20Z"


def test_schedules_run_fast_on_a_timer(rt):
    rt.speed = 600  # 5 minutes every half second
    rt.set_clock(time.time(), until=time.time() + 3 * 300 + 100)
    rt.start()
    time.sleep(2.5)
    times = [e["time"] for e in rt.seen.get("schedule", [])]
    assert len(times) == 3 and len(set(times)) == 3  # each due time once, none past `until`


def test_schedules_count_from_the_clock_start_however_late_they_start(rt):
    # A demo's last tick falls on its newest frame's time, and `until` can be only seconds after it:
    # had the ticks counted from when the runtime started, they would drift past `until`.
    rt.speed = 600
    start = 1_700_000_000 - 1_700_000_000 % 300
    rt.set_clock(start, until=start + 3 * 300)
    time.sleep(0.2)  # 120 simulated seconds pass before the schedules start
    rt.start()
    time.sleep(2.5)
    times = [e["time"] for e in rt.seen.get("schedule", [])]
    expected = [datetime.fromtimestamp(start + k * 300, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") for k in (1, 2, 3)]
    assert times == expected
