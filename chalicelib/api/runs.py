"""Runs and failures: what failed for good and its redrive, a run's timeline, the dead letters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from chalice import Response

from ..mediator import service, store
from ..mediator.decide import UNATTRIBUTED
from .auth import HIDDEN, holds_token
from .errors import BadRequest, NotFound, answers_json
from .openapi import answer, documented, error, errors
from .schemas import DeadLetters, DeadLettersRedriven, Failures, FailuresRedriven, Timeline
from .params import MAX_PAGE, int_param, iso, known, limit_param, query_string


@documented(answer("what failed for good", Failures), errors(400, 404), query=(limit_param(20),))
@answers_json
def animation_failures(request: Any, image_id: str) -> dict[str, Any]:
    """What failed for good.

    Public, but the error of a send-email failure (it may name addresses) only with the token."""
    known(image_id)
    limit = int_param(query_string(request, "limit"), "limit", 20, 1, MAX_PAGE)
    private = holds_token(request)
    return {
        "imageId": image_id,
        "failures": [
            {
                "validTime": f.valid_time,
                "time": iso(f.valid_time),
                "action": f.action,
                # an email's failure may quote its addresses (a refused recipient): the token's holder reads it
                "error": f.error if private or f.action != "send-email" else None,
                **({} if private or f.action != "send-email" else {"errorHidden": HIDDEN}),
                "runId": f.correlation_id,
                "failedAt": iso(f.failed_at),
                "redrivable": f.request is not None,
            }
            for f in store.failures(image_id, limit=limit)
        ],
    }


@documented(answer("how many were redriven and kept", FailuresRedriven, status=202), errors(400, 404))
@answers_json
def redrive_failures(image_id: str) -> Response:
    """Each failure whose request was kept: that request to its worker again, the failure forgotten."""
    known(image_id)
    return Response(body=service.redrive_failures(image_id), status_code=202)


@documented(
    answer("the run's events", Timeline),
    errors(400),
    error(404, "no events for the run (the event log keeps them EVENT_LOG_DAYS)"),
)
@answers_json
def timeline(run_id: str) -> dict[str, Any]:
    """A run's timeline: each message in and out (whole, addresses and bodies too), when, how long between."""
    if not run_id or len(run_id) > 200:
        raise BadRequest("a run id is 1..200 characters", "runId")
    entries = store.timeline(run_id)
    if not entries:
        raise NotFound(f"no events for run {run_id!r} (the log keeps {store.log_days():g} days)", "runId")
    start, previous, events = entries[0].at, entries[0].at, []
    for entry in entries:
        events.append(
            {
                "time": datetime.fromtimestamp(entry.at / 1000, timezone.utc).isoformat(timespec="milliseconds"),
                "direction": entry.direction,
                "type": entry.type,
                "sinceStartMs": entry.at - start,
                "sincePreviousMs": entry.at - previous,
                "message": entry.message,
            }
        )
        previous = entry.at
    return {"runId": run_id, "events": events, "tookMs": entries[-1].at - start}


@documented(answer("dead letters, and the failures that name no animation", DeadLetters))
@answers_json
def dead_letters() -> dict[str, Any]:
    """The mediator's dead letters (whole messages), with their errors.

    The messages the mediator gave up on, as its dead-letter handler kept them, and the failures
    that name no animation (an upload's, a garbled request's). Reading changes nothing."""
    return {
        "deadLetters": [
            {
                "messageId": letter.message_id,
                "message": letter.message,
                "error": letter.error,
                "sent": iso(letter.sent_at),
                "dead": iso(letter.dead_at),
            }
            for letter in store.dead_letters()
        ],
        "unattributed": [
            {
                "action": f.action,
                "error": f.error,
                "request": f.request,
                "failedAt": iso(f.failed_at),
                "runId": f.correlation_id,
            }
            for f in store.failures(UNATTRIBUTED, limit=MAX_PAGE)
        ],
    }


@documented(answer("how many were sent back", DeadLettersRedriven, status=202))
@answers_json
def redrive() -> Response:
    """Every dead letter back to the mediator's queue."""
    return Response(body={"redriven": service.redrive_dead_letters()}, status_code=202)
