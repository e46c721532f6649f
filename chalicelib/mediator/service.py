"""The mediator at work: each message or schedule tick, through decide and the store.

The pattern for every decision: apply it (one transaction, conditional), then send
its messages and mark them sent. If the decision was made before (a duplicate, a
redelivery after a crash), send whatever it left unsent. Messages may so go out more
than once, never zero times; every worker's output is idempotent, and the emailer
sends one email per emailId.

A Mediator is assembled from its ports (the store, a publisher, a presigner, a clock), so
its exactly-once logic runs the same on DynamoDB and on an in-memory store (tests/fakes.py).
The functions below the class are the handlers' and the API's: they use the one Mediator of
the container, on the real ports.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from ..aws import objects
from ..bus import publish, resend_to_mediator
from ..log import logger
from ..messages import (
    DidCreateGif,
    DidCreateThumbnail,
    DidFail,
    DidFetchAmpImage,
    DidSendEmail,
    GifReason,
    Location,
    Message,
    MessageError,
    parse,
)
from ..settings import public_url
from . import decide, store
from .decide import AlreadyDecided, AnimationState, Decision, Links
from .records import Failure, Frame

CLAIM_ATTEMPTS = 5
EMAIL_THUMBNAILS = 4
STALE_OUTBOX_SECONDS = 120
FALLBACK_LINK_SECONDS = 604_800  # the longest S3 allows; session credentials end such a link sooner
_warned_no_public_url = False


class Store(Protocol):
    """What the mediator keeps, as it uses it (chalicelib.mediator.store on DynamoDB)."""

    def get_animation(self, image_id: str, consistent: bool = False) -> AnimationState | None: ...
    def all_animations(self) -> Iterable[AnimationState]: ...
    def apply(self, decision: Decision) -> None: ...  # AlreadyDecided when it was made before
    def pending(self, key: str) -> list[Message]: ...
    def sent(self, key: str) -> None: ...
    def stale_outbox(self, older_than: int) -> list[str]: ...
    def newest_frames(self, image_id: str, count: int, up_to: int | None = None) -> list[Frame]: ...
    def note_newest_frame(self, image_id: str, valid_time: int) -> None: ...
    def log_event(self, direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None: ...
    def failures(self, image_id: str, limit: int = 20) -> list[Failure]: ...
    def forget_failure(self, image_id: str, failure: Failure) -> bool: ...


class Ports(NamedTuple):
    store: Store
    publish: Callable[[Message], object]  # a please-message to its worker
    presign: Callable[[Location, int], str]  # a GET URL of an object, lasting so many seconds
    clock: Callable[[], float] = time.time


class Refused(Exception):
    """What the animation's state does not allow now (the API's 409)."""


class Mediator:
    def __init__(self, ports: Ports):
        self.store, self.publish, self.presign, self.clock = ports

    def now(self) -> int:
        return int(self.clock())

    # Messages -------------------------------------------------------------------------

    def handle_record(self, body: str) -> None:
        """One message from the mediator's queue. An invalid one is logged, recorded and dropped."""
        try:
            message = parse(body)
            if message.type.startswith("please-"):
                raise MessageError("please-messages go to the workers, not to the mediator", message.type)
        except MessageError as exc:
            logger.error(f"invalid message dropped: {exc}")
            self.store.log_event("invalid", {"type": "invalid", "error": str(exc), "body": body[:2000]}, "invalid")
            return
        logger.set_correlation_id(message.correlation_id)
        self.handle(message, self.now())

    def handle(self, message: Message, now: int) -> None:
        self.store.log_event("in", message, message.correlation_id)
        if isinstance(message, DidFetchAmpImage):
            self.frame_arrived(message, now)
        elif isinstance(message, DidCreateThumbnail):
            self.carry_out(decide.on_thumbnail(message))
        elif isinstance(message, DidCreateGif):
            self.gif_made(message, now)
        elif isinstance(message, DidSendEmail):
            self.carry_out(decide.on_email(message))
        elif isinstance(message, DidFail):
            logger.warning(f"{message.action} failed: {message.error}")
            self.carry_out(decide.on_failure(message))

    def frame_arrived(self, frame: DidFetchAmpImage, now: int) -> None:
        state = self.store.get_animation(frame.image_id)
        if state is None:
            logger.warning(f"a frame of {frame.image_id!r}, an animation that does not exist: not recorded")
            return
        self.carry_out(decide.on_frame(state.animation, frame, now))
        self.store.note_newest_frame(frame.image_id, frame.valid_time)
        self.consider_gif(frame.image_id, now, "count", decide.gif_due, frame.correlation_id)

    def gif_made(self, gif: DidCreateGif, now: int) -> None:
        state = self.store.get_animation(gif.image_id)
        links = self.email_links(state, gif) if state and state.animation.email else None
        self.carry_out(decide.on_gif(state.animation if state else None, gif, links, now))

    # Schedules ------------------------------------------------------------------------

    def fetch_due_frames(self, now: int | None = None) -> dict[str, Any]:
        """Every few minutes: ask for each enabled animation's frame that is due."""
        now = self.now() if now is None else now
        asked = []
        for state in self.store.all_animations():
            decision = decide.next_fetch(state, now)
            if decision and self.carry_out(decision):
                asked.append(decision.key)
        resent = self.resend_stale()
        logger.info(f"fetch schedule: {len(asked)} frames asked for", extra={"asked": asked, "resent": resent})
        return {"asked": asked, "resent": resent}

    def rebuild_gifs(self, now: int | None = None) -> dict[str, Any]:
        """Hourly: a GIF of the newest N frames of each animation with frames newer than its latest GIF."""
        now = self.now() if now is None else now
        built = [
            state.animation.image_id
            for state in self.store.all_animations()
            if state.animation.enabled
            and self.consider_gif(state.animation.image_id, now, "rebuild", decide.rebuild_due)
        ]
        logger.info(f"GIF rebuild: {len(built)} GIFs asked for", extra={"built": built})
        return {"built": built}

    def resend_stale(self) -> list[str]:
        """Messages of decisions whose sender stopped before sending them all."""
        keys = self.store.stale_outbox(STALE_OUTBOX_SECONDS)
        for key in keys:
            self.send(key, self.store.pending(key))
        return keys

    # Asked for by people (the REST API) -----------------------------------------------

    def fetch_now(self, image_id: str, now: int) -> Message:
        state = self.store.get_animation(image_id)
        if state is None:
            raise LookupError(image_id)
        if not state.animation.enabled:
            raise Refused(f"animation {image_id!r} is disabled")
        decision = decide.fetch_now(state.animation, now)
        if not self.carry_out(decision):
            raise Refused(f"a frame of {image_id!r} for this minute was asked for already")
        return decision.messages[0]

    def gif_now(self, image_id: str, now: int) -> Message:
        state = self.store.get_animation(image_id, consistent=True)
        if state is None:
            raise LookupError(image_id)
        frames = self.store.newest_frames(image_id, state.animation.frames)
        decision = decide.gif_of(state, frames, now, "manual", f"manual-gif-{image_id}-{now}")
        if decision is None:
            raise Refused(f"a GIF of {image_id!r} needs {state.animation.frames} frames; it has {len(frames)}")
        if not self.carry_out(decision):
            newest = decision.changes[0].valid_time
            raise Refused(
                f"a GIF of the newest {state.animation.frames} frames (to {decide.utc(newest)}) exists already"
            )
        return decision.messages[0]

    def redrive_failures(self, image_id: str) -> dict[str, int]:
        """Send each recorded failure's request to its worker again, and forget the failure (a new one
        can then be recorded). A failure whose request was not kept, or is no valid request, stays."""
        redriven = kept = 0
        for failure in self.store.failures(image_id, limit=100):
            try:
                message = parse(failure.request or {})
            except MessageError:
                kept += 1
                continue
            if not message.type.startswith("please-"):
                kept += 1
                continue
            self.publish(message)
            self.store.log_event("out", message, message.correlation_id)
            self.store.forget_failure(image_id, failure)
            redriven += 1
        return {"redriven": redriven, "kept": kept}

    # Decisions ------------------------------------------------------------------------

    def carry_out(self, decision: Decision) -> bool:
        """Apply a decision once and send its messages; True if this call made it."""
        try:
            self.store.apply(decision)
        except AlreadyDecided:
            self.send(decision.key, self.store.pending(decision.key))
            return False
        self.send(decision.key, list(decision.messages))
        return True

    def send(self, key: str, messages: list[Message]) -> None:
        if not messages:
            return
        for message in messages:
            self.publish(message)
            self.store.log_event("out", message, message.correlation_id)
        self.store.sent(key)

    def consider_gif(
        self,
        image_id: str,
        now: int,
        reason: GifReason,
        rule: Callable[[AnimationState], bool],
        correlation_id: str | None = None,
    ) -> bool:
        """Claim a GIF of the newest frames if `rule` says one is due; True if this call did.

        Claims are conditional on the counts they saw: when another claim wins, look again
        with fresh counts, while they keep moving.
        """
        seen = None
        for _ in range(CLAIM_ATTEMPTS):
            state = self.store.get_animation(image_id, consistent=True)
            if state is None or not rule(state) or state.gif_frame_count == seen:
                return False
            seen = state.gif_frame_count
            frames = self.store.newest_frames(image_id, state.animation.frames)
            decision = decide.gif_of(state, frames, now, reason, correlation_id)
            if decision is None:
                return False
            if self.carry_out(decision):
                return True
        return False

    def email_links(self, state: AnimationState, gif: DidCreateGif) -> Links:
        """Links to the GIF and to the first thumbnail size of its newest frames.

        Routes of the REST API under PUBLIC_URL, which redirect to a freshly presigned URL
        when followed: they work as long as the images are kept. Without PUBLIC_URL,
        presigned URLs, which end with the credentials that signed them (a warning says so).
        """
        base = public_url()
        if base is None:
            _warn_no_public_url()
        labels = [spec.label for spec in state.animation.thumbnails]
        thumbnails = []
        if labels:
            for frame in self.store.newest_frames(gif.image_id, EMAIL_THUMBNAILS, up_to=gif.valid_time):
                location = frame.thumbnails.get(labels[0])
                if location is not None:
                    url = (
                        thumbnail_link(base, gif.image_id, frame.valid_time, labels[0])
                        if base
                        else self.presign(location, FALLBACK_LINK_SECONDS)
                    )
                    thumbnails.append((frame.valid_time, url))
        gif_url = (
            gif_link(base, gif.image_id, gif.valid_time) if base else self.presign(gif.location, FALLBACK_LINK_SECONDS)
        )
        return Links(gif_url, sorted(thumbnails))


def _warn_no_public_url() -> None:
    global _warned_no_public_url
    if not _warned_no_public_url:
        _warned_no_public_url = True
        logger.warning(
            "PUBLIC_URL is not set: emailed links are presigned S3 URLs, which stop working when this "
            "function's session credentials end (hours), whatever their expiry says; set PUBLIC_URL to the "
            "REST API's address (https://{api}.execute-api.{region}.amazonaws.com/api/) so emails link to its "
            "redirect routes instead"
        )


# The container's mediator, on the real ports ---------------------------------------------


@functools.cache
def mediator() -> Mediator:
    # Each port looks its function up when called, so tests can stand in for one (monkeypatch).
    return Mediator(
        Ports(
            store=store,
            publish=lambda message: publish(message),
            presign=lambda location, expiry: presign(location, expiry),
        )
    )


def handle_record(body: str) -> None:
    mediator().handle_record(body)


def handle(message: Message, now: int) -> None:
    mediator().handle(message, now)


def fetch_due_frames(now: int | None = None) -> dict[str, Any]:
    return mediator().fetch_due_frames(now)


def rebuild_gifs(now: int | None = None) -> dict[str, Any]:
    return mediator().rebuild_gifs(now)


def fetch_now(image_id: str, now: int) -> Message:
    return mediator().fetch_now(image_id, now)


def gif_now(image_id: str, now: int) -> Message:
    return mediator().gif_now(image_id, now)


def redrive_failures(image_id: str) -> dict[str, int]:
    return mediator().redrive_failures(image_id)


def redrive_dead_letters() -> int:
    """Every dead letter back to the mediator's queue, each then forgotten (sent at least once)."""
    moved = 0
    for letter in store.dead_letters():
        resend_to_mediator(letter.body)
        store.forget_dead_letter(letter.message_id)
        moved += 1
    return moved


def event_time(when: str | None) -> int:
    """A scheduled event's time (when EventBridge meant it to run), as epoch seconds."""
    try:
        return int(datetime.fromisoformat(when).timestamp()) if when else int(time.time())
    except ValueError:
        return int(time.time())


# Links: routes of the REST API (app.py) that redirect to the image ----------------------


def gif_link(base: str, image_id: str, valid_time: int) -> str:
    return f"{base}animations/{quote(image_id, safe='')}/gifs/{int(valid_time)}/image"


def frame_link(base: str, image_id: str, valid_time: int) -> str:
    return f"{base}animations/{quote(image_id, safe='')}/frames/{int(valid_time)}/image"


def thumbnail_link(base: str, image_id: str, valid_time: int, label: str) -> str:
    return f"{base}animations/{quote(image_id, safe='')}/frames/{int(valid_time)}/thumbnails/{quote(label, safe='')}"


def presign(location: Location, expiry: int) -> str:
    return objects().presign(location, expiry)
