"""The mediator's decisions, as pure functions: state and a message in, changes and messages out.

A Decision names itself (its key), lists the state changes that must happen once
(the store makes each a conditional write, all in one transaction) and the messages
to send when they do. Nothing here reads a clock, a table or a queue. Every message made
here is checked as it is made (Invalid: the decision is not taken), so nothing that breaks
the contract is stored or sent.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import zlib
from datetime import datetime, timezone
from typing import NamedTuple

from ..messages import (
    IMAGE_ID_PATTERN,
    DidCreateGif,
    DidCreateThumbnail,
    DidFail,
    DidFetchAmpImage,
    DidSendEmail,
    Location,
    Message,
    Output,
    PleaseCreateGif,
    PleaseCreateThumbnail,
    PleaseFetchAmpImage,
    PleaseSendEmail,
    GifReason,
    run_ids,
)
from .animation import Animation
from .records import Frame, Run

IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
UNATTRIBUTED = "-unattributed"  # where failures that name no animation are kept (no image id starts so)


class AnimationState(NamedTuple):
    animation: Animation
    frame_count: int = 0  # distinct frames recorded, ever
    gif_frame_count: int = 0  # frame_count when the latest GIF was claimed
    last_requested: int = 0  # validTime of the newest fetch asked for
    newest_frame: int = 0  # validTime of the newest frame recorded
    latest_gif: int = 0  # validTime (newest frame) of the latest GIF claimed
    done_gif: int = 0  # validTime of the GIF made most recently
    updated_at: int = 0  # when its configuration was last written
    failed_slots: tuple[tuple[int, int], ...] = ()  # (validTime, failed attempts): to be asked again
    last_run: int = 0  # the newest model run asked for (forecasts and loops)
    run_deadline: int = 0  # when the newest run is made into its GIF (a loop: used) with what came
    complete_run: int = 0  # the newest run settled: all its frames in (or failed), or its deadline passed


STALE_INTERVALS = 3  # an enabled animation without a new frame for this many intervals is stale


def stale_since(state: AnimationState, now: int) -> int | None:
    """When an enabled animation's frames stopped coming (its newest frame, or when it was configured,
    if it has none since), if that is STALE_INTERVALS of its intervals ago; None while they come."""
    if not state.animation.enabled:
        return None
    since = max(state.newest_frame, state.updated_at)
    return since if now - since > STALE_INTERVALS * state.animation.interval else None


# State changes ---------------------------------------------------------------------


class ClaimFetches(NamedTuple):
    """Several frames of the window at once (a new animation's, a gap's), each once per (imageId,
    validTime), claimed from the last request the decider saw: the animation's last request moves
    to the newest of them, and a failed frame asked again leaves the failed slots. Each request is
    kept on its fetch's record."""

    image_id: str
    requests: tuple[PleaseFetchAmpImage, ...]  # new frames, oldest first
    seen_last_requested: int
    retried: tuple[PleaseFetchAmpImage, ...] = ()  # frames whose fetch failed, asked again
    dropped: tuple[tuple[int, int], ...] = ()  # failed slots out of the window now: no longer asked

    @property
    def newest(self) -> int:
        return max((r.valid_time for r in self.requests), default=self.seen_last_requested)

    @property
    def valid_time(self) -> int:  # as the other changes name their time
        return self.newest


class ClaimRun(NamedTuple):
    """Once per (imageId, run), and only forward: a model run's frames asked for, each kept on its
    fetch record; the animation's newest run moves to it, with the time its GIF is due at the latest."""

    image_id: str
    run_time: int
    requests: tuple[PleaseFetchAmpImage, ...]
    seen_last_run: int
    deadline: int

    @property
    def valid_time(self) -> int:  # as the other changes name their time
        return self.run_time


class RecordRunFrame(NamedTuple):
    """Once per (imageId, run, validTime): a run's frame, with its thumbnail requests, counted on its run."""

    image_id: str
    run_time: int
    valid_time: int
    location: Location
    correlation_id: str | None
    requests: tuple[PleaseCreateThumbnail, ...] = ()


class SettleRun(NamedTuple):
    """Once per (imageId, run): its frames are in (or failed), or its deadline passed. A forecast's
    GIF of what came is claimed with it; the animation's newest settled run moves to it."""

    image_id: str
    run_time: int
    newer: bool  # newer than the animation's newest settled run
    gif: ClaimGif | None = None

    @property
    def valid_time(self) -> int:
        return self.run_time


class RecordFetchRequest(NamedTuple):
    """Once per (imageId, validTime): a fetch asked for outside the schedule (the request kept)."""

    image_id: str
    valid_time: int
    request: PleaseFetchAmpImage


class ClaimGif(NamedTuple):
    """Once per window (imageId, newest validTime), and only from the counts it saw; the request
    is kept on the GIF's record until the GIF is made."""

    image_id: str
    valid_time: int
    frame_times: tuple[int, ...]
    seen_gif_frame_count: int
    frame_count: int
    reason: GifReason
    correlation_id: str | None
    request: PleaseCreateGif
    run_time: int | None = None  # a forecast run's GIF
    gaps: tuple[int, ...] = ()  # the run's valid times that did not come


class RecordFrame(NamedTuple):
    """Once per (imageId, validTime): the frame, with its thumbnail requests (kept until each is
    made), counted on the animation from the count it saw, and the GIF it completes, if one is due
    (the claim goes in the same transaction)."""

    image_id: str
    valid_time: int
    location: Location
    correlation_id: str | None
    requested_time: int  # the fetch request it answers (the source may answer another time)
    requests: tuple[PleaseCreateThumbnail, ...] = ()
    seen_count: int = 0  # the animation's frame count it was decided on: it counts one more
    newest: bool = False  # newer than any frame before it
    gif: ClaimGif | None = None
    cleared: tuple[tuple[int, int], ...] = ()  # its slot's failed fetches: it came after all


class FinishGif(NamedTuple):
    """Once per GIF: its location (and each format's); and its email, when there is one to send
    (kept until sent)."""

    image_id: str
    valid_time: int
    location: Location
    email: PleaseSendEmail | None
    outputs: tuple[Output, ...] = ()
    newest: bool = True  # newer than the GIF the card shows: it shows this one now


class RecordOutputs(NamedTuple):
    """The formats of a GIF made again (a format's failure redriven): where each is, how large."""

    image_id: str
    valid_time: int
    outputs: tuple[Output, ...]


class RecordThumbnail(NamedTuple):
    image_id: str
    valid_time: int
    label: str
    location: Location
    run_time: int | None = None  # a run's frame's


class RecordEmail(NamedTuple):
    image_id: str
    valid_time: int
    message_id: str


class RecordFailure(NamedTuple):
    """Once per (imageId, validTime, action, detail): the error, and the request to send again (a redrive).
    The detail tells apart what one frame can fail more than once at: each thumbnail size."""

    image_id: str
    valid_time: int
    action: str
    error: str
    correlation_id: str | None
    request: dict | None = None
    detail: str = ""
    failed_slot: tuple[int, int] | None = None  # a scheduled frame's (validTime, attempts): asked again later
    run_time: int | None = None  # a run's frame's fetch: counted as failed on its run


Change = (
    RecordFrame
    | ClaimFetches
    | ClaimRun
    | RecordRunFrame
    | SettleRun
    | RecordFetchRequest
    | ClaimGif
    | FinishGif
    | RecordOutputs
    | RecordThumbnail
    | RecordEmail
    | RecordFailure
)


class AlreadyDecided(Exception):
    """A decision's conditions failed where it was applied: it was made before (or another won)."""


class Outdated(Exception):
    """A decision was made on counts that have moved since (another frame came in between): it was
    not applied; decide again on fresh ones."""


class Decision(NamedTuple):
    key: str
    changes: tuple[Change, ...] = ()
    messages: tuple[Message, ...] = ()


# Rules --------------------------------------------------------------------------------


# When frames are asked for. An animation's frames are valid on its interval grid; each animation
# asks for its frame at a stable phase within its interval (from its id), so a tick (every
# TICK_SECONDS) asks about 1/interval of the animations, not all in the same minute.

MAX_RETRIES = 3  # a failed frame of the window is asked again at most so many times
CLAIM_CHUNK = 24  # frames claimed in one transaction (each with its record and its log line)


def phase(animation: Animation, period: int) -> int:
    """Seconds after each grid time its frame is asked for: stable, from the id, a whole number of
    periods (the tick's), less than the interval."""
    steps = max(animation.interval // period, 1)
    return zlib.crc32(animation.image_id.encode()) % steps * period


def due_slot(animation: Animation, now: int, period: int) -> int:
    """The newest grid time whose frame is to be asked for by `now` (at its time plus the phase)."""
    asked_at = now - phase(animation, period)
    return asked_at - asked_at % animation.interval


def is_due(interval: int, offset: int, now: int, period: int) -> bool:
    """Whether a tick at `now` is when an animation of this interval and phase asks for a frame (the
    directory's entry says both: the tick reads no animation that is not due)."""
    return (now - offset) % interval < period


def window(animation: Animation, newest: int) -> list[int]:
    """The grid times of the animation's window that ends at `newest`: its N frames, oldest first."""
    return [newest - k * animation.interval for k in range(animation.frames - 1, -1, -1)]


def next_fetches(
    state: AnimationState, now: int, period: int, back: int | None = None, newest: int | None = None
) -> list[Decision]:
    """The frames of the animation's window due by `now` and not asked for yet: the newest on its grid
    each interval; every frame of the window when it is new or comes back after a gap (disabled, the
    ticks stopped); and a frame whose fetch failed, again (up to MAX_RETRIES). `back`: how far back
    its source serves, in seconds (None: as far as the window goes); `newest`: the newest valid time
    it has (a frame appears some minutes after its time: None, by now). Claimed in chunks of
    CLAIM_CHUNK, oldest first, each from the last request the one before left."""
    animation = state.animation
    if not animation.enabled:
        return []
    due = due_slot(animation, now, period)
    newest = due if newest is None or newest >= due else newest - newest % animation.interval
    oldest_served = now - back if back is not None else None
    slots = [
        t
        for t in window(animation, newest)
        if t > state.last_requested and (oldest_served is None or t >= oldest_served)
    ]
    in_window = set(window(animation, newest))
    retry = sorted((t, n) for t, n in state.failed_slots if t in in_window and t <= state.last_requested)
    dropped = tuple(sorted((t, n) for t, n in state.failed_slots if t not in in_window))
    if not slots and not retry and not dropped:
        return []
    decisions, seen = [], state.last_requested
    for start in range(0, max(len(slots), 1), CLAIM_CHUNK):
        chunk = slots[start : start + CLAIM_CHUNK]
        again = (
            tuple(_fetch_request(animation, t, now, run_id(animation.image_id, t), attempt=n) for t, n in retry)
            if not start
            else ()
        )
        requests = tuple(_fetch_request(animation, t, now, run_id(animation.image_id, t)) for t in chunk)
        claim = ClaimFetches(animation.image_id, requests, seen, again, dropped if not start else ())
        decisions.append(
            Decision(
                key=f"fetch:{animation.image_id}:{claim.newest}:{len(requests)}:{len(again)}",
                changes=(claim,),
                messages=again + requests,
            )
        )
        seen = claim.newest
    return decisions


def fetch_now(animation: Animation, now: int) -> Decision:
    """A frame valid now (to the minute), asked for by a person; the schedule is untouched."""
    valid_time = now - now % 60
    request = _fetch_request(animation, valid_time, now, f"manual-{animation.image_id}-{valid_time}")
    return Decision(
        key=f"fetch-now:{animation.image_id}:{valid_time}",
        changes=(RecordFetchRequest(animation.image_id, valid_time, request),),
        messages=(request,),
    )


def _fetch_request(
    animation: Animation,
    valid_time: int,
    now: int,
    correlation_id: str,
    attempt: int | None = None,
    run_time: int | None = None,
) -> PleaseFetchAmpImage:
    """A frame of the animation: observed (from its source), or of a run (from its run source)."""
    return PleaseFetchAmpImage(
        date_created=now,
        image_id=animation.image_id,
        layers=animation.run_layers if run_time is not None else animation.layers,
        width=animation.width,
        height=animation.height,
        center=animation.center,
        zoom=animation.zoom,
        valid_time=valid_time,
        attempt=attempt,
        source=animation.run_source if run_time is not None else animation.source,
        run_time=run_time,
        basemap=animation.basemap,
        correlation_id=correlation_id,
    ).checked()


def thumbnail_requests(animation: Animation, frame: DidFetchAmpImage, now: int) -> tuple[PleaseCreateThumbnail, ...]:
    """A frame forked into each thumbnail the animation configures (a run's, under its run)."""
    return tuple(
        PleaseCreateThumbnail(
            date_created=now,
            image_id=frame.image_id,
            location=frame.location,
            width=spec.width,
            height=spec.height,
            mode=spec.mode,
            valid_time=frame.valid_time,
            run_time=frame.run_time,
            correlation_id=frame.correlation_id,
        ).checked()
        for spec in animation.thumbnails
    )


def on_frame(
    state: AnimationState,
    frame: DidFetchAmpImage,
    now: int,
    others: list[Frame] | None = None,
    forecast: list[Frame] | None = None,
) -> Decision:
    """Record the frame once, counted; fork it into each configured thumbnail; and when it makes a
    GIF due (the count rule, on the count with it), claim the GIF of the newest N frames in the same
    decision. `others` are the animation's newest frames before it (asked for only when
    gif_due_after says a GIF is due)."""
    animation = state.animation
    correlation = frame.correlation_id
    requested = frame.requested_valid_time if frame.requested_valid_time is not None else frame.valid_time
    thumbnails = thumbnail_requests(animation, frame, now)
    claim = None
    if others is not None and gif_due_after(state):
        window = [f for f in others if f.valid_time != frame.valid_time] + [Frame(frame.valid_time, frame.location)]
        made = _gif_claim(
            state._replace(frame_count=state.frame_count + 1), window, now, "count", correlation, forecast
        )
        # An old frame's arrival makes no GIF: one outside the newest frames, or one whose window ends
        # at the newest frame of a GIF claimed before (a GIF is known by its newest frame: that one
        # exists, and the next frame's count claims the next GIF, of the full window).
        if made is not None and frame.valid_time in made.frame_times and made.valid_time > state.latest_gif:
            claim = made
    change = RecordFrame(
        frame.image_id,
        frame.valid_time,
        frame.location,
        correlation,
        requested,
        thumbnails,
        seen_count=state.frame_count,
        newest=frame.valid_time > state.newest_frame,
        gif=claim,
        cleared=tuple((t, n) for t, n in state.failed_slots if t == requested),
    )
    return Decision(
        key=f"frame:{frame.image_id}:{frame.valid_time}",
        changes=(change,),
        messages=thumbnails + ((claim.request,) if claim else ()),
    )


def gif_due_after(state: AnimationState) -> bool:
    """Whether one more frame makes a GIF due by the count rule."""
    return gif_due(state._replace(frame_count=state.frame_count + 1))


def gif_due(state: AnimationState) -> bool:
    """The count rule: the first GIF once N frames exist, then one per K new frames."""
    animation = state.animation
    return state.frame_count >= animation.frames and state.frame_count - state.gif_frame_count >= animation.gif_every


def rebuild_due(state: AnimationState) -> bool:
    """The hourly rule: enough frames for a GIF, and one newer than the latest GIF's newest."""
    return state.frame_count >= state.animation.frames and state.newest_frame > state.latest_gif


def gif_of(
    state: AnimationState,
    newest: list[Frame],
    now: int,
    reason: GifReason,
    correlation_id: str | None = None,
    forecast: list[Frame] | None = None,
) -> Decision | None:
    """A GIF of the newest N frames in time order, identified by its newest frame (a loop's with
    the next frames of its newest settled run)."""
    claim = _gif_claim(state, newest, now, reason, correlation_id, forecast)
    if claim is None:
        return None
    return Decision(key=f"gif:{claim.image_id}:{claim.valid_time}", changes=(claim,), messages=(claim.request,))


def _gif_claim(
    state: AnimationState,
    newest: list[Frame],
    now: int,
    reason: GifReason,
    correlation_id: str | None,
    forecast: list[Frame] | None = None,
) -> ClaimGif | None:
    """The GIF of the newest N frames (identified by the newest); a loop's with the next M frames of
    its newest settled run after them (`forecast`)."""
    animation = state.animation
    window = sorted(newest, key=lambda frame: frame.valid_time)[-animation.frames :]
    if len(window) < animation.frames:
        return None
    valid_time = window[-1].valid_time
    ahead = sorted((f for f in forecast or () if f.valid_time > valid_time), key=lambda f: f.valid_time)
    window = window + ahead[: animation.run_frames if animation.kind == "loop" else 0]
    correlation = correlation_id or f"gif-{animation.image_id}-{valid_time}"
    request = PleaseCreateGif(
        date_created=now,
        image_id=animation.image_id,
        locations=[frame.location for frame in window],
        valid_time=valid_time,
        delay=animation.gif_delay,
        last_delay=animation.gif_last_delay,
        loop=animation.gif_loop,
        correlation_id=correlation,
        reason=reason,
        formats=list(animation.formats) if animation.formats != ["gif"] else None,
    ).checked()
    return ClaimGif(
        image_id=animation.image_id,
        valid_time=valid_time,
        frame_times=tuple(frame.valid_time for frame in window),
        seen_gif_frame_count=state.gif_frame_count,
        frame_count=state.frame_count,
        reason=reason,
        correlation_id=correlation,
        request=request,
    )


# Runs: a forecast animates one model run; a loop adds the next frames of the newest run ----------

RUN_DEADLINE = 45 * 60  # a run settles at the latest so long after its frames were asked for


def run_step(animation: Animation, step: int) -> int:
    """Seconds between a run's frames: the animation's interval, up to a multiple of the source's step."""
    return -(-animation.interval // step) * step


def run_frame_times(animation: Animation, run: int, now: int, step: int, ahead: int) -> list[int]:
    """The valid times of a run the animation asks for: a forecast's N, from its run on; a loop's next
    M after now. Each within the run's reach (`ahead` after it)."""
    every = run_step(animation, step)
    first = run if animation.kind == "forecast" else now - now % every + every
    first += -(first - run) % every  # on the run's own grid
    times = [first + k * every for k in range(animation.run_frames)]
    return [t for t in times if t <= run + ahead]


def run_id(image_id: str, valid_time: int) -> str:
    return f"run-{image_id}-{valid_time}"


def forecast_id(image_id: str, run: int) -> str:
    """The correlation id of a model run's work for an animation: its fetches, frames, GIF, email."""
    return f"forecast-{image_id}-{run}"


def next_run(state: AnimationState, now: int, latest: int | None, step: int, ahead: int) -> Decision | None:
    """The newest model run out by `now` (`latest`, its source's), if the animation has not asked for
    it: its frames, claimed once."""
    animation = state.animation
    if not animation.enabled or not animation.runs or latest is None or latest <= state.last_run:
        return None
    times = run_frame_times(animation, latest, now, step, ahead)
    if not times:
        return None
    correlation = forecast_id(animation.image_id, latest)
    requests = tuple(_fetch_request(animation, t, now, correlation, run_time=latest) for t in times)
    claim = ClaimRun(animation.image_id, latest, requests, state.last_run, now + RUN_DEADLINE)
    return Decision(key=f"run:{animation.image_id}:{latest}", changes=(claim,), messages=requests)


def on_run_frame(state: AnimationState, frame: DidFetchAmpImage, now: int) -> Decision:
    """A run's frame: recorded once (under its run), counted on its run, forked into each thumbnail."""
    run = frame.run_time if frame.run_time is not None else 0
    thumbnails = thumbnail_requests(state.animation, frame, now)
    change = RecordRunFrame(frame.image_id, run, frame.valid_time, frame.location, frame.correlation_id, thumbnails)
    return Decision(key=f"run-frame:{frame.image_id}:{run}:{frame.valid_time}", changes=(change,), messages=thumbnails)


def settle_run(state: AnimationState, run: Run, frames: list[Frame], now: int) -> Decision | None:
    """A run whose frames are all in or failed, or whose deadline has passed, settles once: a
    forecast's GIF of the frames that came (two at least; the gaps said), and a loop's newest run to
    show moves to it."""
    animation = state.animation
    if run.settled or (run.got + run.failed < run.expected and now < run.deadline):
        return None
    gif = None
    came = sorted(frames, key=lambda frame: frame.valid_time)
    if animation.kind == "forecast" and len(came) >= 2:
        correlation = forecast_id(animation.image_id, run.run_time)
        request = PleaseCreateGif(
            date_created=now,
            image_id=animation.image_id,
            locations=[frame.location for frame in came],
            valid_time=run.run_time,
            run_time=run.run_time,
            delay=animation.gif_delay,
            last_delay=animation.gif_last_delay,
            loop=animation.gif_loop,
            correlation_id=correlation,
            reason="run",
            formats=list(animation.formats) if animation.formats != ["gif"] else None,
        ).checked()
        times = tuple(frame.valid_time for frame in came)
        gif = ClaimGif(
            image_id=animation.image_id,
            valid_time=run.run_time,
            frame_times=times,
            seen_gif_frame_count=0,
            frame_count=0,
            reason="run",
            correlation_id=correlation,
            request=request,
            run_time=run.run_time,
            gaps=tuple(t for t in run.frame_times if t not in set(times)),
        )
    change = SettleRun(animation.image_id, run.run_time, run.run_time > state.complete_run, gif)
    return Decision(
        key=f"settle:{animation.image_id}:{run.run_time}", changes=(change,), messages=(gif.request,) if gif else ()
    )


class Links(NamedTuple):
    """An email's links: the GIF, and (validTime, url) of the newest thumbnails (service.email_links)."""

    gif: str
    thumbnails: list[tuple[int, str]]


def on_gif(animation: Animation | None, gif: DidCreateGif, links: Links | None, now: int, shown: int = 0) -> Decision:
    """Record the GIF once; ask for its email if the animation has recipients. `shown`: the GIF the
    card shows (its validTime): a newer GIF takes its place; an older forecast run's, made after a
    newer one's, is superseded: recorded, not emailed."""
    email_spec = animation.email if animation else None
    key = f"gif-done:{gif.image_id}:{gif.valid_time}"
    outputs = tuple(gif.outputs or ())
    newest = gif.valid_time > shown
    superseded = animation is not None and animation.kind == "forecast" and not newest
    if email_spec is None or links is None or superseded:
        finish = FinishGif(gif.image_id, gif.valid_time, gif.location, None, outputs, newest)
        return Decision(key=key, changes=(finish,))
    email_id = f"{gif.image_id}:{gif.valid_time}"
    when = utc(gif.valid_time)
    email = PleaseSendEmail(
        date_created=now,
        to=email_spec.to,
        from_=email_spec.from_,
        # (at most a header line: a subject stored before its length was checked is cut, not refused)
        subject=email_spec.subject.replace("{imageId}", gif.image_id).replace("{time}", when)[:998],
        body=email_html(gif, links),
        email_id=email_id,
        image_id=gif.image_id,
        valid_time=gif.valid_time,
        correlation_id=gif.correlation_id,
    ).checked()
    return Decision(
        key=key,
        changes=(FinishGif(gif.image_id, gif.valid_time, gif.location, email, outputs, newest),),
        messages=(email,),
    )


def outputs_of(gif: DidCreateGif) -> Decision | None:
    """A GIF made before, made again with its formats (a format's failure redriven): record them."""
    if not gif.outputs:
        return None
    return Decision(
        key=f"gif-outputs:{gif.image_id}:{gif.valid_time}:{len(gif.outputs)}",
        changes=(RecordOutputs(gif.image_id, gif.valid_time, tuple(gif.outputs)),),
    )


def on_thumbnail(thumbnail: DidCreateThumbnail) -> Decision:
    """Record the thumbnail on its frame, under its spec's label (WxH-mode). An upload's thumbnail
    (it names its source) belongs to no animation: there is nothing to record but the log line."""
    if thumbnail.source is not None:
        return Decision(key=f"upload:{thumbnail.source.bucket}/{thumbnail.source.key}")
    label = thumbnail.label or (
        f"{thumbnail.width}x{thumbnail.height}" if thumbnail.width and thumbnail.height else None
    )
    if label is None:
        return Decision(key=f"thumbnail:{thumbnail.image_id}:{thumbnail.valid_time}:unlabelled")
    return Decision(
        key=f"thumbnail:{thumbnail.image_id}:{thumbnail.run_time or ''}:{thumbnail.valid_time}:{label}",
        changes=(
            RecordThumbnail(thumbnail.image_id, thumbnail.valid_time, label, thumbnail.location, thumbnail.run_time),
        ),
    )


def on_email(email: DidSendEmail) -> Decision:
    """Record that a GIF's email went out (an email of no GIF: nothing to record)."""
    if email.image_id is None or email.valid_time is None:
        return Decision(key="email:untracked")
    return Decision(
        key=f"email-sent:{email.image_id}:{email.valid_time}",
        changes=(RecordEmail(email.image_id, email.valid_time, email.ses_message_id or ""),),
    )


def on_failure(failure: DidFail) -> Decision:
    """Record what failed against its frame or GIF, so its run shows as failed.

    The request comes back from a worker that could not read it, so it is hostile: one that
    names no animation and valid time (an upload's, a garbled one) is recorded as unattributed,
    each distinct failure on its own."""
    request = failure.request if isinstance(failure.request, dict) else {}
    image_id, valid_time = request.get("imageId"), request.get("validTime")
    named = isinstance(image_id, str) and IMAGE_ID.fullmatch(image_id) is not None
    valid_time = valid_time if type(valid_time) is int and 0 <= valid_time < 10**12 else 0
    correlation = failure.correlation_id or run_ids(request).get("correlation_id")
    if named and failure.action == "create-thumbnail":
        detail = _label(request)
    elif named and failure.action == "create-gif" and failure.format is not None:
        detail = failure.format  # one format of a GIF made: the GIF itself is done
    elif named:
        detail = ""
    else:
        image_id, valid_time = UNATTRIBUTED, 0
        seen = json.dumps([failure.error, failure.request], sort_keys=True, default=str)
        detail = hashlib.sha256(seen.encode()).hexdigest()[:16]
    asked = request.get("attempt")
    attempt = asked if isinstance(asked, int) and not isinstance(asked, bool) else 0
    run = request.get("runTime")
    run_time = run if named and type(run) is int and 0 <= run < 10**12 else None
    scheduled = named and failure.action == "fetch-amp-image" and correlation == run_id(str(image_id), valid_time)
    slot = (valid_time, attempt + 1) if scheduled and attempt < MAX_RETRIES else None
    if run_time is not None and not detail:
        detail = f"run-{run_time}"  # a run's frame: two runs' fetches of one valid time are two failures
    change = RecordFailure(
        str(image_id),
        valid_time,
        failure.action,
        failure.error,
        correlation,
        request or None,
        detail,
        slot,
        run_time if failure.action in ("fetch-amp-image", "create-thumbnail") else None,
    )
    return Decision(key=f"failure:{failure.action}:{image_id}:{valid_time}:{detail}", changes=(change,))


def _label(request: dict) -> str:
    """A thumbnail request's size and mode (WxH-mode), as its frame's record labels it."""
    width, height, mode = request.get("width"), request.get("height"), request.get("mode", "cover")
    if type(width) is int and type(height) is int and mode in ("cover", "contain"):
        return f"{width}x{height}-{mode}"
    return "unsized"


# Helpers ------------------------------------------------------------------------------


def utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def email_html(gif: DidCreateGif, links: Links) -> str:
    title = html.escape(f"{gif.image_id}, to {utc(gif.valid_time)}")
    strip = "".join(
        f'<td style="padding:2px"><a href="{html.escape(url)}"><img src="{html.escape(url)}" '
        f'alt="{html.escape(utc(when))}" width="160" style="display:block;border:0"></a>'
        f'<div style="font:11px sans-serif;color:#555">{html.escape(utc(when))}</div></td>'
        for when, url in links.thumbnails
    )
    gif_url = html.escape(links.gif)
    return (
        '<!doctype html><html><body style="margin:0;padding:16px;font-family:sans-serif;color:#222">'
        f'<h1 style="font-size:20px;margin:0 0 12px">{title}</h1>'
        f'<p><a href="{gif_url}"><img src="{gif_url}" alt="{title}" style="max-width:100%;border:0"></a></p>'
        + (f'<table role="presentation"><tr>{strip}</tr></table>' if strip else "")
        + f'<p style="font-size:12px;color:#555"><a href="{gif_url}">Open the animation</a>. '
        "weathergif makes a new animation as new frames arrive.</p></body></html>"
    )
