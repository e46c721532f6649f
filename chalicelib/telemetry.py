"""What each invocation did and used: CloudWatch metrics, and the AWS usage its cost comes from.

Every handler runs inside `invocation(function, context)`, which gives it a Meter:

- metrics, in CloudWatch's embedded metric format through Powertools Metrics (EphemeralMetrics: one
  set per invocation, so handlers running at once in one process never mix them). Namespace
  `weathergif`, dimensions Stage and Function; `Failures` adds Reason (the error's type). On Lambda
  the document is a line on stdout, which CloudWatch Logs turns into metrics; `SINK` is where it
  goes (the local event runtime points it at the emulator's CloudWatch, so the API reads the same
  numbers there as on AWS);
- usage: the invocation's duration and memory size, and each AWS request its clients made, counted
  by a botocore hook (`watch`) on every client of chalicelib.aws; DynamoDB's own consumed capacity
  where it reports one. The mediator records usage per animation and day (chalicelib.costs prices it).

The meter follows the invocation through contextvars: threads that work for it run in a copy of
its context (chalicelib.threads.in_context), and code outside any invocation (tests, tools) meters nothing.
So does its log's correlation id (chalicelib.log): each invocation starts without one and sets its own.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .aws import clients as _clients

NAMESPACE = "weathergif"
METRICS = (  # name -> unit: the contract of resources/template.yaml's alarms and dashboard
    ("Duration", "Milliseconds"),
    ("BytesIn", "Bytes"),
    ("BytesOut", "Bytes"),
    ("Failures", "Count"),
    ("FramesPerGif", "Count"),
    ("FrameAge", "Seconds"),
    ("StaleAnimations", "Count"),
)
UNITS = dict(METRICS)
DEFAULT_MEMORY_MB = 128

T = TypeVar("T")


def _print(document: dict[str, Any]) -> None:
    print(json.dumps(document, separators=(",", ":")), flush=True)


# Where a metric document goes: a line on stdout (Lambda's log, which CloudWatch reads), or what
# the local event runtime puts here.
SINK: Callable[[dict[str, Any]], None] = _print


class Meter:
    """One invocation's metrics and usage."""

    def __init__(self, function: str, memory_mb: int):
        self.function = function
        self.memory_mb = memory_mb
        self.started = time.perf_counter()
        self.requests: dict[str, float] = {}  # "s3.write", "s3.read", "sns", "sqs", "ses", "dynamodb.read"...
        self.values: dict[str, list[float]] = {}
        self.failures: Counter[str] = Counter()
        self.singles: list[tuple[str, float, dict[str, str]]] = []  # values with properties of their own
        self.charged = Mark(0, {})  # the parts of its usage charged to animations so far
        self.charged_invocations = 0.0  # and the shares of the invocation itself they took
        self._lock = threading.Lock()  # threads working for the invocation count at once
        self.bytes_in = 0  # read from S3 or a map source
        self.bytes_out = 0  # written to S3

    # Metrics ------------------------------------------------------------------------

    def add(self, name: str, value: float, **about: str) -> None:
        """A value of a metric; `about` (an imageId): in a document of its own, as properties, so the
        log can be searched by them while the metric keeps its two dimensions."""
        if name not in UNITS:
            raise ValueError(f"{name} is not one of the metrics {sorted(UNITS)}")
        if about:
            self.singles.append((name, float(value), about))
        else:
            self.values.setdefault(name, []).append(float(value))

    def failed(self, reason: str) -> None:
        self.failures[reason[:100] or "Error"] += 1

    def ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    # Usage ------------------------------------------------------------------------

    def count(self, kind: str, amount: float = 1) -> None:
        with self._lock:
            self.requests[kind] = self.requests.get(kind, 0) + amount

    def read(self, count: int) -> None:
        with self._lock:
            self.bytes_in += count

    def wrote(self, count: int) -> None:
        with self._lock:
            self.bytes_out += count

    def usage(self, since: Mark | None = None, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """What this invocation used (since a mark: what one part of it used; `extra`: requests it is
        about to make), as a reply carries it and the mediator records it:
        {"function", "ms", "memoryMb", "requests": {kind: n}}."""
        with self._lock:
            requests = dict(self.requests)
        ms = self.ms()
        if since is not None:
            for kind, n in since.requests.items():
                requests[kind] = requests.get(kind, 0) - n
            ms -= since.ms
        for kind, n in (extra or {}).items():
            requests[kind] = requests.get(kind, 0) + n
        return {
            "function": self.function,
            "ms": max(ms, 0),
            "memoryMb": self.memory_mb,
            "requests": {kind: round(n, 3) for kind, n in sorted(requests.items()) if n > 0},
        }

    def mark(self) -> Mark:
        with self._lock:
            return Mark(self.ms(), dict(self.requests))

    def count_charged(self, usage: dict[str, Any]) -> None:
        """A part of this invocation's usage charged to someone (what is left at its end is shared)."""
        self.charged.ms += int(usage["ms"])
        for kind, n in usage["requests"].items():
            self.charged.requests[kind] = self.charged.requests.get(kind, 0) + n

    # Out --------------------------------------------------------------------------

    def documents(self) -> list[dict[str, Any]]:
        """The invocation's metric documents (embedded metric format): its metrics, one per failure
        reason (Reason is a dimension of its own), and one per value about an animation."""
        out = [self._document(self.values)]
        out += [self._document({"Failures": [n]}, {"Reason": reason}) for reason, n in self.failures.items()]
        out += [self._document({name: [value]}, about=about) for name, value, about in self.singles]
        return out

    def _document(
        self,
        values: dict[str, list[float]],
        dimensions: dict[str, str] | None = None,
        about: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        from aws_lambda_powertools.metrics import EphemeralMetrics

        # service="": no `service` dimension (POWERTOOLS_SERVICE_NAME would add one), for CloudWatch
        # matches a metric by its whole set of dimensions: the alarms' and the dashboard's.
        metrics = EphemeralMetrics(namespace=NAMESPACE, service="")
        dimensions = {"Stage": os.environ.get("STAGE", "dev"), "Function": self.function, **(dimensions or {})}
        for name, value in dimensions.items():
            metrics.add_dimension(name, value)
        for name, points in values.items():
            for point in points:
                metrics.add_metric(name, UNITS[name], point)
        for key, text in (about or {}).items():
            metrics.add_metadata(key, text)
        return dict(metrics.serialize_metric_set())


class Mark:
    __slots__ = ("ms", "requests")

    def __init__(self, ms: int, requests: dict[str, float]):
        self.ms, self.requests = ms, requests


_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("meter", default=None)


def current() -> Meter | None:
    return _current.get()


@contextmanager
def invocation(function: str, context: Any = None) -> Iterator[Meter]:
    """Meter a handler's invocation: its Duration (and a Failure by the error's type, if it raises)
    go out as metrics when it ends, whatever the end."""
    from .aws import learn_account
    from .log import scope

    learn_account(context)  # every handler passes its context here: the account for ARNs, without STS
    meter = Meter(function, _memory_mb(context))
    token = _current.set(meter)
    try:
        with scope():  # its log lines: its own correlation id, none of the invocation before
            yield meter
    except Exception as exc:
        meter.failed(type(exc).__name__)
        raise
    finally:
        _current.reset(token)
        meter.add("Duration", (time.perf_counter() - meter.started) * 1000)
        if meter.bytes_in or meter.bytes_out:
            meter.add("BytesIn", meter.bytes_in)
            meter.add("BytesOut", meter.bytes_out)
        try:
            for document in meter.documents():
                SINK(document)
        except Exception:  # metrics are no reason to fail the work
            from .log import logger

            logger.exception("metrics not emitted")


def add(name: str, value: float, **about: str) -> None:
    """A metric of the invocation being served (nothing outside one); see Meter.add."""
    meter = _current.get()
    if meter is not None:
        meter.add(name, value, **about)


def bytes_in(count: int) -> None:
    """Bytes read from outside AWS (a map source's answer): S3's are counted by the hook."""
    meter = _current.get()
    if meter is not None:
        meter.read(count)


def failed(reason: str) -> None:
    meter = _current.get()
    if meter is not None:
        meter.failed(reason)


def _memory_mb(context: Any) -> int:
    value = getattr(context, "memory_limit_in_mb", None) or os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    try:
        return int(value) if value else DEFAULT_MEMORY_MB
    except (TypeError, ValueError):
        return DEFAULT_MEMORY_MB


# Counting AWS requests: a botocore hook on each client ----------------------------------

# Requests by how they are priced: S3 writes and lists cost 12.5 times its reads; DynamoDB counts
# capacity units, from ConsumedCapacity where it reports them; SES, recipients. A request to SQS or
# SNS counts once (they bill each 64 KiB of a request: the app's messages are smaller).
_S3_WRITES = {"PutObject", "CopyObject", "ListObjects", "ListObjectsV2", "CreateMultipartUpload", "UploadPart"}
_CAPACITY = {
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
}
_DYNAMODB_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def watch(client: Any) -> None:
    """Count `client`'s requests into the meter of the invocation that makes them (the door to AWS
    hands every client it makes to this: see the end of this module)."""
    service = client.meta.service_model.service_name
    events = client.meta.events
    if service in ("dynamodb", "s3", "ses"):
        events.register(f"provide-client-params.{service}", _before)
    events.register(f"after-call.{service}", _counted(service))


def _before(params: dict[str, Any], model: Any, **_: Any) -> None:
    meter = _current.get()
    if meter is None:
        return
    if model.name in _CAPACITY:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")
    elif model.name == "PutObject" and isinstance(params.get("Body"), (bytes, bytearray)):
        meter.wrote(len(params["Body"]))
    elif model.name in ("SendEmail", "SendRawEmail"):  # SES bills each recipient
        destination = params.get("Destination") or {}
        listed = params.get("Destinations") or [
            address
            for field in ("ToAddresses", "CcAddresses", "BccAddresses")
            for address in destination.get(field, [])
        ]
        meter.count("ses", max(len(listed), 1))


def _counted(service: str) -> Callable[..., None]:
    def count(model: Any, parsed: dict[str, Any], **_: Any) -> None:
        meter = _current.get()
        if meter is None:
            return
        if service == "s3" and model.name == "GetObject":
            meter.read(int(parsed.get("ContentLength") or 0))
        for kind, amount in _priced(service, model.name, parsed).items():
            meter.count(kind, amount)

    return count


def _priced(service: str, operation: str, parsed: dict[str, Any]) -> dict[str, float]:
    if service == "s3":
        return {"s3.write" if operation in _S3_WRITES else "s3.read": 1}
    if service == "dynamodb":
        consumed = parsed.get("ConsumedCapacity")
        units = _capacity(consumed)
        kind = "dynamodb.read" if operation in _DYNAMODB_READS else "dynamodb.write"
        return {kind: units if units else _estimated_units(operation)}
    if service == "sns":
        return {"sns": 1}
    if service == "sqs":
        return {"sqs": 1}
    return {}  # SES: counted by recipient, as it was asked (above); SSM's standard parameters, STS: free


def _capacity(consumed: Any) -> float:
    if isinstance(consumed, dict):
        consumed = [consumed]
    if not isinstance(consumed, list):
        return 0.0
    return float(sum(float(entry.get("CapacityUnits") or 0) for entry in consumed if isinstance(entry, dict)))


def _estimated_units(operation: str) -> float:
    """Where DynamoDB reports no capacity (an emulator): one unit a request, two for a transaction's."""
    return 2.0 if operation.startswith("Transact") else 1.0


_clients.on_new_client(watch)  # every client of chalicelib.aws, made before or after this
