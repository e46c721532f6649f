"""Each kind of change a decision makes, as the conditional writes that make it.

WRITERS is the dispatch table (not an isinstance ladder); decisions.apply puts one decision's
writes in one transaction. A write's condition is its claim (it fails when the decision was
made before), or, wrapped in Guarded, a guard: it fails when the counts the decision was made
on have moved, and the decision is made again on fresh ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ...aws.dynamodb import Put, Update, Write
from ..decide import (
    Change,
    ClaimFetches,
    ClaimGif,
    ClaimRun,
    FinishGif,
    RecordEmail,
    RecordOutputs,
    RecordRunFrame,
    SettleRun,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordThumbnail,
)
from . import claims, keys, outcomes, runs
from .claims import gif_record, slot_entries


class Guarded(NamedTuple):
    """A write whose failing condition means "decide again", not "decided before"."""

    write: Write


Writes = list[Write | Guarded]


def _record_frame(change: RecordFrame, now: int) -> Writes:
    """The frame (its claim); counted from the count it was decided on, its newest-frame mark and the
    GIF it completes in one update of the animation's state (a guard: the counts must not have
    moved, nor the GIF count when it claims a GIF, whose record is then guarded too); the fetch it
    answers closed."""
    values: dict[str, Any] = {":one": 1}
    sets, conditions = [], ["attribute_exists(pk)"]
    if change.seen_count:
        conditions.append("frameCount = :seen")
        values[":seen"] = change.seen_count
    else:
        conditions.append("attribute_not_exists(frameCount)")
    if change.newest:
        sets.append("newestFrame = :t")
        values[":t"] = change.valid_time
    if change.gif is not None:
        sets.append("gifFrameCount = :gif_count, latestGif = :gif_time")
        values.update({":gif_count": change.gif.frame_count, ":gif_time": change.gif.valid_time})
        conditions.append(_gif_guard(change.gif, values))
    update = "ADD frameCount :one" + (f" SET {', '.join(sets)}" if sets else "")
    if change.cleared:  # its slot's failed fetches: asked again no more
        update += " DELETE failedSlots :cleared"
        values[":cleared"] = slot_entries(change.cleared)
    frame = {
        "pk": keys.animation(change.image_id),
        "sk": keys.record("FRAME", change.valid_time),
        "validTime": change.valid_time,
        "location": change.location.to_dict(),
        "thumbnails": {},
        "requests": [request.to_json() for request in change.requests] or None,
        "gifClaimed": change.gif.valid_time if change.gif else None,
        "correlationId": change.correlation_id,
        "recordedAt": now,
    }
    state = Update(keys.animation(change.image_id), keys.STATE, update, " AND ".join(conditions), values=values)
    return [
        Put(frame, "attribute_not_exists(pk)"),
        Guarded(state),
        outcomes.fetch_outcome(change.image_id, change.requested_time, "done", change.correlation_id, now),
        *([Guarded(gif_record(change.gif, now))] if change.gif else []),
    ]


def _claim_gif(change: ClaimGif, now: int) -> Writes:
    """The GIF's record (its claim), and the animation's GIF count moved on from the one it saw (a guard)."""
    values = {":count": change.frame_count, ":t": change.valid_time}
    condition = "attribute_exists(pk) AND " + _gif_guard(change, values)
    update = Update(
        keys.animation(change.image_id),
        keys.STATE,
        "SET gifFrameCount = :count, latestGif = :t",
        condition,
        values=values,
    )
    return [Guarded(update), gif_record(change, now)]


def _gif_guard(change: ClaimGif, values: dict[str, Any]) -> str:
    """The condition that the GIF count is still the one the claim saw (adds its value)."""
    if not change.seen_gif_frame_count:
        return "attribute_not_exists(gifFrameCount)"
    values[":seen_gif"] = change.seen_gif_frame_count
    return "gifFrameCount = :seen_gif"


def _finish_gif(change: FinishGif, now: int) -> Writes:
    values: dict[str, Any] = {":done": "done", ":location": change.location.to_dict(), ":now": now}
    sets = ["#status = :done", "#location = :location", "doneAt = :now"]
    if change.email:
        sets += ["emailId = :email", "emailStatus = :requested", "emailRequest = :message"]
        values.update({":email": change.email.email_id, ":requested": "requested", ":message": change.email.to_json()})
    if change.outputs:
        sets.append("outputs = :outputs")
        values[":outputs"] = [output.to_dict() for output in change.outputs]
    expression = f"SET {', '.join(sets)} REMOVE #request"
    shown = Update(  # the GIF the animation's card shows: the newest made (an older one made late is not)
        keys.animation(change.image_id),
        keys.STATE,
        "SET doneGif = :t",
        "attribute_exists(pk)",
        values={":t": change.valid_time},
    )
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            expression,
            "attribute_exists(pk) AND #status <> :done",
            names={"#status": "status", "#location": "location", "#request": "request"},
            values=values,
        ),
        *([shown] if change.newest else []),
    ]


def _record_outputs(change: RecordOutputs, now: int) -> Writes:
    """A made GIF's formats, made again (the same keys and bytes): where each is."""
    return [
        Update(
            keys.animation(change.image_id),
            keys.record("GIF", change.valid_time),
            "SET outputs = :outputs",
            "attribute_exists(pk)",
            values={":outputs": [output.to_dict() for output in change.outputs]},
        )
    ]


# Each kind of change, and the writes that make it.
WRITERS: dict[type[Change], Callable[[Any, int], Sequence[Write | Guarded]]] = {
    RecordFrame: _record_frame,
    RecordFetchRequest: outcomes.record_fetch_request,
    ClaimFetches: claims.claim_fetches,
    ClaimRun: runs.claim_run,
    RecordRunFrame: runs.record_run_frame,
    SettleRun: runs.settle_run,
    ClaimGif: _claim_gif,
    FinishGif: _finish_gif,
    RecordOutputs: _record_outputs,
    RecordThumbnail: outcomes.record_thumbnail,
    RecordEmail: outcomes.record_email,
    RecordFailure: outcomes.record_failure,
}
