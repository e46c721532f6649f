"""The event log: every message in and out of the mediator, by run, kept EVENT_LOG_DAYS.

Lines cost no call of their own where it matters: a decision's lines go into its transaction
(decisions.apply), a tick's go out 25 a call (log_events).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable
from typing import Any

from ...aws import table
from ...aws.dynamodb import Item
from ...messages import Message
from .. import records
from ..records import Line, LogEntry
from . import keys

MAX_BODY = 2000  # characters of an email body kept in the log


def log_days() -> float:
    return float(os.environ.get("EVENT_LOG_DAYS") or 14)


def item(line: Line, now_ms: int | None = None, place: int = 0) -> Item:
    """A line as the table keeps it. Its sort key orders a run's timeline and is unique: the time,
    then, among the lines written at that time (a decision's, a batch's: `place` is a line's place
    among them), the message that came in before the messages that went out because of it, each
    in the order given, then a random tail."""
    data = line.message.to_dict() if isinstance(line.message, Message) else line.message
    if isinstance(data.get("body"), str) and len(data["body"]) > MAX_BODY:
        data = {**data, "body": data["body"][:MAX_BODY] + "..."}
    at = int(time.time() * 1000) if now_ms is None else now_ms
    after = 1 if line.direction == "out" else 0  # what went out follows what came in
    return {
        "pk": keys.run(line.correlation_id),
        "sk": f"{at:013d}#{after}{place:04d}#{uuid.uuid4().hex[:8]}",
        "at": at,
        "direction": line.direction,
        "type": str(data.get("type", "?")),
        "imageId": data.get("imageId"),
        "message": json.dumps(data, separators=(",", ":"), default=str),
        "expiresAt": keys.expires(log_days()),
    }


def log_event(direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None:
    """One line of a run's timeline, on its own (a call): where no decision or batch carries it."""
    table().put(item(Line(direction, message, correlation_id)))


def log_events(lines: Iterable[Line]) -> None:
    """Lines of many runs, 25 a call, all at one time (their order kept, what came in first)."""
    now_ms = int(time.time() * 1000)
    table().put_all(item(line, now_ms, place) for place, line in enumerate(lines))


def timeline(correlation_id: str, limit: int = 200) -> list[LogEntry]:
    page = table().query(keys.run(correlation_id), limit=limit)
    return [records.log_entry(entry) for entry in page.items]


def last_error(message_id: str) -> str | None:
    """The latest error the mediator logged for an SQS message (by its message id)."""
    errors = [entry for entry in timeline(f"sqs-{message_id}") if entry.direction == "error"]
    return errors[-1].message.get("error") if errors else None
