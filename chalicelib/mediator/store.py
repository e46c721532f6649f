"""The mediator's state in one DynamoDB table (pk, sk; TTL on expiresAt).

    pk                 sk                        what
    ANIMATIONS         {imageId}                 configuration and counters of an animation
    ANIM#{imageId}     FRAME#{validTime}         a frame: location, thumbnails
    ANIM#{imageId}     FETCH#{validTime}         a fetch asked for, and how it ended
    ANIM#{imageId}     GIF#{validTime}           a GIF (by its newest frame): claimed, done, emailed
    ANIM#{imageId}     FAIL#{validTime}#{action} a failure reply
    OUTBOX             {decision key}            messages of a decision not yet all sent
    LOG#{runId}        {ms}#{seq}                the event log of a run (TTL)

Every change a decision makes is a conditional write, and one decision's changes and
its outbox entry go in one transaction: it happens once, or not at all.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

from ..aws import client
from ..messages import Location, Message, parse
from ..settings import names
from .animation import Animation
from .decide import (
    AnimationState,
    Change,
    ClaimFetch,
    ClaimGif,
    Decision,
    FinishGif,
    Frame,
    RecordEmail,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordThumbnail,
)

ANIMATIONS = "ANIMATIONS"
OUTBOX = "OUTBOX"
DEAD = "DEAD"
MAX_REQUEST = 64_000  # characters of a failed request kept for a redrive
WIDTH = 12  # validTime digits in sort keys, so they sort as numbers


class AlreadyDecided(Exception):
    """The decision's conditions failed: it was made before (or another one won)."""


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _table() -> str:
    return names().table


def _ddb() -> Any:
    return client("dynamodb")


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    serializer, _ = _serializer()
    return {key: serializer.serialize(value) for key, value in item.items() if value is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    _, deserializer = _serializer()
    return {key: _numbers(deserializer.deserialize(value)) for key, value in item.items()}


def _numbers(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_numbers(v) for v in value]
    return value


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _anim_pk(image_id: str) -> str:
    return f"ANIM#{image_id}"


def _at(valid_time: int) -> str:
    return f"{valid_time:0{WIDTH}d}"


def _expires(days: float) -> int:
    return int(time.time() + days * 86400)


def log_days() -> float:
    return float(os.environ.get("EVENT_LOG_DAYS") or 14)


# Animations -------------------------------------------------------------------------


def put_animation(animation: Animation) -> bool:
    """Create or replace the configuration; counters are kept. True if this call created it.

    A conditional write decides it: "create if absent", else "replace if present", so of any
    number of concurrent first writes exactly one is told it created the animation. (An
    unconditional update answering its old item would do on DynamoDB, but moto reads that old
    item outside the write, so two writers could both see none.) A delete in between is retried.
    """
    ddb = _ddb()
    update = {
        "TableName": _table(),
        "Key": _key(ANIMATIONS, animation.image_id),
        "UpdateExpression": "SET #config = :config, updatedAt = :now",
        "ExpressionAttributeNames": {"#config": "config"},
        "ExpressionAttributeValues": _wire({":config": animation.to_dict(), ":now": int(time.time())}),
    }
    for _ in range(5):
        for condition, created in (("attribute_not_exists(pk)", True), ("attribute_exists(pk)", False)):
            try:
                ddb.update_item(**update, ConditionExpression=condition)
                return created
            except ddb.exceptions.ConditionalCheckFailedException:
                continue
    raise RuntimeError(f"animation {animation.image_id!r} was created and deleted under every write: giving up")


def get_animation(image_id: str, consistent: bool = False) -> AnimationState | None:
    got = _ddb().get_item(TableName=_table(), Key=_key(ANIMATIONS, image_id), ConsistentRead=consistent)
    return _state(_plain(got["Item"])) if "Item" in got else None


def delete_animation(image_id: str) -> bool:
    try:
        _ddb().delete_item(
            TableName=_table(), Key=_key(ANIMATIONS, image_id), ConditionExpression="attribute_exists(pk)"
        )
    except _ddb().exceptions.ConditionalCheckFailedException:
        return False
    return True


def delete_records(image_id: str) -> int:
    """Every frame, GIF, fetch and failure record of an animation; how many there were."""
    ddb, deleted, start = _ddb(), 0, None
    while True:
        query: dict[str, Any] = {
            "TableName": _table(),
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _anim_pk(image_id)}},
            "ProjectionExpression": "pk, sk",
        }
        if start:
            query["ExclusiveStartKey"] = start
        page = ddb.query(**query)
        keys = page.get("Items", [])
        for i in range(0, len(keys), 25):
            ddb.batch_write_item(RequestItems={_table(): [{"DeleteRequest": {"Key": k}} for k in keys[i : i + 25]]})
        deleted += len(keys)
        start = page.get("LastEvaluatedKey")
        if not start:
            return deleted


def list_animations(limit: int = 100, after: str | None = None) -> tuple[list[AnimationState], str | None]:
    """One page of animations in imageId order, and the imageId to continue after."""
    query: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": ANIMATIONS}},
        "Limit": limit,
    }
    if after:
        query["ExclusiveStartKey"] = _key(ANIMATIONS, after)
    page = _ddb().query(**query)
    states = [_state(_plain(item)) for item in page.get("Items", [])]
    last = page.get("LastEvaluatedKey")
    return states, (last["sk"]["S"] if last else None)


def all_animations() -> Iterator[AnimationState]:
    after = None
    while True:
        states, after = list_animations(100, after)
        yield from states
        if not after:
            return


def _state(item: dict[str, Any]) -> AnimationState:
    return AnimationState(
        animation=Animation.model_validate(item["config"], context={"stored": True}),
        frame_count=item.get("frameCount", 0),
        gif_frame_count=item.get("gifFrameCount", 0),
        last_requested=item.get("lastRequested", 0),
        newest_frame=item.get("newestFrame", 0),
        latest_gif=item.get("latestGif", 0),
    )


# Frames and GIFs --------------------------------------------------------------------


def newest_frames(image_id: str, count: int, up_to: int | None = None) -> list[Frame]:
    """The newest `count` frames (valid at or before `up_to`), newest first: a query, never a scan."""
    upper = f"FRAME#{_at(up_to)}" if up_to is not None else "FRAME#~"
    page = _ddb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":pk": {"S": _anim_pk(image_id)}, ":first": {"S": "FRAME#"}, ":last": {"S": upper},
        },
        ScanIndexForward=False,
        Limit=count,
        ConsistentRead=True,
    )
    return [_frame(_plain(item)) for item in page.get("Items", [])]


def _frame(item: dict[str, Any]) -> Frame:
    return Frame(
        valid_time=item["validTime"],
        location=Location.model_validate(item["location"]),
        thumbnails={label: Location.model_validate(loc) for label, loc in item.get("thumbnails", {}).items()},
    )


def items(image_id: str, kind: str, limit: int = 50, newest_first: bool = True) -> list[dict[str, Any]]:
    """Raw records of one kind ("FRAME", "GIF", "FETCH", "FAIL") of an animation."""
    page = _ddb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :kind)",
        ExpressionAttributeValues={":pk": {"S": _anim_pk(image_id)}, ":kind": {"S": f"{kind}#"}},
        ScanIndexForward=not newest_first,
        Limit=limit,
    )
    return [_plain(item) for item in page.get("Items", [])]


def record(image_id: str, kind: str, valid_time: int) -> dict[str, Any] | None:
    """One raw frame or GIF record ("FRAME", "GIF") by its key, or None: a get, not a query."""
    got = _ddb().get_item(TableName=_table(), Key=_key(_anim_pk(image_id), f"{kind}#{_at(valid_time)}"))
    return _plain(got["Item"]) if "Item" in got else None


def note_newest_frame(image_id: str, valid_time: int) -> None:
    """Move the animation's newest-frame mark forward (never back)."""
    try:
        _ddb().update_item(
            TableName=_table(),
            Key=_key(ANIMATIONS, image_id),
            UpdateExpression="SET newestFrame = :t",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(newestFrame) OR newestFrame < :t)",
            ExpressionAttributeValues={":t": {"N": str(valid_time)}},
        )
    except _ddb().exceptions.ConditionalCheckFailedException:
        pass


# Decisions --------------------------------------------------------------------------


def apply(decision: Decision) -> None:
    """All of a decision's changes and its outbox entry, in one transaction.

    Raises AlreadyDecided when a condition fails: the decision was made before.
    """
    writes = [write for change in decision.changes for write in _writes(change)]
    if decision.messages:
        writes.append({"Put": {
            "TableName": _table(),
            "Item": _wire({
                "pk": OUTBOX, "sk": decision.key, "createdAt": int(time.time()), "expiresAt": _expires(7),
                "messages": [message.to_json() for message in decision.messages],
            }),
            "ConditionExpression": "attribute_not_exists(pk)",
        }})
    if not writes:
        return
    try:
        _ddb().transact_write_items(TransactItems=writes)
    except _ddb().exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" in reasons and set(reasons) <= {"ConditionalCheckFailed", "None"}:
            raise AlreadyDecided(decision.key) from None
        raise  # a conflict or throttling: worth a retry


def pending(key: str) -> list[Message]:
    """Messages a decision stored and has not yet marked sent."""
    got = _ddb().get_item(TableName=_table(), Key=_key(OUTBOX, key), ConsistentRead=True)
    if "Item" not in got:
        return []
    return [parse(text) for text in _plain(got["Item"]).get("messages", [])]


def sent(key: str) -> None:
    _ddb().delete_item(TableName=_table(), Key=_key(OUTBOX, key))


def stale_outbox(older_than: int) -> list[str]:
    """Decision keys whose messages have waited more than `older_than` seconds."""
    cutoff = int(time.time()) - older_than
    page = _ddb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        FilterExpression="createdAt < :cutoff",
        ExpressionAttributeValues={":pk": {"S": OUTBOX}, ":cutoff": {"N": str(cutoff)}},
    )
    return [item["sk"]["S"] for item in page.get("Items", [])]


def _writes(change: Change) -> list[dict[str, Any]]:
    table, now = _table(), int(time.time())
    if isinstance(change, RecordFrame):
        return [
            {"Put": {
                "TableName": table,
                "Item": _wire({
                    "pk": _anim_pk(change.image_id), "sk": f"FRAME#{_at(change.valid_time)}",
                    "validTime": change.valid_time, "location": change.location.model_dump(by_alias=True),
                    "thumbnails": {}, "correlationId": change.correlation_id, "recordedAt": now,
                }),
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
            {"Update": {
                "TableName": table,
                "Key": _key(ANIMATIONS, change.image_id),
                "UpdateExpression": "ADD frameCount :one",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }},
            _fetch_outcome(change.image_id, change.requested_time, "done", change.correlation_id),
        ]
    if isinstance(change, RecordFetchRequest):
        return [_fetch_request(change.image_id, change.valid_time, now)]
    if isinstance(change, ClaimFetch):
        return [
            _fetch_request(change.image_id, change.valid_time, now),
            {"Update": {
                "TableName": table,
                "Key": _key(ANIMATIONS, change.image_id),
                "UpdateExpression": "SET lastRequested = :t",
                "ConditionExpression": "attribute_exists(pk) AND "
                "(attribute_not_exists(lastRequested) OR lastRequested = :previous)",
                "ExpressionAttributeValues": _wire({":t": change.valid_time, ":previous": change.previous}),
            }},
        ]
    if isinstance(change, ClaimGif):
        return [
            {"Update": {
                "TableName": table,
                "Key": _key(ANIMATIONS, change.image_id),
                "UpdateExpression": "SET gifFrameCount = :count, latestGif = :t",
                "ConditionExpression": "attribute_exists(pk) AND "
                "(attribute_not_exists(gifFrameCount) OR gifFrameCount = :seen)",
                "ExpressionAttributeValues": _wire({
                    ":count": change.frame_count, ":t": change.valid_time, ":seen": change.seen_gif_frame_count,
                }),
            }},
            {"Put": {
                "TableName": table,
                "Item": _wire({
                    "pk": _anim_pk(change.image_id), "sk": f"GIF#{_at(change.valid_time)}",
                    "validTime": change.valid_time, "status": "claimed", "frameTimes": list(change.frame_times),
                    "reason": change.reason, "correlationId": change.correlation_id, "claimedAt": now,
                }),
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
        ]
    if isinstance(change, FinishGif):
        values = {":done": "done", ":location": change.location.model_dump(by_alias=True), ":now": now}
        expression = "SET #status = :done, #location = :location, doneAt = :now"
        if change.email_id:
            expression += ", emailId = :email, emailStatus = :requested"
            values.update({":email": change.email_id, ":requested": "requested"})
        return [{"Update": {
            "TableName": table,
            "Key": _key(_anim_pk(change.image_id), f"GIF#{_at(change.valid_time)}"),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk) AND #status <> :done",
            "ExpressionAttributeNames": {"#status": "status", "#location": "location"},
            "ExpressionAttributeValues": _wire(values),
        }}]
    if isinstance(change, RecordThumbnail):
        return [{"Update": {
            "TableName": table,
            "Key": _key(_anim_pk(change.image_id), f"FRAME#{_at(change.valid_time)}"),
            "UpdateExpression": "SET thumbnails.#label = :location",
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(thumbnails.#label)",
            "ExpressionAttributeNames": {"#label": change.label},
            "ExpressionAttributeValues": _wire({":location": change.location.model_dump(by_alias=True)}),
        }}]
    if isinstance(change, RecordEmail):
        return [{"Update": {
            "TableName": table,
            "Key": _key(_anim_pk(change.image_id), f"GIF#{_at(change.valid_time)}"),
            "UpdateExpression": "SET emailStatus = :sent, sesMessageId = :id, emailedAt = :now",
            "ConditionExpression": "attribute_exists(pk) AND "
            "(attribute_not_exists(emailStatus) OR emailStatus <> :sent)",
            "ExpressionAttributeValues": _wire({":sent": "sent", ":id": change.message_id, ":now": now}),
        }}]
    if isinstance(change, RecordFailure):
        request = json.dumps(change.request, separators=(",", ":"), default=str) if change.request else None
        return [
            {"Put": {
                "TableName": table,
                "Item": _wire({
                    "pk": _anim_pk(change.image_id), "sk": f"FAIL#{_at(change.valid_time)}#{change.action}",
                    "validTime": change.valid_time, "action": change.action, "error": change.error[:2000],
                    "correlationId": change.correlation_id, "failedAt": now,
                    "request": request if request and len(request) <= MAX_REQUEST else None,
                }),
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
            *_failed_outcome(change),
        ]
    raise TypeError(f"no writes for {change!r}")


def _failed_outcome(change: RecordFailure) -> list[dict[str, Any]]:
    """What the failure ends: the fetch request, the GIF claim, or the GIF's email."""
    if change.action == "fetch-amp-image":
        return [_fetch_outcome(change.image_id, change.valid_time, "failed", change.correlation_id, change.error)]
    if change.action not in ("create-gif", "send-email") or change.image_id == "unknown":
        return []
    field, unless = ("status", "done") if change.action == "create-gif" else ("emailStatus", "sent")
    return [{"Update": {
        "TableName": _table(),
        "Key": _key(_anim_pk(change.image_id), f"GIF#{_at(change.valid_time)}"),
        "UpdateExpression": "SET #field = :failed",
        "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(#field) OR #field <> :unless)",
        "ExpressionAttributeNames": {"#field": field},
        "ExpressionAttributeValues": _wire({":failed": "failed", ":unless": unless}),
    }}]


def _fetch_request(image_id: str, valid_time: int, now: int) -> dict[str, Any]:
    return {"Put": {
        "TableName": _table(),
        "Item": _wire({
            "pk": _anim_pk(image_id), "sk": f"FETCH#{_at(valid_time)}",
            "validTime": valid_time, "status": "requested", "requestedAt": now,
        }),
        "ConditionExpression": "attribute_not_exists(pk)",
    }}


def _fetch_outcome(
    image_id: str, valid_time: int, status: str, correlation_id: str | None, error: str | None = None
) -> dict[str, Any]:
    """Close the fetch request of a frame (there may be none: a manual fetch)."""
    values: dict[str, Any] = {":status": status, ":now": int(time.time()), ":t": valid_time}
    expression = "SET #status = :status, endedAt = :now, validTime = :t"
    if correlation_id:
        expression += ", correlationId = :run"
        values[":run"] = correlation_id
    if error:
        expression += ", #error = :error"
        values[":error"] = error[:2000]
    return {"Update": {
        "TableName": _table(),
        "Key": _key(_anim_pk(image_id), f"FETCH#{_at(valid_time)}"),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {"#status": "status", **({"#error": "error"} if error else {})},
        "ExpressionAttributeValues": _wire(values),
    }}


# The event log ----------------------------------------------------------------------


def log_event(direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None:
    """One line of a run's timeline: a message in or out (kept EVENT_LOG_DAYS)."""
    data = message.to_dict() if isinstance(message, Message) else message
    if isinstance(data.get("body"), str) and len(data["body"]) > 2000:
        data = {**data, "body": data["body"][:2000] + "..."}
    now_ms = int(time.time() * 1000)
    _ddb().put_item(
        TableName=_table(),
        Item=_wire({
            "pk": f"LOG#{_run_key(correlation_id)}",
            "sk": f"{now_ms:013d}#{uuid.uuid4().hex[:8]}",
            "at": now_ms,
            "direction": direction,
            "type": str(data.get("type", "?")),
            "imageId": data.get("imageId"),
            "message": json.dumps(data, separators=(",", ":"), default=str),
            "expiresAt": _expires(log_days()),
        }),
    )


def _run_key(correlation_id: Any) -> str:
    """A run's log key; a correlation id that cannot be one (it came with a message) logs as 'none'."""
    if isinstance(correlation_id, str) and 0 < len(correlation_id) <= 200:
        return correlation_id
    return "none"


def timeline(correlation_id: str, limit: int = 200) -> list[dict[str, Any]]:
    page = _ddb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"LOG#{correlation_id}"}},
        Limit=limit,
    )
    return [_plain(item) for item in page.get("Items", [])]


# Failures: requests that failed for good, and the mediator's dead letters -------------------


def failures(image_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """An animation's recorded failures, newest first, each with its request when it was kept."""
    return [{**item, "request": json.loads(item["request"]) if item.get("request") else None}
            for item in items(image_id, "FAIL", limit=limit)]


def forget_failure(image_id: str, valid_time: int, action: str) -> bool:
    """Delete a failure record (it was redriven: a new failure can be recorded); True if it was there."""
    try:
        _ddb().delete_item(TableName=_table(), Key=_key(_anim_pk(image_id), f"FAIL#{_at(valid_time)}#{action}"),
                           ConditionExpression="attribute_exists(pk)")
    except _ddb().exceptions.ConditionalCheckFailedException:
        return False
    return True


def record_dead_letter(message_id: str, body: str, sent_at: int, error: str | None) -> None:
    """A message the mediator gave up on, kept until it is redriven (once, however often it is delivered)."""
    try:
        _ddb().put_item(
            TableName=_table(),
            Item=_wire({
                "pk": DEAD, "sk": message_id, "body": body, "sentAt": sent_at, "error": error,
                "deadAt": int(time.time()),
            }),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except _ddb().exceptions.ConditionalCheckFailedException:
        pass


def dead_letters(limit: int = 100) -> list[dict[str, Any]]:
    page = _ddb().query(
        TableName=_table(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": DEAD}},
        Limit=limit,
        ConsistentRead=True,
    )
    return [_plain(item) for item in page.get("Items", [])]


def forget_dead_letter(message_id: str) -> None:
    _ddb().delete_item(TableName=_table(), Key=_key(DEAD, message_id))


def last_error(message_id: str) -> str | None:
    """The latest error the mediator logged for an SQS message (by its message id)."""
    errors = [e for e in timeline(f"sqs-{message_id}") if e["direction"] == "error"]
    return json.loads(errors[-1]["message"]).get("error") if errors else None
