"""Fixtures: moto's server for the session, fresh resources for each test."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local.emulator import Emulator  # noqa: E402
from tests import bundle  # noqa: E402

SENDER = "Weather Desk <wx@example.com>"

# Property tests draw the same examples on every run (derandomized, no example database): a fresh clone
# passes or fails the same way on any day. HYPOTHESIS_PROFILE=explore draws new ones, to look for bugs.
from hypothesis import settings as _hypothesis  # noqa: E402

_hypothesis.register_profile("ci", derandomize=True, database=None, print_blob=True)
_hypothesis.register_profile("explore", derandomize=False)
_hypothesis.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# Tests in tiers: `make test-unit` runs the unit tests (no network, no server, no subprocess: under
# 10 s); `make test` runs all. A test is an integration test when it uses one of these fixtures
# (the embedded AWS, a local map source, a WMS server, a built bundle or layer, a clone, a served page) or its
# module says so.
INTEGRATION_FIXTURES = {"emulator", "source", "wms", "built", "ffmpeg_zip", "clone", "stack"}


# Debian's chromium, for the tests that drive a browser: without it they skip, unless REQUIRE_BROWSER=1
# (CI, .ci/run, which installs it) makes its absence a failure.
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("REQUIRE_BROWSER") != "1",
    reason="Debian's chromium is not installed (apt-get install chromium); CI installs it",
)


def examples(n: int) -> int:
    """How many examples a property test generates: `n`, scaled by TEST_EXAMPLES (make test-unit, the
    quick tier, asks for a fifth; make test, all of them)."""
    return max(10, round(n * float(os.environ.get("TEST_EXAMPLES") or 1)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        on_dynamodb = "world" in fixtures and "dynamodb" in item.name  # tests/test_exactly_once.py
        if item.get_closest_marker("integration") is None and (fixtures & INTEGRATION_FIXTURES or on_dynamodb):
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)

    # The heavy tests first, then the rest, each in their order: xdist hands tests out in this order,
    # and a heavy test started last kept one worker busy while the others had finished. Of the heavy
    # tests that need the bundle, one starts its build at once and the others come after the heavy
    # tests that do not, so that the processes are not all waiting for the one build.
    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("heavy") is None:
            return 3
        return 2 if "built" in getattr(item, "fixturenames", ()) else 1

    items.sort(key=order)
    builds = [i for i, item in enumerate(items) if order(item) == 2]
    if builds:
        items.insert(0, items.pop(builds[0]))


@contextlib.contextmanager
def shared(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str) -> Iterator[Path]:
    """A folder of this run common to its xdist workers, held under a lock: the first worker to ask
    makes what goes in it, the others wait and find it made."""
    if worker_id == "master":
        yield tmp_path_factory.mktemp(name)
        return
    folder = tmp_path_factory.getbasetemp().parent / name  # this run's, common to its workers
    folder.mkdir(exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


def made_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str, make: Callable[[Path], Any]) -> Any:
    """What `make` returns (JSON) for a folder of this run: made by the first xdist worker to ask, read
    by the others. A failure is kept too, and raised again in each worker that asks after."""
    with shared(tmp_path_factory, worker_id, name) as folder:
        done = folder / "made.json"
        if not done.exists():
            try:
                done.write_text(json.dumps({"made": make(folder)}))
            except Exception as error:
                done.write_text(json.dumps({"error": f"{type(error).__name__}: {error}"}))
                raise
        recorded = json.loads(done.read_text())
    if "error" in recorded:
        raise RuntimeError(recorded["error"])
    return recorded["made"]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> bundle.Build:
    """The Lambda bundle (tests/bundle.py), built once per run for tests/test_bundle.py and
    tests/test_sdk.py: xdist workers share it (the first to ask builds it; the tests run on
    whichever workers are free)."""

    def build(folder: Path) -> list[str]:
        made = bundle.build(folder)
        return [str(made.project), str(made.out), made.log]

    project, out, log = made_once(tmp_path_factory, worker_id, "lambda-bundle", build)
    return bundle.Build(Path(project), Path(out), log)


@pytest.fixture(scope="session")
def ffmpeg_zip(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The ffmpeg layer's zip (deploy/ffmpeg_layer.py), made once per run for the tests that carry it."""
    from deploy import ffmpeg_layer

    with shared(tmp_path_factory, worker_id, "ffmpeg-layer") as folder:
        return ffmpeg_layer.made(folder)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    emu = Emulator().start()
    emu.use()
    yield emu
    emu.stop()


class Aws:
    """The resources of one test, and ways to look at what the app did to them."""

    def __init__(self, emu: Emulator, created: dict[str, Any]):
        from chalicelib.aws import client
        from chalicelib.settings import names

        self.emulator = emu
        self.names = names()
        self.outputs = created
        self.s3 = client("s3")
        self.sqs = client("sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName=created["MediatorQueue"])["QueueUrl"]
        self.received: list[dict[str, Any]] = []  # every reply taken off the mediator queue so far

    def replies(self) -> list[dict[str, Any]]:
        """Every message on the mediator queue, consumed."""
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = got.get("Messages", [])
            if not messages:
                self.received += out
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def reply(self) -> dict[str, Any]:
        replies = self.replies()
        assert len(replies) == 1, replies
        return replies[0]

    def reply_to(self, result: dict[str, Any]) -> None:
        """A handler's `result` reached the mediator queue once, or not at all if a reply alike was
        taken off it before: the queue deduplicates by the body's digest for five minutes, as SQS
        does (chalicelib/bus.py), and two of a property test's examples can answer alike to the
        millisecond."""
        expected = [] if result in self.received else [result]
        assert self.replies() == expected

    def get(self, Bucket: str, Key: str) -> bytes:  # noqa: N803 (a location's keys)
        return self.s3.get_object(Bucket=Bucket, Key=Key)["Body"].read()

    def put(self, bucket: str, key: str, data: bytes) -> dict[str, str]:
        self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        return {"Bucket": bucket, "Key": key}

    def keys(self, bucket: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture(scope="session")
def wms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OGC WMS-T server (MapServer's mapserv over HTTP on loopback) serving radar frames at
    tests.wms.TIMES (tests/wms.py); skips when MapServer is not installed, unless REQUIRE_MAPSERVER=1."""
    from tests import wms as server

    running = server.start(tmp_path_factory.mktemp("wms"))
    yield running
    running.stop()


@pytest.fixture
def aws(emulator: Emulator) -> Aws:
    from local.provision import provision

    emulator.reset()
    return Aws(emulator, provision(sender="wx@example.com"))


@pytest.fixture
def chalice_client(aws: Aws) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="dev", project_dir=str(ROOT)) as client:
        yield client


@pytest.fixture
def invoke_sns(chalice_client: Any):
    """Deliver one SNS message to a handler, as Lambda would; returns its result."""

    def invoke(handler: str, message: dict[str, Any] | str) -> Any:
        body = message if isinstance(message, str) else json.dumps(message)
        event = chalice_client.events.generate_sns_event(message=body)
        return chalice_client.lambda_.invoke(handler, event).payload

    return invoke


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"))


@pytest.fixture
def store(aws: Aws):
    """The mediator's store, on a fresh table."""
    from chalicelib.mediator import store as mediator_store

    return mediator_store


@pytest.fixture
def runtime(emulator: Emulator) -> Iterator[Any]:
    """The local event runtime over fresh resources, with short visibility timeouts."""
    from local.provision import provision
    from local.runtime import Runtime

    from app import app

    emulator.reset()
    outputs = provision(sender="wx@example.com", visibility_timeout=1, max_receives=3)
    rt = Runtime(app, workers=4, visibility_timeout=1, on_failure_queue=outputs["WorkerFailureQueue"]).setup()
    yield rt
    rt.stop()


@pytest.fixture(params=["memory", "dynamodb"])
def world(request) -> Any:
    """A Mediator on the in-memory store or on DynamoDB (moto's server, fresh resources): tests/worlds.py."""
    from tests.fakes import MemoryStore, Published
    from tests.worlds import T0, World

    if request.param == "memory":
        return World(MemoryStore(clock=lambda: float(T0)), Published())
    request.getfixturevalue("aws")
    from chalicelib.mediator import store

    return World(store, Published())
