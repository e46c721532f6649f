"""The event log: every message in and out of the mediator, by run, kept EVENT_LOG_DAYS."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from ...aws import table
from ...messages import Message
from .. import records
from ..records import LogEntry
from . import keys

MAX_BODY = 2000  # characters of an email body kept in the log


def log_days() -> float:
    return float(os.environ.get("EVENT_LOG_DAYS") or 14)


def log_event(direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None:
    """One line of a run's timeline: a message in or out (kept EVENT_LOG_DAYS)."""
    data = message.to_dict() if isinstance(message, Message) else message
    if isinstance(data.get("body"), str) and len(data["body"]) > MAX_BODY:
        data = {**data, "body": data["body"][:MAX_BODY] + "..."}
    now_ms = int(time.time() * 1000)
    table().put(
        {
            "pk": keys.run(correlation_id),
            "sk": f"{now_ms:013d}#{uuid.uuid4().hex[:8]}",
            "at": now_ms,
            "direction": direction,
            "type": str(data.get("type", "?")),
            "imageId": data.get("imageId"),
            "message": json.dumps(data, separators=(",", ":"), default=str),
            "expiresAt": keys.expires(log_days()),
        }
    )


def timeline(correlation_id: str, limit: int = 200) -> list[LogEntry]:
    page = table().query(keys.run(correlation_id), limit=limit)
    return [records.log_entry(item) for item in page.items]


def last_error(message_id: str) -> str | None:
    """The latest error the mediator logged for an SQS message (by its message id)."""
    errors = [entry for entry in timeline(f"sqs-{message_id}") if entry.direction == "error"]
    return errors[-1].message.get("error") if errors else None
