"""Metrics and usage of an invocation (chalicelib.telemetry) and their prices (chalicelib.costs)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import costs, telemetry
from local.metrics import metric_data


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
    telemetry.charge("a", None)
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
                list(pool.map(telemetry.in_context(lambda _: telemetry.current().count("s3.read")), range(6)))
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
