"""The claims of a decision's requests: the frames of an animation's window (its fetch records, its
last request moved on) and a GIF's record (its claim, its request kept until it is made)."""

from __future__ import annotations

from typing import Any

from ...aws.dynamodb import Delete, Put, Update, Write
from ..decide import ClaimFetches, ClaimGif
from . import keys, outcomes

Writes = list[Write]


def claim_fetches(change: ClaimFetches, now: int) -> Writes:
    """Each new frame's fetch record (with its request), each failed one's asked again (its failure
    forgotten, so a new one is recorded); the animation's last request moved to the newest, from the
    one the decider saw (a claim: another decider made it before), and the failed slots it asked
    again or gave up (out of the window) taken off."""
    values: dict[str, Any] = {":seen": change.seen_last_requested}
    condition = "attribute_exists(pk) AND " + (
        "lastRequested = :seen" if change.seen_last_requested else "attribute_not_exists(lastRequested)"
    )
    if not change.seen_last_requested:
        values.pop(":seen")
    clauses = []
    if change.requests:
        clauses.append("SET lastRequested = :newest")
        values[":newest"] = change.newest
    gone = [(r.valid_time, r.attempt or 0) for r in change.retried] + list(change.dropped)
    if gone:
        clauses.append("DELETE failedSlots :gone")
        values[":gone"] = slot_entries(gone)
    writes: Writes = [
        outcomes.fetch_request(change.image_id, r.valid_time, r.to_json(), now, replace_ended=True)
        for r in change.requests
    ]
    for request in change.retried:
        writes += [
            outcomes.fetch_again(change.image_id, request.valid_time, request.to_json(), request.attempt or 0, now),
            Delete(keys.animation(change.image_id), keys.failure(request.valid_time, "fetch-amp-image")),
        ]
    if clauses:
        writes.append(Update(keys.animation(change.image_id), keys.STATE, " ".join(clauses), condition, values=values))
    return writes


def slot_entries(slots: Any) -> set[str]:
    """Failed slots as the animation's state keeps them: a string set of "validTime:attempts"."""
    return {f"{t}:{n}" for t, n in slots}


def gif_record(change: ClaimGif, now: int) -> Put:
    item = {
        "pk": keys.animation(change.image_id),
        "sk": keys.record("GIF", change.valid_time),
        "validTime": change.valid_time,
        "status": "claimed",
        "frameTimes": list(change.frame_times),
        "reason": change.reason,
        "request": change.request.to_json(),
        "correlationId": change.correlation_id,
        "claimedAt": now,
    }
    if change.run_time is not None:
        item.update(runTime=change.run_time, gaps=list(change.gaps))
    return Put(item, "attribute_not_exists(pk)")
