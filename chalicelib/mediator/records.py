"""What the mediator keeps, as typed records: what its store answers and its decisions read."""

from __future__ import annotations

import json
from typing import Any, NamedTuple, TypeVar, cast

from ..log import logger
from ..messages import (
    Location,
    Message,
    MessageError,
    Output,
    PleaseCreateGif,
    PleaseCreateThumbnail,
    PleaseFetchAmpImage,
    PleaseSendEmail,
    parse,
)

M = TypeVar("M", bound=Message)


class Frame(NamedTuple):
    """A frame of an animation, by the time it is valid for, and its thumbnails by label (WxH-mode);
    the thumbnail requests it was forked into, and the GIF it completed (to send them again)."""

    valid_time: int
    location: Location
    thumbnails: dict[str, Location] = {}
    correlation_id: str | None = None
    recorded_at: int = 0
    requests: tuple[PleaseCreateThumbnail, ...] = ()
    gif_claimed: int | None = None  # the valid time of the GIF its arrival claimed

    def unsent(self) -> list[PleaseCreateThumbnail]:
        """The thumbnail requests whose thumbnail is not recorded yet."""
        return [r for r in self.requests if f"{r.width}x{r.height}-{r.mode}" not in self.thumbnails]


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
    request: PleaseCreateGif | None = None  # kept until the GIF is made
    email: PleaseSendEmail | None = None  # kept until the email is sent
    sent_at: int = 0  # when a person's request for it was known sent
    outputs: tuple[Output, ...] = ()  # each format made (the GIF first), when more than the GIF was asked
    run_time: int | None = None  # a forecast run's GIF: the run (and valid_time, its identity, is it too)
    gaps: tuple[int, ...] = ()  # a run's valid times that did not come

    @property
    def done(self) -> bool:
        return self.status == "done" and self.location is not None


class Run(NamedTuple):
    """A model run an animation asked for: the valid times of its frames, how many came and failed,
    when it is settled at the latest (its deadline) and when it was."""

    run_time: int
    frame_times: tuple[int, ...]
    got: int = 0
    failed: int = 0
    claimed_at: int = 0
    deadline: int = 0
    settled: int = 0

    @property
    def expected(self) -> int:
        return len(self.frame_times)


class Fetch(NamedTuple):
    """A frame asked for, and how that ended."""

    valid_time: int
    status: str  # "requested", "done", "failed"
    requested_at: int = 0
    error: str | None = None
    correlation_id: str | None = None
    request: PleaseFetchAmpImage | None = None
    sent_at: int = 0  # when a person's request was known sent


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


class Line(NamedTuple):
    """A line to log (a LogEntry once kept): a message, or what stands for one, in or out of a run."""

    direction: str  # "in", "out", "error", "invalid"
    message: Message | dict[str, Any]
    correlation_id: str | None


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
        location=Location.from_dict(item["location"]),
        thumbnails={label: Location.from_dict(loc) for label, loc in sorted(item.get("thumbnails", {}).items())},
        correlation_id=item.get("correlationId"),
        recorded_at=item.get("recordedAt", 0),
        requests=tuple(
            cast(PleaseCreateThumbnail, _kept(text, PleaseCreateThumbnail)) for text in item.get("requests", [])
        ),
        gif_claimed=item.get("gifClaimed"),
    )


def gif(item: dict[str, Any]) -> Gif:
    return Gif(
        valid_time=item["validTime"],
        status=item["status"],
        frame_times=tuple(item.get("frameTimes", ())),
        reason=item.get("reason"),
        location=Location.from_dict(item["location"]) if "location" in item else None,
        email_status=item.get("emailStatus"),
        email_id=item.get("emailId"),
        correlation_id=item.get("correlationId"),
        claimed_at=item.get("claimedAt", 0),
        request=_kept(item.get("request"), PleaseCreateGif),
        email=_kept(item.get("emailRequest"), PleaseSendEmail),
        sent_at=item.get("sentAt", 0),
        outputs=tuple(Output.from_dict(output) for output in item.get("outputs") or ()),
        run_time=item.get("runTime"),
        gaps=tuple(item.get("gaps") or ()),
    )


def run(item: dict[str, Any]) -> Run:
    return Run(
        run_time=item.get("runTime") or int(str(item["sk"]).partition("#")[2]),
        frame_times=tuple(item.get("frameTimes") or ()),
        got=item.get("got", 0),
        failed=item.get("failed", 0),
        claimed_at=item.get("claimedAt", 0),
        deadline=item.get("deadline", 0),
        settled=item.get("settled", 0),
    )


def fetch(item: dict[str, Any]) -> Fetch:
    return Fetch(
        valid_time=item["validTime"],
        status=item["status"],
        requested_at=item.get("requestedAt", 0),
        error=item.get("error"),
        correlation_id=item.get("correlationId"),
        request=_kept(item.get("request"), PleaseFetchAmpImage),
        sent_at=item.get("sentAt", 0),
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


def _kept(text: Any, model: type[M]) -> M | None:
    """A request kept on a record (as its JSON), read back as its message; None, logged, for one
    that no longer reads as one (kept by an older version): the record is still shown."""
    if not text:
        return None
    try:
        return cast(M, parse(text, expect=model))
    except MessageError as exc:
        logger.warning("a kept request no longer reads as its message", extra={"error": str(exc)[:500]})
        return None
