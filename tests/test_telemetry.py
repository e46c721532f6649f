"""Metrics and usage of an invocation (chalicelib.telemetry) and their prices (chalicelib.costs)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import costs, telemetry
from chalicelib.threads import in_context
from local.metrics import metric_data

REAL_TIME = time.time


@pytest.fixture
def emitted(monkeypatch):
    documents: list[dict] = []
    monkeypatch.setattr(telemetry, "SINK", documents.append)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "weathergif")  # as .chalice/config.json sets it
    return documents


class Context:
    memory_limit_in_mb = "1024"


def test_an_invocation_emits_its_metrics_with_exactly_the_alarms_dimensions(emitted):
    with telemetry.invocation("create_gif", Context()) as meter:
        telemetry.add("FramesPerGif", 24)
        meter.bytes_in, meter.bytes_out = 1000, 200
    [document] = emitted
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "weathergif"
    assert directive["Dimensions"] == [["Stage", "Function"]]  # no "service": alarms match whole sets
    assert (document["Stage"], document["Function"]) == ("dev", "create_gif")
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {"FramesPerGif": "Count", "Duration": "Milliseconds", "BytesIn": "Bytes", "BytesOut": "Bytes"}
    assert document["FramesPerGif"] == [24.0] and document["BytesIn"] == [1000.0]
    assert meter.memory_mb == 1024


def test_a_failure_is_counted_by_its_reason_and_the_error_still_raises(emitted):
    with pytest.raises(TimeoutError), telemetry.invocation("fetch_amp_image"):
        telemetry.failed("SourceError")
        raise TimeoutError("slow")
    durations, *failures = emitted
    assert "Duration" in durations
    reasons = {doc["Reason"]: doc["Failures"] for doc in failures}
    assert reasons == {"SourceError": [1.0], "TimeoutError": [1.0]}
    assert all(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Function", "Reason"]] for doc in failures
    )


def test_outside_an_invocation_nothing_is_metered(emitted):
    telemetry.add("FrameAge", 5)
    telemetry.failed("X")
    assert telemetry.current() is None and emitted == []


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="Durations"), telemetry.invocation("tick") as meter:
        meter.add("Durations", 1)


def test_threads_working_for_an_invocation_are_metered_with_it_and_not_with_another(emitted):
    barrier = threading.Barrier(2)

    def invocation(name: str) -> telemetry.Meter:
        with telemetry.invocation(name) as meter:
            barrier.wait()  # both invocations at once, in one process
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(in_context(lambda _: telemetry.current().count("s3.read")), range(6)))
        return meter

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(invocation, ["create_gif", "create_thumbnail"])
    assert first.requests == {"s3.read": 6} and second.requests == {"s3.read": 6}


def test_usage_since_a_mark_and_the_sends_to_come():
    with telemetry.invocation("mediate", Context()) as meter:
        meter.count("dynamodb.read", 0.5)
        mark = meter.mark()
        meter.count("dynamodb.write", 2)
        meter.count("sns")
        usage = meter.usage(since=mark, extra={"sqs": 1})
    assert usage["function"] == "mediate" and usage["memoryMb"] == 1024
    assert usage["requests"] == {"dynamodb.write": 2, "sns": 1, "sqs": 1}


def test_a_value_about_an_animation_is_a_document_of_its_own_with_the_same_dimensions(emitted):
    with telemetry.invocation("mediate"):
        telemetry.add("FrameAge", 300, imageId="kansas")
        telemetry.add("FrameAge", 60, imageId="tulsa")
    durations, *ages = emitted
    assert "FrameAge" not in durations
    assert [(doc["imageId"], doc["FrameAge"]) for doc in ages] == [("kansas", [300.0]), ("tulsa", [60.0])]
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage", "Function"]] for doc in ages)


def test_the_embedded_metric_format_becomes_cloudwatch_metric_data(emitted):
    with telemetry.invocation("create_thumbnail"):
        telemetry.add("FrameAge", 30)
        telemetry.add("FrameAge", 90)
    data = metric_data(emitted[0])
    ages = [datum for namespace, datum in data if datum["MetricName"] == "FrameAge"]
    assert [a["Value"] for a in ages] == [30.0, 90.0] and ages[0]["Unit"] == "Seconds"
    assert ages[0]["Dimensions"] == [
        {"Name": "Stage", "Value": "dev"},
        {"Name": "Function", "Value": "create_thumbnail"},
    ]
    assert {namespace for namespace, _ in data} == {"weathergif"}


def test_prices_of_recorded_usage():
    usages = [
        {"function": "create_gif", "ms": 2000, "memoryMb": 1024, "requests": {"s3.read": 24, "s3.write": 1, "sqs": 1}},
        {"function": "mediate", "ms": 100, "memoryMb": 512, "requests": {"dynamodb.write": 4}, "invocations": 0.5},
        {"function": "mediate", "ms": 100, "memoryMb": 512, "requests": {"sns": 1, "unknown.kind": 9}},
    ]
    priced = costs.price([costs.increments(usages), costs.increments(usages[:1])])  # two days
    gif = priced["byFunction"]["create_gif"]
    assert gif == {
        "invocations": 2,
        "ms": 4000,
        "gbSeconds": 4.0,
        "usd": pytest.approx(4.0 * 0.0000166667 + 2 * 0.2e-6),
    }
    assert priced["byFunction"]["mediate"]["invocations"] == 1.5
    assert priced["byFunction"]["mediate"]["gbSeconds"] == pytest.approx(0.2 * 0.5, abs=1e-3)
    assert priced["requests"] == {"dynamodb.write": 4, "s3.read": 48, "s3.write": 2, "sns": 1, "sqs": 2}
    assert priced["byService"]["s3"] == pytest.approx(48 * 0.0004 / 1000 + 2 * 0.005 / 1000)
    assert priced["byService"]["dynamodb"] == pytest.approx(4 * 0.625e-6)
    assert priced["usd"] == pytest.approx(sum(priced["byService"].values()))


def test_nothing_recorded_costs_nothing():
    assert costs.price([]) == {"usd": 0.0, "byService": {"lambda": 0.0}, "byFunction": {}, "requests": {}}


# What a message costs, recorded with its decision (chalicelib/mediator/metering.py) ------------

WORKER = {"function": "create_thumbnail", "ms": 40, "memoryMb": 1024, "requests": {"s3.read": 1, "sqs": 1}}


@pytest.fixture
def ledger(monkeypatch, emitted):
    from chalicelib.mediator import metering

    fresh = metering.Ledger()
    written: list[dict] = []
    monkeypatch.setattr(metering, "LEDGER", fresh)
    monkeypatch.setattr(metering.store, "add_usage", lambda owed, now: written.append(owed) or len(owed))
    return fresh, written


def test_a_message_is_charged_to_its_animation_with_its_decision_once(ledger):
    from chalicelib.mediator import metering

    owed, written = ledger
    with metering.metered("mediate", Context(), records=2) as meter:
        with metering.message("k", [WORKER]):
            meter.count("dynamodb.read", 1)  # its GetItem, before the decision
            charge = metering.for_decision("k", sends=12)
            assert charge is not None and charge.image_id == "k"
            worker, own = charge.usages
            assert worker == WORKER
            assert own["function"] == "mediate" and own["requests"] == {"dynamodb.read": 1, "sns": 2}  # 10 a call
            assert own["invocations"] == 0.5 and own["memoryMb"] == 1024  # half of a batch of two
            own["requests"]["dynamodb.write"] = 4  # the store adds its transaction's units, estimated
            metering.recorded(charge)
            meter.count("dynamodb.write", 4)  # which it then consumes: not counted again
            meter.count("sns", 2)
            assert metering.for_decision("k") is None  # one record per message
        with metering.message("k", [WORKER]):  # the same answer again: its decision was made before
            meter.count("dynamodb.read", 1)
    [rest] = owed.due(time.time(), force=True)
    assert rest["function"] == "mediate" and rest["invocations"] == 0.5  # the duplicate's half, shared
    assert rest["requests"] == {"dynamodb.read": 1}  # and its read; the worker's usage not again
    assert written == []  # nothing due yet: the ledger waits a minute


def test_a_message_that_names_no_animation_is_charged_to_the_one_its_decision_is_about(ledger):
    from chalicelib.mediator import metering

    with metering.metered("mediate", Context(), records=1):
        with metering.message(None, [WORKER]):  # a did-fail: its failure is recorded against "k"
            charge = metering.for_decision("k")
            assert charge is not None and charge.image_id == "k" and charge.usages[0] == WORKER
        with metering.message(None, [WORKER]):  # an upload's thumbnail: about no animation
            assert metering.for_decision(None) is None


def test_what_is_owed_is_written_when_the_oldest_owing_is_a_minute_old(ledger, monkeypatch):
    from chalicelib.mediator import metering

    owed, written = ledger
    with metering.metered("tick", Context()) as meter:  # a tick slice: shared work
        meter.count("dynamodb.read", 2)
    assert written == []  # not yet due
    monkeypatch.setattr(metering.time, "time", lambda: REAL_TIME() + metering.FLUSH_SECONDS + 1)
    assert metering.flush() == 1
    [[shared]] = [batch[metering.SHARED] for batch in written]
    assert shared["function"] == "tick" and shared["invocations"] == 1.0
    assert shared["requests"] == {"dynamodb.read": 2}
    assert metering.flush(force=True) == 0  # nothing left


def test_a_reply_whose_usage_is_no_valid_one_keeps_its_answer_and_drops_the_usage():
    from chalicelib.messages import parse

    reply = {"type": "did-create-thumbnail", "imageId": "a", "validTime": 1, "location": {"Bucket": "abc", "Key": "k"}}
    good = {"function": "create_thumbnail", "ms": 3, "memoryMb": 1024, "requests": {"s3.read": 1}}
    assert parse({**reply, "usage": good}).usage is not None
    for bad in (
        {**good, "requests": {"s3.read": float("nan")}},
        {**good, "requests": {"s3.read": 1e300}},
        {**good, "requests": {"s3.read": -1}},
        {**good, "requests": {"made-up": 1}},
        {**good, "function": "x" * 40},  # a function no worker is: every new name would grow the record
        "usage",
    ):
        parsed = parse({**reply, "usage": bad})
        assert parsed.usage is None and parsed.location.key == "k"
