"""A model run's writes: its claim (its record, each frame's fetch record, the animation's newest run),
each frame counted on its run, and its settling (a forecast's GIF claimed with it)."""

from __future__ import annotations

from typing import Any

from ...aws.dynamodb import Put, Update, Write
from ..decide import ClaimRun, RecordRunFrame, SettleRun
from . import keys, outcomes
from .claims import gif_record

Writes = list[Write]


def claim_run(change: ClaimRun, now: int) -> Writes:
    """A model run's record and each frame's fetch record (with its request); the animation's newest
    run moves to it, from the one the decider saw (a claim), with the run's deadline."""
    values: dict[str, Any] = {":run": change.run_time, ":deadline": change.deadline}
    condition = "attribute_exists(pk) AND " + (
        "lastRun = :seen" if change.seen_last_run else "attribute_not_exists(lastRun)"
    )
    if change.seen_last_run:
        values[":seen"] = change.seen_last_run
    record = {
        "pk": keys.animation(change.image_id),
        "sk": keys.record("RUN", change.run_time),
        "runTime": change.run_time,
        "frameTimes": [request.valid_time for request in change.requests],
        "got": 0,
        "failed": 0,
        "claimedAt": now,
        "deadline": change.deadline,
    }
    fetches: Writes = [
        Put(
            {
                "pk": keys.animation(change.image_id),
                "sk": keys.run_record("FETCH", change.run_time, request.valid_time),
                "validTime": request.valid_time,
                "runTime": change.run_time,
                "status": "requested",
                "request": request.to_json(),
                "requestedAt": now,
            },
            "attribute_not_exists(pk)",
        )
        for request in change.requests
    ]
    state = Update(
        keys.animation(change.image_id),
        keys.STATE,
        "SET lastRun = :run, runDeadline = :deadline",
        condition,
        values=values,
    )
    return [Put(record, "attribute_not_exists(pk)"), *fetches, state]


def record_run_frame(change: RecordRunFrame, now: int) -> Writes:
    """A run's frame (its claim), counted on its run; the fetch it answers closed."""
    frame = {
        "pk": keys.animation(change.image_id),
        "sk": keys.run_record("FRAME", change.run_time, change.valid_time),
        "validTime": change.valid_time,
        "runTime": change.run_time,
        "location": change.location.to_dict(),
        "thumbnails": {},
        "requests": [request.to_json() for request in change.requests] or None,
        "correlationId": change.correlation_id,
        "recordedAt": now,
    }
    return [
        Put(frame, "attribute_not_exists(pk)"),
        Update(
            keys.animation(change.image_id),
            keys.record("RUN", change.run_time),
            "ADD got :one",
            "attribute_exists(pk)",
            values={":one": 1},
        ),
        outcomes.run_fetch_outcome(change.image_id, change.run_time, change.valid_time, "done", now),
    ]


def settle_run(change: SettleRun, now: int) -> Writes:
    """A run settled (once): with a forecast's GIF claimed; the animation's newest settled run moved."""
    writes: Writes = [
        Update(
            keys.animation(change.image_id),
            keys.record("RUN", change.run_time),
            "SET settled = :now",
            "attribute_exists(pk) AND attribute_not_exists(settled)",
            values={":now": now},
        )
    ]
    if change.newer:
        writes.append(
            Update(
                keys.animation(change.image_id),
                keys.STATE,
                "SET completeRun = :run",
                "attribute_exists(pk)",
                values={":run": change.run_time},
            )
        )
    if change.gif is not None:
        writes.append(gif_record(change.gif, now))
    return writes
