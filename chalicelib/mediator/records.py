"""What the mediator keeps, as typed records: what its store answers and its decisions read."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..messages import Location


class Frame(NamedTuple):
    """A frame of an animation, by the time it is valid for, and its thumbnails by label (WxH-mode)."""

    valid_time: int
    location: Location
    thumbnails: dict[str, Location] = {}
    correlation_id: str | None = None
    recorded_at: int = 0


class Gif(NamedTuple):
    """A GIF, by the valid time of its newest frame: claimed, then done (or failed); its email."""

    valid_time: int
    status: str  # "claimed", "done", "failed"
    frame_times: tuple[int, ...] = ()
    reason: str | None = None
    location: Location | None = None
    email_status: str | None = None  # "requested", "sent", "failed"
    email_id: str | None = None
    correlation_id: str | None = None
    claimed_at: int = 0

    @property
    def done(self) -> bool:
        return self.status == "done" and self.location is not None


class Fetch(NamedTuple):
    """A frame asked for, and how that ended."""

    valid_time: int
    status: str  # "requested", "done", "failed"
    requested_at: int = 0
    error: str | None = None
    correlation_id: str | None = None


class Failure(NamedTuple):
    """A request that failed for good, and the request, when it was kept (to send it again)."""

    valid_time: int
    action: str
    error: str
    failed_at: int = 0
    correlation_id: str | None = None
    request: dict[str, Any] | None = None
    detail: str = ""  # a thumbnail's label; a digest for a failure that names no animation


class LogEntry(NamedTuple):
    """A line of a run's timeline: a message in or out, or an error, at a time in milliseconds."""

    at: int
    direction: str  # "in", "out", "error", "invalid"
    type: str
    message: dict[str, Any]


class DeadLetter(NamedTuple):
    """A message the mediator gave up on, kept until it is sent back."""

    message_id: str
    body: str
    sent_at: int = 0
    dead_at: int = 0
    error: str | None = None

    @property
    def message(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body


# From the table's items -------------------------------------------------------------------


def frame(item: dict[str, Any]) -> Frame:
    return Frame(
        valid_time=item["validTime"],
        location=Location.model_validate(item["location"]),
        thumbnails={label: Location.model_validate(loc) for label, loc in sorted(item.get("thumbnails", {}).items())},
        correlation_id=item.get("correlationId"),
        recorded_at=item.get("recordedAt", 0),
    )


def gif(item: dict[str, Any]) -> Gif:
    return Gif(
        valid_time=item["validTime"],
        status=item["status"],
        frame_times=tuple(item.get("frameTimes", ())),
        reason=item.get("reason"),
        location=Location.model_validate(item["location"]) if "location" in item else None,
        email_status=item.get("emailStatus"),
        email_id=item.get("emailId"),
        correlation_id=item.get("correlationId"),
        claimed_at=item.get("claimedAt", 0),
    )


def fetch(item: dict[str, Any]) -> Fetch:
    return Fetch(
        valid_time=item["validTime"],
        status=item["status"],
        requested_at=item.get("requestedAt", 0),
        error=item.get("error"),
        correlation_id=item.get("correlationId"),
    )


def failure(item: dict[str, Any]) -> Failure:
    request = json.loads(item["request"]) if item.get("request") else None
    return Failure(
        valid_time=item["validTime"],
        action=item["action"],
        error=item["error"],
        failed_at=item.get("failedAt", 0),
        correlation_id=item.get("correlationId"),
        request=request if isinstance(request, dict) else None,
        detail=item.get("detail") or "",
    )


def log_entry(item: dict[str, Any]) -> LogEntry:
    return LogEntry(
        at=item["at"], direction=item["direction"], type=item.get("type", "?"), message=json.loads(item["message"])
    )


def dead_letter(item: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        message_id=item["sk"],
        body=item["body"],
        sent_at=item.get("sentAt", 0),
        dead_at=item.get("deadAt", 0),
        error=item.get("error"),
    )
