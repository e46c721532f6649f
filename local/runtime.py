"""The local event runtime: every S3, SNS, SQS and schedule handler of the app, run locally.

`chalice local` serves only REST routes. This reads `app.event_sources` and delivers
events to the same handlers, in the shapes Lambda uses, through the emulated services:

- S3 notifications: the bucket notifies a queue per handler (prefix and suffix kept).
- SNS messages: a queue per handler, subscribed to the topic.
- SQS messages: the handler's own queue, in batches up to its batch size.
- Schedules: on a timer, with a speed-up factor; the event's time is the simulated time.

Lambda-like semantics: an SQS handler that raises leaves its messages to come back after
the visibility timeout; `batchItemFailures` is honoured (or, as a mapping without
ReportBatchItemFailures does, ignored: the whole batch is deleted); after the queue's receive
limit a message goes to the queue's dead-letter queue. An S3 or SNS event (which Lambda
invokes asynchronously) that fails is tried twice more, then its invocation record goes to
the on-failure destination. Handlers run concurrently.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from chalice.app import Chalice, Rate, S3EventConfig, ScheduledEventConfig, SNSEventConfig, SQSEventConfig

log = logging.getLogger("local.runtime")  # plain lines, not the app's JSON (local/logs.py)

_SECONDS = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}
IDLE_POLL_MAX = 0.5  # seconds between polls of an idle queue on an emulator elsewhere, which tells of nothing
IDLE_POLL_TOLD_MAX = 5.0  # on the emulator in this process, which tells of all (a safety net, not a schedule)
IN_FLIGHT_PAUSE_MAX = 0.4  # seconds between drain's looks at queues whose messages are out of sight


@dataclass
class Source:
    name: str
    kind: str  # "s3", "sns", "sqs", "schedule"
    queue_url: str = ""
    queue_arn: str = ""
    batch_size: int = 1
    period: float = 0.0  # schedules: seconds of simulated time between events
    next_due: float = 0.0
    invocations: int = 0
    failures: int = 0

    @property
    def queue(self) -> str:
        """Its queue's name (the last part of its URL)."""
        return self.queue_url.rsplit("/", 1)[-1]


@dataclass
class Invocation:
    handler: str
    ms: float
    outcome: str  # "ok", "partial", "error"
    error: str = ""
    records: int = 0


@dataclass
class Stats:
    invocations: list[Invocation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, invocation: Invocation) -> None:
        with self.lock:
            self.invocations.append(invocation)

    def count(self, handler: str | None = None, outcome: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for i in self.invocations
                if (handler is None or i.handler == handler) and (outcome is None or i.outcome == outcome)
            )


class Runtime:
    """Delivers the app's events through the emulated services to its handlers."""

    def __init__(
        self,
        app: Chalice,
        *,
        workers: int = 4,
        speed: float = 1.0,
        visibility_timeout: int = 30,
        async_retries: int = 2,
        on_failure_queue: str | None = None,
        prefix: str = "local",
        report_batch_item_failures: bool = True,
    ):
        self.app = app
        self.workers = workers
        self.speed = speed
        self.visibility_timeout = visibility_timeout
        # As Lambda's asynchronous invocation (SNS, S3): a failed event is tried again this many
        # times (after the visibility timeout, Lambda's back-off), then its invocation record goes
        # to the on-failure destination: this queue, or else the runtime's own dead-letter queue.
        self.async_retries = async_retries
        self.on_failure_queue = on_failure_queue
        self.prefix = prefix
        # As the SQS event source mapping's FunctionResponseTypes: without ReportBatchItemFailures,
        # Lambda deletes the whole batch when the handler returns, whatever it returns.
        self.report_batch_item_failures = report_batch_item_failures
        self.sources: list[Source] = []
        self.stats = Stats()
        self.dead_letter_url = ""
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(workers)  # invocations in flight at once
        self._threads: list[threading.Thread] = []
        self._started_real = time.time()
        self._started_simulated = time.time()
        self._until: float | None = None
        self._schedules_from: float | None = None  # a set clock's start: schedules count from it

    # Setup ------------------------------------------------------------------------

    def setup(self) -> Runtime:
        """Queues, subscriptions and bucket notifications for every event source."""
        from chalicelib.aws import client

        from .metrics import install

        self.metrics = install()  # the handlers' metrics into the emulator's CloudWatch, as on AWS
        sqs, sns, s3 = client("sqs"), client("sns"), client("s3")
        self.dead_letter_url, _ = self._queue(f"{self.prefix}-dead-letters", {})
        self.on_failure_url = (
            sqs.get_queue_url(QueueName=self.on_failure_queue)["QueueUrl"]
            if self.on_failure_queue
            else self.dead_letter_url
        )
        notifications: dict[str, list[dict[str, Any]]] = {}
        for config in self.app.event_sources:
            if isinstance(config, SNSEventConfig):
                url, arn = self._queue(f"{self.prefix}-{config.name}", {})
                topic_arn = (
                    sns.create_topic(Name=config.topic)["TopicArn"]
                    if not config.topic.startswith("arn:")
                    else config.topic
                )
                sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
                self.sources.append(Source(config.name, "sns", url, arn))
            elif isinstance(config, S3EventConfig):
                url, arn = self._queue(f"{self.prefix}-{config.name}", {})
                rules = [{"Name": "prefix", "Value": config.prefix}] if config.prefix else []
                rules += [{"Name": "suffix", "Value": config.suffix}] if config.suffix else []
                queue_config: dict[str, Any] = {"QueueArn": arn, "Events": config.events}
                if rules:
                    queue_config["Filter"] = {"Key": {"FilterRules": rules}}
                notifications.setdefault(config.bucket, []).append(queue_config)
                self.sources.append(Source(config.name, "s3", url, arn))
            elif isinstance(config, SQSEventConfig):
                url = sqs.get_queue_url(QueueName=config.queue)["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                self.sources.append(Source(config.name, "sqs", url, arn, batch_size=config.batch_size))
            elif isinstance(config, ScheduledEventConfig):
                self.sources.append(Source(config.name, "schedule", period=_period(config.schedule_expression)))
            else:
                log.warning("event source %s (%s) is not run locally", config.name, type(config).__name__)
        for bucket, queues in notifications.items():
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": queues}
            )
        return self

    def _queue(self, name: str, attributes: dict[str, str]) -> tuple[str, str]:
        from chalicelib.aws import client

        sqs = client("sqs")
        wanted = {"VisibilityTimeout": str(self.visibility_timeout), **attributes}
        try:
            url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
        except sqs.exceptions.QueueNameExists:  # made by an earlier runtime with other settings
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            sqs.set_queue_attributes(QueueUrl=url, Attributes=wanted)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    # Running ----------------------------------------------------------------------

    def set_clock(self, simulated_now: float, until: float | None = None) -> None:
        """Let simulated time start at `simulated_now` (a demo can begin in the past); schedules
        fire at `simulated_now` + each period, however long the start takes, and stop after `until`."""
        self._started_real = time.time()
        self._started_simulated = simulated_now
        self._schedules_from = simulated_now
        self._until = until

    def now(self) -> float:
        """Simulated time: it runs `speed` times faster than the wall clock."""
        return self._started_simulated + (time.time() - self._started_real) * self.speed

    def start(self, schedules: bool = True) -> Runtime:
        """Deliver continuously in background threads until stop()."""
        self._stop.clear()
        for source in self.sources:
            if source.kind == "schedule":
                if schedules:
                    start = self.now() if self._schedules_from is None else self._schedules_from
                    source.next_due = start + source.period
                    self._spawn(self._schedule_loop, source)
            else:
                self._spawn(self._poll_loop, source)
        return self

    def stop(self) -> None:
        from .emulator import ARRIVALS

        self._stop.set()
        ARRIVALS.arrived()  # the idle pollers wake, and see the stop
        for thread in self._threads:
            thread.join(timeout=25)
        self._threads.clear()
        self._pool.shutdown(wait=True)

    def _spawn(self, target: Any, source: Source) -> None:
        thread = threading.Thread(target=target, args=(source,), name=f"poll-{source.name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll_loop(self, source: Source) -> None:
        """Short polls (moto's long polls can hold its server threads), backing off when idle: an
        idle queue is asked again when the emulator in this process tells (ARRIVALS) that a
        message arrived on it or becomes visible there, or after the pause, doubled each empty
        round up to IDLE_POLL_MAX on an emulator elsewhere, which tells of nothing (up to
        IDLE_POLL_TOLD_MAX on this process's)."""
        from .emulator import ARRIVALS

        queue = source.queue
        longest = IDLE_POLL_TOLD_MAX if ARRIVALS.tells(os.environ.get("AWS_ENDPOINT_URL")) else IDLE_POLL_MAX
        idle = 0.0
        while not self._stop.is_set():
            seen, asked = ARRIVALS.seen(queue), ARRIVALS.clock()
            self._slots.acquire()
            try:
                messages = self._receive(source, wait=0)
            except Exception:  # keep polling whatever one round did
                self._slots.release()
                log.exception("polling %s failed", source.name)
                self._stop.wait(0.5)
                continue
            if not messages:
                self._slots.release()
                idle = min(longest, 2 * idle or 0.01)
                ARRIVALS.wait(queue, seen, idle, since=asked)
                continue
            idle = 0.0
            future = self._pool.submit(self._deliver, source, messages)
            future.add_done_callback(lambda _: self._slots.release())

    def _schedule_loop(self, source: Source) -> None:
        """Fire at each due time, one at a time: a slow handler delays the next tick, never
        drops it, so every simulated time a schedule was due for is seen once."""
        while not self._stop.is_set():
            wait = (source.next_due - self.now()) / self.speed
            if wait > 0:
                self._stop.wait(min(wait, 0.5))
                continue
            when = source.next_due
            if self._until is not None and when > self._until:
                return
            source.next_due += source.period
            self.fire(source.name, when)

    def fire(self, name: str, when: float | None = None) -> Any:
        """Invoke a schedule handler now, as EventBridge would at `when` (simulated time)."""
        source = self.source(name)
        moment = datetime.fromtimestamp(self.now() if when is None else when, timezone.utc)
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{name}"],
            "detail": {},
        }
        return self._invoke(source, event, records=1)

    def drain(self, timeout: float = 60.0, settle: float = 0.3) -> None:
        """Deliver until every queue is empty and nothing is in flight (tests, demos).

        Messages waiting out a visibility timeout count as in flight, so a failing
        handler's retries (and its dead-lettering) are waited for too: the queues are looked at
        again after a pause that doubles (up to IN_FLIGHT_PAUSE_MAX) while nothing comes back.
        A queue found empty is asked again only when a message arrives on it (the emulator in
        this process tells of each: ARRIVALS) or something is out of sight. Once all is quiet,
        a message arriving within `settle` seconds starts it again; an emulator elsewhere, which
        tells of none, is looked at once more after the settle.
        """
        from .emulator import ARRIVALS

        deadline = time.time() + timeout
        pause = 0.0
        emptied: dict[str, tuple[int, int]] = {}  # a queue found empty: what ARRIVALS had told of it then
        while time.time() < deadline:
            arrivals = ARRIVALS.total
            futures: list[Future[Any]] = []
            for source in self.sources:
                if source.kind == "schedule":
                    continue
                seen = ARRIVALS.seen(source.queue)
                if emptied.get(source.queue) == seen:
                    continue  # empty, and nothing arrived on it since
                batches = self._batches(source)
                if len(batches) < self.workers:  # its last look found nothing
                    emptied[source.queue] = seen
                futures += [self._pool.submit(self._deliver, source, batch) for batch in batches]
            for future in futures:
                future.result()
            if futures:
                pause = 0.0
                continue
            if self._in_flight():
                emptied.clear()  # a message out of sight comes back unannounced, on any queue
                pause = min(IN_FLIGHT_PAUSE_MAX, 2 * pause or 0.05)
                ARRIVALS.wait_any(arrivals, pause)
                continue
            if ARRIVALS.wait_any(arrivals, settle):
                continue  # something came while it settled: deliver it
            if not self._in_flight():  # nor anything visible: an emulator elsewhere tells of no arrival
                self.metrics.flush()
                _record_usage_owed()
                return
        raise TimeoutError(f"events still flowing after {timeout} s")

    def _batches(self, source: Source) -> list[list[dict[str, Any]]]:
        """What is visible on the source's queue now, cut into the handler's batches."""
        batches = []
        for _ in range(self.workers):
            messages = self._receive(source, wait=0)
            if not messages:
                break
            batches.append(messages)
        return batches

    def _in_flight(self) -> bool:
        from chalicelib.aws import client

        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        for source in self.sources:
            if source.queue_url:
                attributes = client("sqs").get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=names)
                if any(int(attributes["Attributes"].get(n, 0)) for n in names):
                    return True
        return False

    def _receive(self, source: Source, wait: int) -> list[dict[str, Any]]:
        from chalicelib.aws import client

        got = client("sqs").receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(10, source.batch_size),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return got.get("Messages", [])

    # Delivery ---------------------------------------------------------------------

    def _deliver(self, source: Source, messages: list[dict[str, Any]]) -> None:
        from chalicelib.aws import queues

        if source.kind == "sqs":
            result = self._invoke(
                source, {"Records": [_sqs_record(m, source.queue_arn) for m in messages]}, len(messages)
            )
            if isinstance(result, _Failed):
                done = []
            elif not self.report_batch_item_failures:
                done = messages
            else:
                failures = result.get("batchItemFailures", []) if isinstance(result, dict) else []
                failed = {failure["itemIdentifier"] for failure in failures}
                done = [m for m in messages if m["MessageId"] not in failed]
        else:
            done = []
            for message in messages:
                event = _sns_event(message, source) if source.kind == "sns" else json.loads(message["Body"])
                if source.kind == "s3" and event.get("Event") == "s3:TestEvent":
                    done.append(message)
                    continue
                result = self._invoke(source, event, 1)
                if not isinstance(result, _Failed):
                    done.append(message)
                elif int(message["Attributes"].get("ApproximateReceiveCount", 1)) > self.async_retries:
                    self._send_to_on_failure(source, event, result.error, message)
                    done.append(message)
        if done:  # as Lambda's poller does: the batch's handled messages in one call
            queues().delete(source.queue_arn, [message["ReceiptHandle"] for message in done])

    def _invoke(self, source: Source, event: dict[str, Any], records: int) -> Any:
        from chalice.local import LambdaContext

        context = LambdaContext(source.name, memory_size=memory_size(source.name), max_runtime_ms=60_000)
        started = time.perf_counter()
        source.invocations += 1
        try:
            result = self.app.handler_map[source.name](event, context)
        except Exception as exc:
            source.failures += 1
            ms = (time.perf_counter() - started) * 1000
            self.stats.add(Invocation(source.name, ms, "error", f"{type(exc).__name__}: {exc}", records))
            log.warning("%s %.0f ms error %s: %s", source.name, ms, type(exc).__name__, exc)
            return _Failed(exc)
        ms = (time.perf_counter() - started) * 1000
        failures = len(result.get("batchItemFailures", [])) if isinstance(result, dict) else 0
        outcome = "partial" if failures else "ok"
        self.stats.add(
            Invocation(source.name, ms, outcome, f"{failures} of {records} failed" if failures else "", records)
        )
        log.info(
            "%s %.0f ms %s (%d records%s)",
            source.name,
            ms,
            outcome,
            records,
            f", {failures} failed" if failures else "",
        )
        return result

    def _send_to_on_failure(
        self, source: Source, event: dict[str, Any], error: Exception, message: dict[str, Any]
    ) -> None:
        """Lambda's invocation record of an asynchronous event that failed every attempt."""
        from chalicelib.aws import client

        function = f"{self.app.app_name}-{os.environ.get('STAGE', 'dev')}-{source.name}"
        record = {
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{function}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": int(message["Attributes"].get("ApproximateReceiveCount", 1)),
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": str(error), "errorType": type(error).__name__},
        }
        client("sqs").send_message(QueueUrl=self.on_failure_url, MessageBody=json.dumps(record))
        log.warning(
            "%s failed %s times: its event went to the on-failure destination",
            source.name,
            record["requestContext"]["approximateInvokeCount"],
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Messages in the local dead-letter queue (not consumed)."""
        from chalicelib.aws import client

        got = client("sqs").receive_message(
            QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"]
        )
        return got.get("Messages", [])


class _Failed(NamedTuple):
    error: Exception


def _record_usage_owed() -> None:
    """What the app's containers owe its usage records, written now (on Lambda, at the latest a
    minute on, by the container's next invocation): so a drained pipeline's costs are all there."""
    from chalicelib.mediator import metering

    metering.flush(force=True)


@functools.cache
def memory_size(function: str) -> int:
    """The function's memory size as .chalice/config.json gives it for the stage (as Lambda's context
    reports it, and as its cost is counted)."""
    config = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json").read_text())
    stage = config.get("stages", {}).get(os.environ.get("STAGE", "dev"), {})
    for level in (stage.get("lambda_functions", {}).get(function, {}), stage, config):
        if "lambda_memory_size" in level:
            return int(level["lambda_memory_size"])
    return 128


def _period(expression: Any) -> float:
    if isinstance(expression, Rate):
        return expression.value * _SECONDS[expression.unit]
    raise ValueError(f"only rate() schedules run locally, not {expression!r}")


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else "us-east-1",
    }


def _sns_event(message: dict[str, Any], source: Source) -> dict[str, Any]:
    """An SNS notification (as SNS wrote it to the queue) in the shape Lambda gets it."""
    envelope = json.loads(message["Body"])
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{envelope.get('TopicArn', '')}:{source.name}",
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId", message["MessageId"]),
                    "TopicArn": envelope.get("TopicArn", ""),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope.get("Timestamp", ""),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }
