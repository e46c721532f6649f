"""What the workers' answers change: a frame's thumbnails, a GIF's email, a failure, a fetch's outcome.

writes.WRITERS dispatches to these as to its own; each returns conditional writes.
"""

from __future__ import annotations

import json
from typing import Any

from ...aws.dynamodb import Put, Update
from ...messages import MAX_ERROR, MAX_REQUEST_COPY
from ..decide import UNATTRIBUTED, RecordEmail, RecordFailure, RecordFetchRequest, RecordThumbnail
from . import keys, status


Writes = list[Put | Update]


def record_fetch_request(change: RecordFetchRequest, now: int) -> Writes:
    return [fetch_request(change.image_id, change.valid_time, change.request.to_json(), now)]


def record_thumbnail(change: RecordThumbnail, now: int) -> Writes:
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("FRAME", change.valid_time)
            if change.run_time is None
            else keys.run_record("FRAME", change.run_time, change.valid_time),
            "SET thumbnails.#label = :location",
            "attribute_exists(pk) AND attribute_not_exists(thumbnails.#label)",
            names={"#label": change.label},
            values={":location": change.location.to_dict()},
        )
    ]


def record_email(change: RecordEmail, now: int) -> Writes:
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            "SET emailStatus = :sent, sesMessageId = :id, emailedAt = :now REMOVE emailRequest",
            "attribute_exists(pk) AND (attribute_not_exists(emailStatus) OR emailStatus <> :sent)",
            values={":sent": "sent", ":id": change.message_id, ":now": now},
        )
    ]


def record_failure(change: RecordFailure, now: int) -> Writes:
    request = json.dumps(change.request, separators=(",", ":"), default=str) if change.request else None
    return [
        Put(
            {
                "pk": keys.animation(change.image_id),
                "sk": keys.failure(change.valid_time, change.action, change.detail),
                "validTime": change.valid_time,
                "action": change.action,
                "detail": change.detail or None,
                "error": change.error[:MAX_ERROR],
                "correlationId": change.correlation_id,
                "failedAt": now,
                "request": request if request and len(request) <= MAX_REQUEST_COPY else None,
            },
            "attribute_not_exists(pk)",
        ),
        *failed_outcome(change, now),
        status.failure_entry(change.image_id, change.valid_time, change.action, change.error, now, change.detail),
        *(
            [  # a scheduled frame whose fetch failed: the tick asks for it again, while it is in the window
                Update(
                    keys.animation(change.image_id),
                    keys.STATE,
                    "ADD failedSlots :slot",
                    "attribute_exists(pk)",
                    values={":slot": {f"{change.failed_slot[0]}:{change.failed_slot[1]}"}},
                )
            ]
            if change.failed_slot
            else []
        ),
    ]


def failed_outcome(change: RecordFailure, now: int) -> Writes:
    """What the failure ends: the fetch request, the GIF claim, or the GIF's email."""
    if change.action == "fetch-amp-image" and change.run_time is not None:  # a run's frame: counted as failed
        return [
            run_fetch_outcome(change.image_id, change.run_time, change.valid_time, "failed", now, change.error),
            Update(
                keys.animation(change.image_id),
                keys.record("RUN", change.run_time),
                "ADD failed :one",
                values={":one": 1},
            ),
        ]
    if change.action == "fetch-amp-image":
        return [fetch_outcome(change.image_id, change.valid_time, "failed", change.correlation_id, now, change.error)]
    if change.action not in ("create-gif", "send-email") or change.image_id == UNATTRIBUTED:
        return []
    if change.action == "create-gif" and change.detail:  # one format of a GIF made: the GIF is done
        return []
    field, unless = ("status", "done") if change.action == "create-gif" else ("emailStatus", "sent")
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            "SET #field = :failed",
            "attribute_exists(pk) AND (attribute_not_exists(#field) OR #field <> :unless)",
            names={"#field": field},
            values={":failed": "failed", ":unless": unless},
        )
    ]


def fetch_request(image_id: str, valid_time: int, request: str, now: int, replace_ended: bool = False) -> Put:
    """A fetch's record, with its request (a claim: there is none). `replace_ended`: a scheduled
    frame's may replace a person's fetch of the same time that has ended (the schedule's claim on the
    animation's last request is what makes it once)."""
    item = {
        "pk": keys.animation(image_id),
        "sk": keys.record("FETCH", valid_time),
        "validTime": valid_time,
        "status": "requested",
        "request": request,
        "requestedAt": now,
    }
    if replace_ended:
        return Put(
            item,
            "attribute_not_exists(pk) OR #status <> :requested",
            {"#status": "status"},
            {":requested": "requested"},
        )
    return Put(item, "attribute_not_exists(pk)")


def fetch_again(image_id: str, valid_time: int, request: str, attempt: int, now: int) -> Update:
    """A failed fetch asked again (a claim: only a failed one is)."""
    return Update(
        keys.animation(image_id),
        keys.record("FETCH", valid_time),
        "SET #status = :requested, #request = :request, requestedAt = :now, attempt = :attempt REMOVE #error, endedAt",
        "#status = :failed",
        names={"#status": "status", "#error": "error", "#request": "request"},
        values={":requested": "requested", ":request": request, ":now": now, ":attempt": attempt, ":failed": "failed"},
    )


def run_fetch_outcome(
    image_id: str, run_time: int, valid_time: int, status: str, now: int, error: str | None = None
) -> Update:
    """Close the fetch request of a run's frame."""
    values: dict[str, Any] = {":status": status, ":now": now}
    expression = "SET #status = :status, endedAt = :now"
    names = {"#status": "status"}
    if error:
        expression += ", #error = :error"
        values[":error"] = error[:MAX_ERROR]
        names["#error"] = "error"
    return Update(
        keys.animation(image_id), keys.run_record("FETCH", run_time, valid_time), expression, names=names, values=values
    )


def fetch_outcome(
    image_id: str, valid_time: int, status: str, correlation_id: str | None, now: int, error: str | None = None
) -> Update:
    """Close the fetch request of a frame (there may be none: a manual fetch)."""
    values: dict[str, Any] = {":status": status, ":now": now, ":t": valid_time}
    expression = "SET #status = :status, endedAt = :now, validTime = :t"
    if correlation_id:
        expression += ", correlationId = :run"
        values[":run"] = correlation_id
    names = {"#status": "status"}
    if error:
        expression += ", #error = :error"
        values[":error"] = error[:MAX_ERROR]
        names["#error"] = "error"
    return Update(keys.animation(image_id), keys.record("FETCH", valid_time), expression, names=names, values=values)
