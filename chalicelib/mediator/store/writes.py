"""Each kind of change a decision makes, as the conditional writes that make it.

WRITERS is the dispatch table (not an isinstance ladder); decisions.apply puts one decision's
writes in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ...aws.dynamodb import Put, Update, Write
from ..decide import (
    UNATTRIBUTED,
    Change,
    ClaimFetch,
    ClaimGif,
    FinishGif,
    RecordEmail,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordThumbnail,
)
from . import keys

MAX_REQUEST = 64_000  # characters of a failed request kept for a redrive
MAX_ERROR = 2000


def _record_frame(change: RecordFrame, now: int) -> list[Write]:
    return [
        Put(
            {
                "pk": keys.animation(change.image_id),
                "sk": keys.record("FRAME", change.valid_time),
                "validTime": change.valid_time,
                "location": change.location.model_dump(by_alias=True),
                "thumbnails": {},
                "correlationId": change.correlation_id,
                "recordedAt": now,
            },
            "attribute_not_exists(pk)",
        ),
        Update(keys.ANIMATIONS, change.image_id, "ADD frameCount :one", "attribute_exists(pk)", values={":one": 1}),
        _fetch_outcome(change.image_id, change.requested_time, "done", change.correlation_id, now),
    ]


def _record_fetch_request(change: RecordFetchRequest, now: int) -> list[Write]:
    return [_fetch_request(change.image_id, change.valid_time, now)]


def _claim_fetch(change: ClaimFetch, now: int) -> list[Write]:
    return [
        _fetch_request(change.image_id, change.valid_time, now),
        Update(
            keys.ANIMATIONS,
            change.image_id,
            "SET lastRequested = :t",
            "attribute_exists(pk) AND (attribute_not_exists(lastRequested) OR lastRequested = :previous)",
            values={":t": change.valid_time, ":previous": change.previous},
        ),
    ]


def _claim_gif(change: ClaimGif, now: int) -> list[Write]:
    return [
        Update(
            keys.ANIMATIONS,
            change.image_id,
            "SET gifFrameCount = :count, latestGif = :t",
            "attribute_exists(pk) AND (attribute_not_exists(gifFrameCount) OR gifFrameCount = :seen)",
            values={":count": change.frame_count, ":t": change.valid_time, ":seen": change.seen_gif_frame_count},
        ),
        Put(
            {
                "pk": keys.animation(change.image_id),
                "sk": keys.record("GIF", change.valid_time),
                "validTime": change.valid_time,
                "status": "claimed",
                "frameTimes": list(change.frame_times),
                "reason": change.reason,
                "correlationId": change.correlation_id,
                "claimedAt": now,
            },
            "attribute_not_exists(pk)",
        ),
    ]


def _finish_gif(change: FinishGif, now: int) -> list[Write]:
    values: dict[str, Any] = {":done": "done", ":location": change.location.model_dump(by_alias=True), ":now": now}
    expression = "SET #status = :done, #location = :location, doneAt = :now"
    if change.email_id:
        expression += ", emailId = :email, emailStatus = :requested"
        values.update({":email": change.email_id, ":requested": "requested"})
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            expression,
            "attribute_exists(pk) AND #status <> :done",
            names={"#status": "status", "#location": "location"},
            values=values,
        )
    ]


def _record_thumbnail(change: RecordThumbnail, now: int) -> list[Write]:
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("FRAME", change.valid_time),
            "SET thumbnails.#label = :location",
            "attribute_exists(pk) AND attribute_not_exists(thumbnails.#label)",
            names={"#label": change.label},
            values={":location": change.location.model_dump(by_alias=True)},
        )
    ]


def _record_email(change: RecordEmail, now: int) -> list[Write]:
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            "SET emailStatus = :sent, sesMessageId = :id, emailedAt = :now",
            "attribute_exists(pk) AND (attribute_not_exists(emailStatus) OR emailStatus <> :sent)",
            values={":sent": "sent", ":id": change.message_id, ":now": now},
        )
    ]


def _record_failure(change: RecordFailure, now: int) -> list[Write]:
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
                "request": request if request and len(request) <= MAX_REQUEST else None,
            },
            "attribute_not_exists(pk)",
        ),
        *_failed_outcome(change, now),
    ]


def _failed_outcome(change: RecordFailure, now: int) -> list[Write]:
    """What the failure ends: the fetch request, the GIF claim, or the GIF's email."""
    if change.action == "fetch-amp-image":
        return [_fetch_outcome(change.image_id, change.valid_time, "failed", change.correlation_id, now, change.error)]
    if change.action not in ("create-gif", "send-email") or change.image_id == UNATTRIBUTED:
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


def _fetch_request(image_id: str, valid_time: int, now: int) -> Put:
    return Put(
        {
            "pk": keys.animation(image_id),
            "sk": keys.record("FETCH", valid_time),
            "validTime": valid_time,
            "status": "requested",
            "requestedAt": now,
        },
        "attribute_not_exists(pk)",
    )


def _fetch_outcome(
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


# Each kind of change, and the writes that make it.
WRITERS: dict[type[Change], Callable[[Any, int], list[Write]]] = {
    RecordFrame: _record_frame,
    RecordFetchRequest: _record_fetch_request,
    ClaimFetch: _claim_fetch,
    ClaimGif: _claim_gif,
    FinishGif: _finish_gif,
    RecordThumbnail: _record_thumbnail,
    RecordEmail: _record_email,
    RecordFailure: _record_failure,
}
