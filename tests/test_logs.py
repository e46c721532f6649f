"""The app's log lines: each once, and each with its own invocation's correlation id, however many
invocations log at once and whatever threads work for them."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.images import encode, radar_frame
from tests.mapsource import FETCH, Answer, MapSource


class Lines(logging.Handler):
    """The app's lines as its handler prints them (Powertools' JSON), with the thread that logged each."""

    def __init__(self, formatter: logging.Formatter):
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[tuple[str, dict[str, Any]]] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        line = json.loads(self.format(record))
        with self.guard:
            self.lines.append((record.threadName, line))


@pytest.fixture
def lines():
    from chalicelib.log import logger

    handler = Lines(logger.registered_handler.formatter)
    level = logger.log_level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.setLevel(level)
    logger.removeHandler(handler)


@pytest.fixture
def source(monkeypatch):
    server = MapSource()
    monkeypatch.setenv("MAP_URL_TEMPLATE", server.template)
    monkeypatch.setenv("MAP_CLIENT_ID", "id-7f3a")
    monkeypatch.setenv("MAP_CLIENT_SECRET", "secret-9c2b")
    monkeypatch.setenv("FETCH_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("FETCH_ALLOWED_NETWORKS", "127.0.0.1")
    server.start()
    yield server
    server.stop()


def sqs_event(body: str, message_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"r-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:weathergif-dev-mediator",
                "awsRegion": "us-east-1",
            }
        ]
    }


def test_handlers_logging_at_once_each_log_their_own_correlation_id(aws, chalice_client, source, lines, monkeypatch):
    """Two fetches (one the source refuses, one it answers) and the mediator taking in a frame, at once:
    each has set its correlation id before any of them logs, and each line carries its own."""
    from chalice.local import LambdaContext

    from app import app
    from chalicelib.mediator import store

    met = threading.Barrier(3, timeout=30)  # every invocation has set its id; then they all log

    def meet() -> None:
        try:
            met.wait()
        except threading.BrokenBarrierError:
            pass  # a party that never came: the test fails on what was logged, not here

    def respond(path: str) -> Answer:
        meet()
        if ",alpha/" in path:
            return Answer(404, b"no such layer", {"Content-Type": "text/plain"})
        return Answer(body=encode(radar_frame(2)))

    source.respond = respond
    looked_up = store.get_animation

    def get_animation(image_id: str, consistent: bool = False) -> Any:
        meet()
        return looked_up(image_id, consistent)

    monkeypatch.setattr(store, "get_animation", get_animation)

    def fetch(image_id: str, run: str) -> Any:
        request = {**FETCH, "imageId": image_id, "layers": ["flat-dk", image_id], "correlationId": run}
        event = chalice_client.events.generate_sns_event(message=json.dumps(request))
        return app.handler_map["fetch_amp_image"](event, LambdaContext("fetch_amp_image", memory_size=512))

    def mediate(image_id: str, run: str) -> Any:
        frame = {
            "type": "did-fetch-amp-image",
            "imageId": image_id,
            "validTime": 1700000000,
            "location": {"Bucket": aws.names.frames_bucket, "Key": f"{image_id}/320x240/1700000000.png"},
            "correlationId": run,
        }
        event = sqs_event(json.dumps(frame), f"m-{image_id}")
        return app.handler_map["mediate"](event, LambdaContext("mediate", memory_size=512))

    invocations = {"alpha": (fetch, "run-alpha"), "beta": (mediate, "run-beta"), "gamma": (fetch, "run-gamma")}

    def run(name: str) -> Any:
        threading.current_thread().name = name
        handler, run_id = invocations[name]
        return handler(name, run_id)

    with ThreadPoolExecutor(3) as pool:
        results = dict(zip(invocations, pool.map(run, invocations)))

    assert results["alpha"]["type"] == "did-fail-fetch-amp-image" and results["gamma"]["type"] == "did-fetch-amp-image"
    assert not met.broken
    by_invocation: dict[str, list[dict[str, Any]]] = {name: [] for name in invocations}
    for thread, line in lines.lines:
        assert thread in by_invocation, (thread, line)  # logged by an invocation, not by another thread
        by_invocation[thread].append(line)
    for name, (_, run_id) in invocations.items():
        logged = by_invocation[name]
        assert logged, f"{name} logged nothing"
        assert [line.get("correlation_id") for line in logged] == [run_id] * len(logged), (name, logged)
    # what each logged, so the lines above are the ones that matter: a failure, an answer, a frame refused
    assert any("can never succeed" in line["message"] for line in by_invocation["alpha"])
    assert any(line["message"] == "did-fetch-amp-image" for line in by_invocation["gamma"])
    assert any("does not exist" in line["message"] for line in by_invocation["beta"])


def test_threads_working_for_an_invocation_log_its_correlation_id(lines):
    from chalicelib import telemetry
    from chalicelib.log import logger
    from chalicelib.threads import in_context

    def work(i: int) -> None:
        logger.info(f"part {i}")

    with telemetry.invocation("tick"):
        logger.set_correlation_id("run-1")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(in_context(work), range(4)))
            pool.submit(logger.info, "not handed the context").result()
    assert sorted(line["message"] for _, line in lines.lines if line.get("correlation_id") == "run-1") == [
        f"part {i}" for i in range(4)
    ]
    assert [line.get("correlation_id") for _, line in lines.lines if line["message"] == "not handed the context"] == [
        None
    ]


def test_an_invocation_starts_without_the_id_of_the_one_before(lines):
    from chalicelib import telemetry
    from chalicelib.log import correlation_id, logger

    with telemetry.invocation("tick"):
        logger.set_correlation_id("run-1")
        logger.info("first")
    assert correlation_id() is None
    with telemetry.invocation("tick"):
        logger.info("second")
    assert [(line["message"], line.get("correlation_id")) for _, line in lines.lines] == [
        ("first", "run-1"),
        ("second", None),
    ]


def test_a_line_given_its_own_correlation_id_keeps_it(lines):
    from chalicelib.log import logger, scope

    with scope():
        logger.set_correlation_id("run-1")
        logger.info("about another run", extra={"correlation_id": "run-2"})
    assert lines.lines[0][1]["correlation_id"] == "run-2"


@pytest.mark.integration
@pytest.mark.parametrize("first", ["app", "chalicelib.log"])
def test_a_line_is_printed_once_whatever_is_imported_first(first):
    """Chalice's app configures the logger of its name (the app's) unless told not to: with a plain
    handler beside Powertools' JSON one, each line came out twice."""
    second = "chalicelib.log" if first == "app" else "app"
    code = (
        f"import {first}, {second}\n"
        "from chalicelib.log import logger\n"
        "logger.warning('once', extra={'correlation_id': 'run-1'})\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = (run.stdout + run.stderr).splitlines()
    assert len(printed) == 1, printed
    line = json.loads(printed[0])
    assert (line["message"], line["level"], line["correlation_id"]) == ("once", "WARNING", "run-1")
