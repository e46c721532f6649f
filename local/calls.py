"""Counting the AWS calls the app makes: a botocore "before-call" hook on its shared clients.

    with Calls() as calls:
        service.fetch_due_frames(now)
    calls.total, calls.by_operation  # {"dynamodb.TransactWriteItems": 1000, ...}
    calls.write_units                 # {"ANIM#canyon": 4, ...}: DynamoDB write units by partition

Every call the app makes goes through chalicelib.aws.clients.client(service), one client per
service per process, so a hook on those clients sees each call once, retries not included
(botocore's retries happen below "before-call"). `paused()` stops counting for work that is
not the app's own (a test looking at a queue, Lambda's event source mapping polling it).
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

SERVICES = ("dynamodb", "sns", "sqs", "s3", "ses")


class Calls:
    def __init__(self, services: tuple[str, ...] = SERVICES):
        self.services = services
        self.by_operation: collections.Counter[str] = collections.Counter()
        self.write_units: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._counting = True

    def _count(self, model: Any, **_: Any) -> None:
        if self._counting:
            with self._lock:
                self.by_operation[f"{model.service_model.service_name}.{model.name}"] += 1

    def _writes(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """Write units by partition key, as DynamoDB bills them: 1 per KB of item (the request's item,
        or 1 KB for an update, whose result it does not show), twice in a transaction."""
        if not self._counting:
            return
        units: list[tuple[str, int]] = []
        if model.name == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                for kind, action in entry.items():
                    if kind != "ConditionCheck":
                        units.append(_units(action, 2))
        elif model.name == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                units += [
                    _units(request.get("PutRequest") or request.get("DeleteRequest", {}), 1) for request in requests
                ]
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            units.append(_units(params, 1))
        with self._lock:
            for pk, n in units:
                self.write_units[pk] += n

    def __enter__(self) -> Calls:
        from chalicelib.aws import client

        for service in self.services:
            client(service).meta.events.register("before-call", self._count, unique_id=f"calls-{id(self)}")
        client("dynamodb").meta.events.register(
            "before-parameter-build.dynamodb", self._writes, unique_id=f"writes-{id(self)}"
        )
        return self

    def __exit__(self, *_: Any) -> None:
        from chalicelib.aws import client

        for service in self.services:
            client(service).meta.events.unregister("before-call", unique_id=f"calls-{id(self)}")
        client("dynamodb").meta.events.unregister("before-parameter-build.dynamodb", unique_id=f"writes-{id(self)}")

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._counting = False
        try:
            yield
        finally:
            self._counting = True

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()
            self.write_units.clear()

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.by_operation)

    def of(self, service: str) -> int:
        return sum(n for name, n in self.by_operation.items() if name.startswith(f"{service}."))


def _units(action: dict[str, Any], factor: int) -> tuple[str, int]:
    item = action.get("Item") or action.get("Key") or {}
    size = len(json.dumps(item)) if "Item" in action else 1024
    return str(item.get("pk", {}).get("S", "?")), factor * max(1, math.ceil(size / 1024))


def run_tick(kind: str, now: int, calls: Calls | None = None) -> dict[str, Any]:
    """A schedule's tick as Lambda runs it: the schedule's handler, then each slice from the tick
    queue by the tick handler (its event source mapping's receives and deletes not counted), until
    the queue is empty. Returns the slices run, the animations asked, and (with `calls`) the calls
    of the schedule's handler and of each slice."""
    from chalicelib.aws import client
    from chalicelib.mediator import service, ticks
    from chalicelib.mediator.metering import metered
    from chalicelib.settings import names

    with metered(f"{'fetch_due_frames' if kind == 'fetch' else 'rebuild_gifs'}"):  # its usage recorded, as on Lambda
        service.mediator().tick(kind, now)  # type: ignore[arg-type]
    scheduler = calls.snapshot() if calls else collections.Counter()
    per_slice: list[collections.Counter[str]] = []
    sqs = client("sqs")
    with calls.paused() if calls else contextlib.nullcontext():
        url = sqs.get_queue_url(QueueName=names().tick_queue)["QueueUrl"]
    slices = asked = 0
    while True:
        with calls.paused() if calls else contextlib.nullcontext():
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return {"slices": slices, "asked": asked, "scheduler": scheduler, "per_slice": per_slice}
            sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        before = calls.snapshot() if calls else collections.Counter()
        with metered("tick"):
            result = service.run_slice(ticks.parse_slice(got[0]["Body"]))
        if calls:
            per_slice.append(calls.snapshot() - before)
        slices += 1
        asked += len(result["done"])
