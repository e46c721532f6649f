"""The embedded AWS emulation: moto in server mode on a free loopback port.

boto3 finds it through AWS_ENDPOINT_URL, so the app's own code runs unchanged.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Arrivals:
    """What this process's emulator tells of each queue, to wait on: a message arrived on it, a
    message on it becomes visible at a time (a received one's visibility timeout, a delayed one's
    delay), a FIFO queue's group was freed (its message in flight deleted). The event runtime's
    idle pollers sleep until their own queue may have something to receive, rather than asking
    every queue twenty times a second, or every queue whenever one of them has a message."""

    MARGIN = 0.005  # seconds after a visibility time: SQS (and moto) show a message after it, not at it

    def __init__(self) -> None:
        import threading
        import time

        self._changed = threading.Condition()
        self._counts: dict[str, int] = {}  # per queue: arrivals and freed groups
        self._due: dict[str, list[float]] = {}  # per queue: a heap of times a message becomes visible
        self._everyone = 0  # wake-ups for all (a runtime stopping)
        self.total = 0  # messages arrived on any queue
        self.clock = time.time  # the queues' clock (_quick_queues gives it to moto), whatever a test patches later
        self.serving: set[str] = set()  # the endpoints of this process's emulators: they tell all

    def tells(self, endpoint: str | None) -> bool:
        """Whether an emulator in this process serves `endpoint`, and so tells of its every queue."""
        return endpoint in self.serving

    def arrived(self, queue: str | None = None) -> None:
        """A message arrived on `queue` (its name); with none, wake every waiter."""
        with self._changed:
            if queue is None:
                self._everyone += 1
            else:
                self._counts[queue] = self._counts.get(queue, 0) + 1
                self.total += 1
            self._changed.notify_all()

    def freed(self, queue: str) -> None:
        """A FIFO queue's message was deleted: the next of its group may be received now."""
        with self._changed:
            self._counts[queue] = self._counts.get(queue, 0) + 1
            self._changed.notify_all()

    def due(self, queue: str, when: float) -> None:
        """A message on `queue` becomes visible at `when` (the clock's seconds)."""
        import heapq

        with self._changed:
            heapq.heappush(self._due.setdefault(queue, []), when)
            self._changed.notify_all()

    def wait_any(self, seen: int, timeout: float) -> bool:
        """Until a message arrives on any queue after `seen` (a `total`), at most `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.total != seen, timeout)

    def seen(self, queue: str) -> tuple[int, int]:
        """What a waiter on `queue` has seen so far."""
        return self._everyone, self._counts.get(queue, 0)

    def wait(self, queue: str, seen: tuple[int, int], timeout: float, since: float) -> bool:
        """Until something arrives on `queue` after `seen` (or everyone is woken), or a message on it
        becomes visible that was not at `since` (the clock when the queue was last asked); at most
        `timeout` seconds. Whether something did."""
        import heapq

        with self._changed:
            end = self.clock() + timeout
            heap = self._due.setdefault(queue, [])  # the list due() pushes to
            while heap and heap[0] <= since:  # visible when last asked: that ask saw it
                heapq.heappop(heap)
            while self.seen(queue) == seen:
                now = self.clock()
                wake = min(end, heap[0] + self.MARGIN) if heap else end
                if now >= wake:
                    return wake < end
                self._changed.wait(wake - now)
            return True


ARRIVALS = Arrivals()


def _remembered_regions() -> None:
    """List a service's regions once per process, not with a new boto3 Session each time.

    moto asks `boto3.Session().get_available_regions(...)` as it imports its services and makes their
    backends: each new Session reads botocore's endpoint data again (JSON of a few hundred KB), half
    a second of the emulator's start. The answer depends only on botocore's data, so it is kept.
    """
    import functools

    import boto3.session

    if getattr(boto3.session.Session, "_weathergif_regions", False):
        return
    original = boto3.session.Session.get_available_regions
    session = functools.cache(boto3.session.Session)  # one Session: its endpoint data read once

    @functools.cache
    def listed(service: str, partition: str, non_regional: bool) -> tuple[str, ...]:
        return tuple(original(session(), service, partition, non_regional))

    def get_available_regions(
        self: Any, service_name: str, partition_name: str = "aws", allow_non_regional: bool = False
    ) -> list[str]:
        return list(listed(service_name, partition_name, allow_non_regional))

    boto3.session.Session.get_available_regions = get_available_regions  # type: ignore[method-assign]
    boto3.session.Session._weathergif_regions = True  # type: ignore[attr-defined]


def _quick_queues() -> None:
    """Tell a queue's time without a datetime per message, and a message's retention from its queue.

    moto 5.2.5 counts a queue's messages (visible, in flight, delayed) by asking each message, and
    each asks the clock through a naive UTC datetime; a received message's retention check reads the
    queue's attributes, which count every message, three times over. A receive from a queue of a few
    hundred messages took tens of thousands of datetimes (a quarter of a 200-frame burst's CPU).
    Here the clock is ARRIVALS' (`time.time`, the clock `datetime.now` reads, as it was at import, so
    a test that patches `time.time` moves the app's time, not the queues'), and the retention period
    is read from the queue.
    """
    import moto.sqs.models as sqs

    if getattr(sqs, "_weathergif_quick", False):
        return
    clock, unix_time, unix_time_millis = ARRIVALS.clock, sqs.unix_time, sqs.unix_time_millis

    def seconds(dt: Any = None) -> float:
        return clock() if dt is None else unix_time(dt)

    def milliseconds(dt: Any = None) -> float:
        return clock() * 1000.0 if dt is None else unix_time_millis(dt)

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        return int(self.get_queue(queue_name).message_retention_period) + message.sent_timestamp / 1000 > clock()

    sqs.unix_time, sqs.unix_time_millis = seconds, milliseconds  # type: ignore[assignment]
    sqs.SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]
    sqs._weathergif_quick = True  # type: ignore[attr-defined]


def _deduplication_interval() -> None:
    """Drop a FIFO queue's message sent with a deduplication id it took in the last five minutes,
    as SQS does, whether or not that first message is still in the queue.

    moto 5.2.5 compares a new message only with those still in the queue: once the first was
    received and deleted, a duplicate was delivered again, where "Amazon SQS continues tracking
    the deduplication ID even after the message has been received and deleted" (the SQS guide's
    FIFO key terms). A queue whose DeduplicationScope is messageGroup keeps each group's ids
    apart, as SQS does (moto compares across groups). A message moved to a dead-letter queue
    (received before, unlike a sent one) is not a send and is not deduplicated.
    """
    import collections
    import threading

    from moto.sqs.models import DEDUPLICATION_TIME_IN_SECONDS, Queue

    if getattr(Queue, "_weathergif_interval", False):
        return
    original, lock = Queue.add_message, threading.Lock()

    def add_message(self: Any, message: Any) -> None:
        dedup = message.deduplication_id
        if not (self.fifo_queue and dedup):
            return original(self, message)
        if message.approximate_receive_count == 0:  # sent, not moved here
            group = message.group_id if self.attributes.get("DeduplicationScope") == "messageGroup" else None
            now = message.sent_timestamp / 1000
            with lock:
                taken = self.__dict__.setdefault("_weathergif_taken", collections.OrderedDict())
                while taken and next(iter(taken.values())) <= now - DEDUPLICATION_TIME_IN_SECONDS:
                    taken.popitem(last=False)  # the oldest first: what is left is at most this old
                if taken.get((group, dedup), -DEDUPLICATION_TIME_IN_SECONDS) > now - DEDUPLICATION_TIME_IN_SECONDS:
                    return None  # taken, not delivered: SendMessage answers as for the first
                taken.pop((group, dedup), None)  # taken again: moved last, the oldest stays first
                taken[(group, dedup)] = now
        message.deduplication_id = None  # decided here: moto's own check (across groups, on moves) is not SQS's
        try:
            return original(self, message)
        finally:
            message.deduplication_id = dedup

    Queue.add_message = add_message  # type: ignore[method-assign]
    Queue._weathergif_interval = True  # type: ignore[attr-defined]


def _told_arrivals() -> None:
    """Tell ARRIVALS of each message moto's SQS takes, by queue, whoever sends it (SNS, S3 and
    EventBridge deliver through the same send, a batch entry by entry), and when one becomes
    visible: a delayed one at its delay's end, a received one at its visibility timeout's (or a
    changed one's); and of a FIFO queue's delete, which frees its message group."""
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_weathergif_arrivals", False):
        return
    send, receive = SQSBackend.send_message, SQSBackend.receive_message
    delete, change = SQSBackend.delete_message, SQSBackend.change_message_visibility

    def send_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        try:
            message = send(self, queue_name, *args, **kwargs)
        finally:
            ARRIVALS.arrived(queue_name)
        if message.delayed_until:
            ARRIVALS.due(queue_name, message.delayed_until / 1000)
        return message

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        messages = receive(self, queue_name, *args, **kwargs)
        for message in messages:
            ARRIVALS.due(queue_name, message.visible_at / 1000)
        return messages

    def delete_message(self: Any, queue_name: str, receipt_handle: str) -> None:
        delete(self, queue_name, receipt_handle)
        if queue_name.endswith(".fifo"):
            ARRIVALS.freed(queue_name)

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        change(self, queue_name, receipt_handle, visibility_timeout)
        ARRIVALS.due(queue_name, ARRIVALS.clock() + int(visibility_timeout))

    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    SQSBackend.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = change_message_visibility  # type: ignore[method-assign]
    SQSBackend._weathergif_arrivals = True  # type: ignore[attr-defined]


def _atomic_dynamodb() -> None:
    """Make moto's DynamoDB writes atomic and its reads see none half done, as DynamoDB's do.

    moto's server answers requests in threads, and its backend applies an update as a
    read-modify-write: two concurrent `ADD n :1` can lose one, and two transactions can
    both pass the same condition. An update of a new item first writes its keys alone and
    then the rest, in place, so a read in between sees an item of keys only. DynamoDB
    itself does none of these, and the app's exactly-once claims rest on that, so every
    write takes one lock, and every read takes it from its start to its answer's making.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoDBBackend, "_weathergif_atomic", False):
        return
    lock = threading.RLock()

    def locked(owner: type, names: tuple[str, ...]) -> None:
        for name in names:
            original = getattr(owner, name)

            @functools.wraps(original)
            def held(self, *args, __original=original, **kwargs):
                with lock:
                    return __original(self, *args, **kwargs)

            setattr(owner, name, held)

    locked(
        DynamoDBBackend,
        (
            "put_item",
            "update_item",
            "delete_item",
            "transact_write_items",
            "execute_statement",
            "execute_transaction",
            "batch_execute_statement",
        ),
    )
    # a read's handler both reads the items and makes its answer of them
    locked(DynamoHandler, ("get_item", "batch_get_item", "query", "scan", "transact_get_items"))
    DynamoDBBackend._weathergif_atomic = True


def _item_level_transaction_backups() -> None:
    """Back a DynamoDB transaction up by the items it names, not by copying its tables whole.

    moto 5.2.5 deep-copies every table a TransactWriteItems names before applying it (to roll
    back when it is cancelled), so each transaction costs time and memory in the table's size:
    1,000 claims against a table of a few thousand items took minutes and gigabytes, where
    DynamoDB's own cost does not grow with the table. Here the named items alone are kept, and
    put back when the transaction is cancelled; the tables are not copied.
    """
    import copy
    import threading

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend, "_weathergif_item_backups", False):
        return
    inside = threading.local()

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(inside, "transaction", False):
            return self  # a transaction's whole-table backup: its items are kept instead (below)
        made = self.__class__.__new__(self.__class__)
        memo[id(self)] = made
        for name, value in self.__dict__.items():
            setattr(made, name, copy.deepcopy(value, memo))
        return made

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        kept = []
        try:
            for entry in transact_items:
                op = next(iter(entry.values()))
                table = self.tables[op["TableName"]]
                key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
                found = self.get_item(op["TableName"], key)
                kept.append((op["TableName"], key, copy.deepcopy(found.to_json()["Attributes"]) if found else None))
        except Exception:  # a malformed request: moto's own checks answer it, with its own backup
            return original(self, transact_items)
        inside.transaction = True
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(kept):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise
        finally:
            inside.transaction = False

    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items
    DynamoDBBackend._weathergif_item_backups = True


def _partition_queries() -> None:
    """Query a DynamoDB partition by its own items, not by sorting the whole table.

    moto 5.2.5 answers every Query on a table's key by sorting all the table's items and
    keeping the partition's: each query costs time in the table's size (70 ms at 2,000 items,
    and growing), where DynamoDB's cost is the partition's. Here a query on the table's key
    sorts its partition alone; queries on an index are moto's own.
    """
    import threading

    from moto.dynamodb.models.table import Table

    if getattr(Table, "_weathergif_partition_queries", False):
        return
    asked = threading.local()
    whole_table, original_query = Table.all_items, Table.query

    def all_items(self: Any) -> Any:
        partition = getattr(asked, "partition", None)
        if partition is None or not self.range_key_attr:
            return whole_table(self)
        return sorted(self.items.get(partition, {}).values(), key=lambda item: item.range_key)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)  # (moto passes it 8th)
        asked.partition = None if index_name else hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            asked.partition = None

    Table.all_items, Table.query = all_items, query
    Table._weathergif_partition_queries = True


def _remembered_dispatch() -> None:
    """Find a request's service once per host, not by listing moto's folders on every request.

    moto 5.2.5's server picks the service of each request under one lock for all requests: it lists
    its package's folders (os.listdir, then a stat of each of some 150) and tries the URL patterns of
    every service in turn. Both depend on the host alone, and the hosts a run meets are a few: the
    answer for each is kept, so the lock is held for a lookup and concurrent requests no longer queue
    behind the listing (it was the emulator's largest cost in a pipeline's run).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_weathergif_remembered", False):
        return
    original = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = original(self, host)
        return found[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]
    DomainDispatcherApplication._weathergif_remembered = True


def _remembered_actions() -> None:
    """Know each service's actions once, not by listing its handler's members on every request.

    moto 5.2.5 answers every request by checking the action's name against the handler class's
    functions, which it lists with inspect.getmembers each time: a tenth of a request's CPU. A
    class's functions do not change while the server runs (every patch here is made before it
    starts), so the list is made once per class.
    """
    import functools

    import moto.core.responses
    from moto.core.utils import method_names_from_class

    if getattr(moto.core.responses, "_weathergif_actions", False):
        return
    moto.core.responses.method_names_from_class = functools.cache(  # type: ignore[assignment]
        lambda clazz: frozenset(method_names_from_class(clazz))
    )
    moto.core.responses._weathergif_actions = True  # type: ignore[attr-defined]


# An AttributeValue the serializer would give back unchanged: its type keys with JSON's own values
# (no B or BS, whose bytes it encodes), nested through M and L.
_STRINGS = ("S", "N")
_STRING_SETS = ("SS", "NS")
_BOOLEANS = ("NULL", "BOOL")


def plain_attribute_value(value: Any) -> bool:
    """`value` (a DynamoDB AttributeValue as moto answers it) holds only what JSON writes as is:
    the serializer, walking its shape, would return the same dict."""
    if type(value) is not dict or len(value) != 1:
        return False
    [(kind, inner)] = value.items()
    if kind in _STRINGS:
        return type(inner) is str
    if kind in _STRING_SETS:
        return type(inner) is list and all(type(member) is str for member in inner)
    if kind in _BOOLEANS:
        return type(inner) is bool
    if kind == "M":
        return type(inner) is dict and all(
            type(name) is str and plain_attribute_value(member) for name, member in inner.items()
        )
    if kind == "L":
        return type(inner) is list and all(plain_attribute_value(member) for member in inner)
    return False


def _quick_attribute_values() -> None:
    """Answer DynamoDB's items without walking each attribute through the output shape.

    moto 5.2.5 serializes each answer by walking botocore's output shape, member by member, with a
    picker object per value: for the items of a query that is most of the emulator's time (a quarter
    of a 400-animation tick's CPU). An AttributeValue that holds strings, booleans, and lists and
    maps of them (every one the app writes) comes out of that walk as it went in: such a value is
    put in the answer as it is, and any other (a B or BS, whose bytes are encoded) takes the walk.
    """
    from moto.core.serialize import BaseJSONSerializer

    if getattr(BaseJSONSerializer, "_weathergif_quick", False):
        return
    walk = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and plain_attribute_value(value):
            serialized[key] = value
            return
        walk(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]
    BaseJSONSerializer._weathergif_walk = walk  # type: ignore[attr-defined]  (moto's own, for the test)
    BaseJSONSerializer._weathergif_quick = True  # type: ignore[attr-defined]


def _quick_stacks() -> None:
    """Create a stack without parsing its template again and without a new RSA key per table.

    Each test starts from fresh resources: a reset and the stack created again. moto 5.2.5 parses
    each template with PyYAML's pure-Python loader (60 ms for resources/template.yaml) and gives
    each DynamoDB table a KMS key of its own, making a 2048-bit RSA key pair for it (40 ms); both
    were most of a stack's creation. Here a template's text is parsed once (each stack gets its
    own copy of the result), and each kind of KMS key pair is made once and shared: the emulator
    signs and encrypts nothing of the app's with them.
    """
    import copy

    import moto.kms.models
    from moto.cloudformation.models import Stack

    if getattr(Stack, "_weathergif_quick", False):
        return
    parse, parsed = Stack.parse_template, {}

    def parse_template(template: str) -> dict[str, Any]:
        if template not in parsed:
            parsed[template] = parse(template)
        return copy.deepcopy(parsed[template])

    generate, keys = moto.kms.models.generate_private_key, {}

    def generate_private_key(key_spec: str) -> Any:
        if key_spec not in keys:
            keys[key_spec] = generate(key_spec)
        return keys[key_spec]

    Stack.parse_template = staticmethod(parse_template)  # type: ignore[method-assign,assignment]
    moto.kms.models.generate_private_key = generate_private_key  # type: ignore[assignment]
    Stack._weathergif_quick = True


def _swagger_2_rest_apis() -> None:
    """Let moto import the Swagger 2.0 REST APIs `chalice deploy` sends, as API Gateway does.

    moto 5.2.5 refuses any document but OpenAPI 3 ("Only OpenAPI 3.x.x are currently
    supported"), and then needs `info.description`, which API Gateway does not. What
    moto reads of a document (paths, methods, responses, the API Gateway integration
    extension) is written the same in both versions, so a Swagger 2.0 document is handed
    to it under an OpenAPI 3 header.
    """
    import functools

    from moto.apigateway.models import APIGatewayBackend

    if getattr(APIGatewayBackend, "_weathergif_swagger2", False):
        return

    def as_openapi3(document: dict[str, Any]) -> dict[str, Any]:
        if document.get("swagger") != "2.0":
            return document
        converted = {key: value for key, value in document.items() if key != "swagger"}
        converted["openapi"] = "3.0.1"
        converted["info"] = {"description": "", **document.get("info", {})}
        return converted

    original_import, original_put = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api

    @functools.wraps(original_import)
    def import_rest_api(self, api_doc, *args, **kwargs):
        return original_import(self, as_openapi3(api_doc), *args, **kwargs)

    @functools.wraps(original_put)
    def put_rest_api(self, function_id, api_doc, *args, **kwargs):
        return original_put(self, function_id, as_openapi3(api_doc), *args, **kwargs)

    APIGatewayBackend.import_rest_api = import_rest_api
    APIGatewayBackend.put_rest_api = put_rest_api
    APIGatewayBackend._weathergif_swagger2 = True


def _layer_version_by_arn() -> None:
    """moto 5.2.5 has no GetLayerVersionByArn, which `chalice deploy` calls to reuse its
    dependencies' layer on every deploy after the first; it answers as GetLayerVersion."""
    from moto.awslambda.responses import LambdaResponse

    def get_layer_version_by_arn(self: Any) -> str:
        name, version = self.querystring["Arn"][0].split(":")[6:8]
        return json.dumps(self.backend.get_layer_version(name, version).get_layer_version())

    LambdaResponse.get_layer_version_by_arn = get_layer_version_by_arn


def _cloudformation_alarms() -> None:
    """Let moto's CloudFormation create the template's alarms, as CloudFormation does.

    moto 5.2.5 has CloudWatch alarms but no CloudFormation type for them: its CloudFormation
    skips an AWS::CloudWatch::Alarm with a warning, so the emulated stack would have none. Here
    the type makes the alarm through the backend's put_metric_alarm, and deleting the stack
    deletes it.
    """
    from moto.cloudformation import parsing
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    if "AWS::CloudWatch::Alarm" in parsing.get_model_map():
        return

    def query(entry: dict[str, Any]) -> MetricDataQuery:
        stat = entry.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
            metric_stat = MetricStat(
                Metric(metric["MetricName"], metric.get("Namespace"), dimensions),
                stat["Period"],
                stat["Stat"],
                stat.get("Unit"),
            )
        return MetricDataQuery(
            entry["Id"],
            entry.get("Label"),
            entry.get("Period"),
            entry.get("ReturnData", True),
            entry.get("Expression"),
            metric_stat,
        )

    class CloudFormationAlarm(Replaced, CloudFormationModel):
        """A stack's alarm: made and deleted in the CloudWatch backend, known to the stack by its name."""

        __module__ = "moto.cloudwatch.models"  # moto files its models by their module's service

        def __init__(self, account_id: str, region_name: str, alarm: Any):
            self.account_id, self.region_name = account_id, region_name
            self.name, self.arn = alarm.name, alarm.alarm_arn

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> str:
            if attribute_name == "Arn":
                return self.arn
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            raise UnformattedGetAttTemplateException()

        @staticmethod
        def remove(account_id: str, region_name: str, physical_id: str) -> None:
            cloudwatch_backends[account_id][region_name].delete_alarms([physical_id])

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[misc]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> CloudFormationAlarm:
            p = cloudformation_json["Properties"]
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=p.get("AlarmName") or resource_name,
                namespace=p.get("Namespace"),
                metric_name=p.get("MetricName"),
                metric_data_queries=[query(entry) for entry in p.get("Metrics", [])] or None,
                comparison_operator=p["ComparisonOperator"],
                evaluation_periods=int(p["EvaluationPeriods"]),
                datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
                period=int(p["Period"]) if "Period" in p else None,
                threshold=float(p["Threshold"]),
                statistic=p.get("Statistic"),
                extended_statistic=p.get("ExtendedStatistic"),
                description=p.get("AlarmDescription"),
                dimensions=p.get("Dimensions", []),
                alarm_actions=p.get("AlarmActions", []),
                ok_actions=p.get("OKActions", []),
                insufficient_data_actions=p.get("InsufficientDataActions", []),
                unit=p.get("Unit"),
                actions_enabled=p.get("ActionsEnabled", True),
                treat_missing_data=p.get("TreatMissingData"),
                evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
                threshold_metric_id=p.get("ThresholdMetricId"),
            )
            return cls(account_id, region_name, alarm)

    _forget_cloudformation_types()


def _cloudformation_subscriptions() -> None:
    """Let moto's CloudFormation subscribe to a topic (AWS::SNS::Subscription), as CloudFormation does:
    moto 5.2.5 skips the type with a warning, so the alarm topic's email subscription would be missing."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends

    if "AWS::SNS::Subscription" in parsing.get_model_map():
        return

    class CloudFormationSubscription(Replaced, CloudFormationModel):
        __module__ = "moto.sns.models"  # moto files its models by their module's service

        def __init__(self, arn: str):
            self.arn = arn

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def remove(account_id: str, region_name: str, physical_id: str) -> None:
            sns_backends[account_id][region_name].unsubscribe(physical_id)

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> CloudFormationSubscription:
            p = cloudformation_json["Properties"]
            backend = sns_backends[account_id][region_name]
            return cls(backend.subscribe(p["TopicArn"], p["Endpoint"], p["Protocol"]).arn)

    _forget_cloudformation_types()


class Replaced:
    """What the stack resource types added here share (a mixin: moto finds its types among
    CloudFormationModel's direct subclasses): an update replaces the resource (deleted, then made
    anew), and each type says how to `remove` one by its physical id."""

    physical_resource_id: str

    @staticmethod
    def remove(account_id: str, region_name: str, physical_id: str) -> None:
        raise NotImplementedError

    def delete(self, account_id: str, region_name: str) -> None:
        self.remove(account_id, region_name, self.physical_resource_id)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(  # type: ignore[attr-defined]
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        cls.remove(account_id, region_name, resource_name)


def _forget_cloudformation_types() -> None:
    """moto's CloudFormation caches the types it knows: after a type is added, it looks again."""
    from moto.cloudformation import parsing

    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


class Emulator:
    """moto's server in threads of this process; `endpoint` is its URL.

    moto's application is served by cheroot (CherryPy's WSGI server), not by the werkzeug server
    moto's own ThreadedMotoServer runs: werkzeug's closes the connection after every answer, and
    waits 10 ms for more input before it does, so each AWS call cost a new connection, a new thread
    and a wait. cheroot keeps connections open between calls, as AWS's endpoints do, and answers
    them from a pool of threads: the same calls take about a third less CPU, client and server together.
    """

    THREADS = 24  # requests answered at once: more than any test or runtime makes concurrently

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        _remembered_regions()  # before moto's services are imported
        _item_level_transaction_backups()  # before the lock wraps transact_write_items
        _atomic_dynamodb()
        _partition_queries()
        _remembered_dispatch()
        _remembered_actions()
        _quick_stacks()
        _quick_attribute_values()
        _quick_queues()
        _deduplication_interval()
        _told_arrivals()
        _swagger_2_rest_apis()
        _layer_version_by_arn()
        _cloudformation_alarms()
        _cloudformation_subscriptions()

        self._address = (host, port)
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> Emulator:
        import threading

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        server = _server(self._address, DomainDispatcherApplication(create_backend_app), self.THREADS)
        ready, failed = threading.Event(), []

        def serve() -> None:  # its threads are made here: daemons like this one, they end with the process
            try:
                server.prepare()  # binds the port: a port in use fails here
            except BaseException as exc:
                failed.append(exc)
            ready.set()
            if not failed:
                server.serve()

        threading.Thread(target=serve, name="emulator", daemon=True).start()
        ready.wait()
        if failed:
            raise failed[0]
        host, port = server.bind_addr[:2]
        self._server, self.endpoint = server, f"http://{host}:{port}"
        ARRIVALS.serving.add(self.endpoint)
        return self

    def stop(self) -> None:
        if self._server is not None:
            ARRIVALS.serving.discard(self.endpoint)
            self._server.stop()
            self._server = None

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this emulator instead of AWS."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **FAKE_CREDENTIALS}

    def use(self) -> None:
        """Point this process's boto3 at the emulator."""
        os.environ.update(self.environment())
        from chalicelib import aws

        aws.reset()

    def reset(self) -> None:
        """Forget every resource and object."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()

    def state(self) -> dict[str, Any]:
        return state(self.endpoint)

    def sent_emails(self) -> list[dict[str, Any]]:
        return sent_emails(self.endpoint)


def _server(address: tuple[str, int], app: Any, threads: int) -> Any:
    """A cheroot WSGI server of `app` on `address` that keeps connections open between requests
    and reports an S3 metadata header named with an underscore by its name as sent (AWS keeps
    `x-amz-meta-valid_time` apart from `x-amz-meta-valid-time`; WSGI's environ cannot, so moto
    reads the original spelling from a key of its own, as its werkzeug handler fills it)."""
    from cheroot import server as http, wsgi
    from moto.core.request import (
        PRESERVED_HEADER_NAMES_ENVIRON_KEY,
        environ_key_for_header,
        should_preserve_original_header_name,
    )

    class Headers(http.HeaderReader):
        def _transform_key(self, key_name: bytes) -> bytes:
            if key_name.strip().lower().startswith(b"x-amz-meta-") and b"_" in key_name:
                return key_name.strip()  # as sent: title case would change it
            return super()._transform_key(key_name)

    class Request(http.HTTPRequest):
        header_reader = Headers()

    class Connection(http.HTTPConnection):
        RequestHandlerClass = Request

    class Gateway(wsgi.Gateway_10):
        def get_environ(self) -> dict[str, Any]:
            environ = super().get_environ()
            names = (name.decode("latin-1") for name in self.req.inheaders)
            environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = {
                environ_key_for_header(name): name for name in names if should_preserve_original_header_name(name)
            }
            return environ

    server = wsgi.Server(address, app, numthreads=threads, request_queue_size=128, timeout=300)
    server.gateway, server.ConnectionClass = Gateway, Connection
    server.keep_alive_conn_limit = None  # every client's connections stay open (each boto3 client pools its own)
    return server


def state(endpoint: str) -> dict[str, Any]:
    """A moto server's view of its data (sent SES mail lives here)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        return json.load(response)


def sent_emails(endpoint: str) -> list[dict[str, Any]]:
    """Mail a moto server's SES sent: source, destinations, subject and body of each."""
    return state(endpoint).get("ses", {}).get("Message", [])
