"""In-memory stand-ins for the mediator's ports: a store that keeps the same promises as the
DynamoDB one (each decision's changes and outbox entry all or none, under the same
conditions), a publisher that keeps what it was given, and a clock. No AWS service is faked:
these replace the app's own port (chalicelib.mediator.service.Store), not boto3."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from chalicelib.mediator.animation import Animation
from chalicelib.mediator.decide import (
    UNATTRIBUTED,
    AlreadyDecided,
    AnimationState,
    ClaimFetch,
    ClaimGif,
    Decision,
    FinishGif,
    RecordEmail,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordThumbnail,
)
from chalicelib.mediator.records import Failure, Fetch, Frame, Gif
from chalicelib.messages import Message

Check = Callable[[], bool]
Effect = Callable[[], None]


class MemoryStore:
    """chalicelib.mediator.store's promises, in dicts behind one lock."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0):
        self.clock = clock
        self._lock = threading.RLock()
        self.animations: dict[str, dict[str, Any]] = {}  # config and counters, as the ANIMATIONS item
        self.frames: dict[tuple[str, int], Frame] = {}
        self.fetches: dict[tuple[str, int], Fetch] = {}
        self.gifs: dict[tuple[str, int], Gif] = {}
        self.failures_: dict[tuple[str, int, str, str], Failure] = {}
        self.outbox: dict[str, tuple[int, list[Message]]] = {}
        self.log: list[tuple[str, str, str | None]] = []  # (direction, type, correlation id)

    # Animations ---------------------------------------------------------------------

    def put_animation(self, animation: Animation) -> bool:
        with self._lock:
            created = animation.image_id not in self.animations
            self.animations.setdefault(animation.image_id, {})["config"] = animation
            return created

    def get_animation(self, image_id: str, consistent: bool = False) -> AnimationState | None:
        with self._lock:
            item = self.animations.get(image_id)
            if item is None:
                return None
            return AnimationState(
                item["config"],
                item.get("frameCount", 0),
                item.get("gifFrameCount", 0),
                item.get("lastRequested", 0),
                item.get("newestFrame", 0),
                item.get("latestGif", 0),
            )

    def all_animations(self) -> Iterator[AnimationState]:
        for image_id in sorted(self.animations):
            state = self.get_animation(image_id)
            if state is not None:
                yield state

    def note_newest_frame(self, image_id: str, valid_time: int) -> None:
        with self._lock:
            item = self.animations.get(image_id)
            if item is not None and item.get("newestFrame", 0) < valid_time:
                item["newestFrame"] = valid_time

    # Frames, failures -------------------------------------------------------------------

    def newest_frames(self, image_id: str, count: int, up_to: int | None = None) -> list[Frame]:
        with self._lock:
            found = [f for (i, t), f in self.frames.items() if i == image_id and (up_to is None or t <= up_to)]
        return sorted(found, key=lambda f: -f.valid_time)[:count]

    def failures(self, image_id: str, limit: int = 20) -> list[Failure]:
        with self._lock:
            return [f for key, f in sorted(self.failures_.items(), reverse=True) if key[0] == image_id][:limit]

    def forget_failure(self, image_id: str, failure: Failure) -> bool:
        with self._lock:
            return self.failures_.pop((image_id, failure.valid_time, failure.action, failure.detail), None) is not None

    def log_event(self, direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None:
        kind = message.type if isinstance(message, Message) else str(message.get("type", "?"))
        with self._lock:
            self.log.append((direction, kind, correlation_id))

    # Decisions and the outbox -----------------------------------------------------------

    def apply(self, decision: Decision) -> None:
        """Every condition first, then every effect: all or none, as a transaction."""
        with self._lock:
            writes = [write for change in decision.changes for write in self._writes(change)]
            if decision.messages:
                writes.append(
                    (
                        lambda: decision.key not in self.outbox,
                        lambda: self.outbox.__setitem__(decision.key, (int(self.clock()), list(decision.messages))),
                    )
                )
            if not all(check() for check, _ in writes):
                raise AlreadyDecided(decision.key)
            for _, effect in writes:
                effect()

    def pending(self, key: str) -> list[Message]:
        with self._lock:
            return list(self.outbox.get(key, (0, []))[1])

    def sent(self, key: str) -> None:
        with self._lock:
            self.outbox.pop(key, None)

    def stale_outbox(self, older_than: int) -> list[str]:
        with self._lock:
            return [key for key, (created, _) in self.outbox.items() if created < self.clock() - older_than]

    # Each change: its conditions and its effects (as chalicelib/mediator/store/writes.py writes them)

    def _writes(self, change: Any) -> list[tuple[Check, Effect]]:
        return {
            RecordFrame: self._record_frame,
            RecordFetchRequest: self._fetch_request,
            ClaimFetch: self._claim_fetch,
            ClaimGif: self._claim_gif,
            FinishGif: self._finish_gif,
            RecordThumbnail: self._record_thumbnail,
            RecordEmail: self._record_email,
            RecordFailure: self._record_failure,
        }[type(change)](change)

    def _animation(self, image_id: str) -> dict[str, Any]:
        return self.animations.get(image_id, {})

    def _record_frame(self, c: RecordFrame) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time)
        item = self._animation(c.image_id)
        return [
            (
                lambda: key not in self.frames,
                lambda: self.frames.__setitem__(key, Frame(c.valid_time, c.location, {}, c.correlation_id)),
            ),
            (
                lambda: c.image_id in self.animations,
                lambda: item.__setitem__("frameCount", item.get("frameCount", 0) + 1),
            ),
            self._fetch_outcome(c.image_id, c.requested_time, "done"),
        ]

    def _fetch_request(self, c: RecordFetchRequest | ClaimFetch) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time)
        return [
            (
                lambda: key not in self.fetches,
                lambda: self.fetches.__setitem__(key, Fetch(c.valid_time, "requested", int(self.clock()))),
            )
        ]

    def _claim_fetch(self, c: ClaimFetch) -> list[tuple[Check, Effect]]:
        item = self._animation(c.image_id)
        return [
            *self._fetch_request(c),
            (
                lambda: c.image_id in self.animations and item.get("lastRequested", c.previous) == c.previous,
                lambda: item.__setitem__("lastRequested", c.valid_time),
            ),
        ]

    def _claim_gif(self, c: ClaimGif) -> list[tuple[Check, Effect]]:
        key, item = (c.image_id, c.valid_time), self._animation(c.image_id)

        def claim() -> None:
            item.update(gifFrameCount=c.frame_count, latestGif=c.valid_time)

        return [
            (
                lambda: (
                    c.image_id in self.animations
                    and item.get("gifFrameCount", c.seen_gif_frame_count) == c.seen_gif_frame_count
                ),
                claim,
            ),
            (
                lambda: key not in self.gifs,
                lambda: self.gifs.__setitem__(
                    key, Gif(c.valid_time, "claimed", c.frame_times, c.reason, correlation_id=c.correlation_id)
                ),
            ),
        ]

    def _finish_gif(self, c: FinishGif) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time)

        def finish() -> None:
            update: dict[str, Any] = {"status": "done", "location": c.location}
            if c.email_id:
                update.update(email_id=c.email_id, email_status="requested")
            self.gifs[key] = self.gifs[key]._replace(**update)

        return [(lambda: key in self.gifs and self.gifs[key].status != "done", finish)]

    def _record_thumbnail(self, c: RecordThumbnail) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time)
        return [
            (
                lambda: key in self.frames and c.label not in self.frames[key].thumbnails,
                lambda: self.frames[key].thumbnails.__setitem__(c.label, c.location),
            )
        ]

    def _record_email(self, c: RecordEmail) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time)
        return [
            (
                lambda: key in self.gifs and self.gifs[key].email_status != "sent",
                lambda: self.gifs.__setitem__(key, self.gifs[key]._replace(email_status="sent")),
            )
        ]

    def _record_failure(self, c: RecordFailure) -> list[tuple[Check, Effect]]:
        key = (c.image_id, c.valid_time, c.action, c.detail)
        failure = Failure(c.valid_time, c.action, c.error, int(self.clock()), c.correlation_id, c.request, c.detail)
        writes = [(lambda: key not in self.failures_, lambda: self.failures_.__setitem__(key, failure))]
        gif_key = (c.image_id, c.valid_time)
        if c.action == "fetch-amp-image":
            writes.append(self._fetch_outcome(c.image_id, c.valid_time, "failed", c.error))
        elif c.action in ("create-gif", "send-email") and c.image_id != UNATTRIBUTED:
            field, unless = ("status", "done") if c.action == "create-gif" else ("email_status", "sent")
            writes.append(
                (
                    lambda: gif_key in self.gifs and getattr(self.gifs[gif_key], field) != unless,
                    lambda: self.gifs.__setitem__(gif_key, self.gifs[gif_key]._replace(**{field: "failed"})),
                )
            )
        return writes

    def _fetch_outcome(
        self, image_id: str, valid_time: int, status: str, error: str | None = None
    ) -> tuple[Check, Effect]:
        key = (image_id, valid_time)

        def end() -> None:
            before = self.fetches.get(key, Fetch(valid_time, status))
            self.fetches[key] = before._replace(status=status, error=error)

        return (lambda: True, end)


class Published:
    """A publisher port that keeps every message, and can fail the first `failing` publishes."""

    def __init__(self, failing: int = 0):
        self.messages: list[Message] = []
        self.failing = failing
        self._lock = threading.Lock()

    def __call__(self, message: Message) -> None:
        with self._lock:
            if self.failing > 0:
                self.failing -= 1
                raise ConnectionError("the topic did not answer")
            self.messages.append(message)

    def of(self, kind: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.type == kind]
