"""The mediator at work: each message or schedule tick, through decide and the store.

The pattern for every decision: apply it (one transaction, conditional, with the lines that log
it), then send its messages. The requests a decision makes are kept on the records it writes
until they are done, so when a decision was made before (a duplicate, a redelivery after a
failed send), what it left unsent is sent again from its records: as soon as anything touches
it, not at a later tick. Messages may so go out more than once, never zero times; every
worker's output is idempotent, and the emailer sends one email per emailId. A send that fails
raises, so the message that led to it comes back (and sends again).

A schedule's tick fans out (ticks.py): a slice per directory shard, each its own invocation,
each animation's part on its own, so one animation's failure costs no other its tick.

A Mediator is assembled from its ports (the store, a publisher, a presigner, a queue for the
tick's slices, a clock), so its exactly-once logic runs the same on DynamoDB and on an in-memory
store (tests/fakes.py). The functions below the class are the handlers' and the API's: they use
the one Mediator of the container, on the real ports.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote

from .. import telemetry
from ..aws import objects
from ..bus import enqueue_slices, publish, resend_to_mediator
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
from ..settings import TICK_SECONDS, public_url
from ..threads import in_context
from . import decide, metering, store, ticks
from .decide import (
    AlreadyDecided,
    AnimationState,
    ClaimFetches,
    ClaimGif,
    ClaimRun,
    Decision,
    FinishGif,
    Links,
    Outdated,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordRunFrame,
    SettleRun,
)
from .records import Failure, Fetch, Frame, Gif, Line, Run
from .store.animations import ShardPage
from .store.keys import SHARDS
from .store.usage import Charge
from .ticks import TickSlice

CLAIM_ATTEMPTS = 8  # decisions made again on fresh counts, while other frames keep moving them
EMAIL_THUMBNAILS = 4
FALLBACK_LINK_SECONDS = 604_800  # the longest S3 allows; session credentials end such a link sooner
_warned_no_public_url = False


class Store(Protocol):
    """What the mediator keeps, as it uses it (chalicelib.mediator.store on DynamoDB)."""

    def get_animation(self, image_id: str, consistent: bool = False) -> AnimationState | None: ...
    def states(self, image_ids: list[str]) -> dict[str, AnimationState]: ...
    def directory(
        self, shard: int, after: str | None = None, limit: int = 1000, prefix: str | None = None
    ) -> ShardPage: ...
    def apply(  # AlreadyDecided, Outdated
        self, decision: Decision, log: Sequence[Line] = (), usage: Charge | None = None
    ) -> None: ...
    def newest_frames(self, image_id: str, count: int, up_to: int | None = None) -> list[Frame]: ...
    def run(self, image_id: str, run_time: int, consistent: bool = True) -> Run | None: ...
    def run_frames(self, image_id: str, run_time: int) -> list[Frame]: ...
    def run_frame(self, image_id: str, run_time: int, valid_time: int) -> Frame | None: ...
    def run_fetches(self, image_id: str, run_time: int) -> list[Fetch]: ...
    def frame(self, image_id: str, valid_time: int, consistent: bool = False) -> Frame | None: ...
    def gif(self, image_id: str, valid_time: int, consistent: bool = False) -> Gif | None: ...
    def fetch(self, image_id: str, valid_time: int) -> Fetch | None: ...
    def fetches_of(self, wanted: list[tuple[str, int]]) -> dict[str, Fetch]: ...
    def fetches_in(self, wanted: list[tuple[str, int]]) -> list[tuple[str, Fetch]]: ...
    def mark_sent(self, kind: str, image_id: str, valid_time: int) -> None: ...
    def log_event(self, direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None: ...
    def log_events(self, lines: Iterable[Line]) -> None: ...
    def failures(self, image_id: str, limit: int = 20) -> list[Failure]: ...
    def record_stale(self, shard: int, after: str | None, stale: list[dict[str, Any]], now: int) -> None: ...
    def record_tick(self, now: int) -> None: ...
    def forget_failure(self, image_id: str, failure: Failure) -> bool: ...


class Ports(NamedTuple):
    store: Store
    publish: Callable[[Sequence[Message]], list[Message]]  # please-messages to their workers: those not sent
    presign: Callable[[Location, int], str]  # a GET URL of an object, lasting so many seconds
    clock: Callable[[], float] = time.time
    # A tick's slices to the tick queue: those not enqueued. None: each is worked on here, at once.
    enqueue: Callable[[list[TickSlice]], list[TickSlice]] | None = None


Asked = list[tuple[str, Message]]  # (imageId, a request for it)


class Outcome(NamedTuple):
    """A slice's part: the animations asked for, asked again (their requests unsent before), failed."""

    asked: list[str]
    resent: list[str]
    failed: set[str]


class Refused(Exception):
    """What the animation's state does not allow now (the API's 409)."""


class NotSent(Exception):
    """Messages a decision made could not be sent: the message or slice that led to it comes back
    (and its records say what to send again)."""


class Contended(Exception):
    """An animation's counts kept moving under a decision: the message comes back, to decide again."""


class Mediator:
    def __init__(self, ports: Ports):
        self.store, self.publish, self.presign, self.clock, self.enqueue = ports

    def now(self) -> int:
        return int(self.clock())

    # Messages -------------------------------------------------------------------------

    def handle_record(self, body: str, again: bool = False) -> None:
        """One message from the mediator's queue (`again`: it came before, and its handling did not
        finish). An invalid one is logged, recorded and dropped."""
        try:
            message = parse(body)
            if message.type.startswith("please-"):
                raise MessageError("please-messages go to the workers, not to the mediator", message.type)
        except MessageError as exc:
            logger.error(f"invalid message dropped: {exc}")
            self.store.log_event("invalid", {"type": "invalid", "error": str(exc), "body": body[:2000]}, "invalid")
            return
        logger.set_correlation_id(message.correlation_id)
        self.handle(message, self.now(), again)

    def handle(self, message: Message, now: int, again: bool = False) -> None:
        """A did-message. `again`: this very message came before (a redelivery after its handling
        failed, or a dead letter sent back): what its decision left unsent is sent now. A duplicate
        of a message (another delivery of the same answer) only finds its decision made."""
        worker = [message.usage.to_dict()] if message.usage else []
        with metering.message(_animation_of(message), worker):  # what it cost goes with its decision
            self._handle(message, now, again)

    def _handle(self, message: Message, now: int, again: bool) -> None:
        line = Line("in", message, message.correlation_id)
        if isinstance(message, DidFetchAmpImage):
            self.frame_arrived(message, now, line, again)
        elif isinstance(message, DidCreateThumbnail):
            self.carry_out(decide.on_thumbnail(message), line)
        elif isinstance(message, DidCreateGif):
            self.gif_made(message, now, line, again)
        elif isinstance(message, DidSendEmail):
            self.carry_out(decide.on_email(message), line)
        elif isinstance(message, DidFail):
            logger.warning(f"{message.action} failed: {message.error}")
            decision = self.failure_of(message)
            self.carry_out(decision, line)
            change = decision.changes[0]
            if isinstance(change, RecordFailure) and change.run_time is not None and change.action == "fetch-amp-image":
                self.settle_run(change.image_id, change.run_time, now)  # a run's frame that will not come

    def failure_of(self, message: DidFail) -> Decision:
        """The failure's decision; a scheduled frame's is asked for again later, if its animation is
        still there (a deleted one's failure is recorded all the same)."""
        decision = decide.on_failure(message)
        change = decision.changes[0]
        if isinstance(change, RecordFailure) and change.failed_slot is not None:
            if self.store.get_animation(change.image_id) is None:
                decision = decision._replace(changes=(change._replace(failed_slot=None),))
        return decision

    def frame_arrived(self, frame: DidFetchAmpImage, now: int, line: Line, again: bool = False) -> None:
        """Record the frame, its thumbnails and the GIF it completes, decided on the animation's
        counts as they are (read once; again only when another frame moved them in between)."""
        for attempt in range(CLAIM_ATTEMPTS):
            state = self.store.get_animation(frame.image_id, consistent=True)
            if state is None:
                logger.warning(f"a frame of {frame.image_id!r}, an animation that does not exist: not recorded")
                self.store.log_event(*line)
                return
            if frame.run_time is not None:  # a model run's frame
                self.carry_out(decide.on_run_frame(state, frame, now), line, resend=again)
                self.settle_run(frame.image_id, frame.run_time, now)
                return
            wanted = state.animation.frames
            due = decide.gif_due_after(state)
            others = self.store.newest_frames(frame.image_id, wanted) if due else None
            forecast = self.forecast_frames(state) if due else None
            try:
                if self.carry_out(decide.on_frame(state, frame, now, others, forecast), line, resend=again):
                    telemetry.add("FrameAge", max(now - frame.valid_time, 0), imageId=frame.image_id)
                return
            except Outdated:
                _back_off(attempt)
        raise Contended(f"the counts of {frame.image_id!r} kept moving: the frame comes back")

    def forecast_frames(self, state: AnimationState) -> list[Frame] | None:
        """A loop's frames of its newest settled run (what its GIFs show after the observed ones)."""
        if state.animation.kind != "loop" or not state.complete_run:
            return None
        return self.store.run_frames(state.animation.image_id, state.complete_run)

    def settle_run(self, image_id: str, run_time: int, now: int) -> None:
        """A run whose frames are all in or failed, or whose deadline passed: settled once (a
        forecast's GIF claimed and asked for)."""
        state = self.store.get_animation(image_id, consistent=True)
        run = self.store.run(image_id, run_time)
        if state is None or run is None or run.settled:
            return
        if run.got + run.failed < run.expected and now < run.deadline:
            return
        decision = decide.settle_run(state, run, self.store.run_frames(image_id, run_time), now)
        if decision is not None:
            self.carry_out(decision)

    def gif_made(self, gif: DidCreateGif, now: int, line: Line, again: bool = False) -> None:
        state = self.store.get_animation(gif.image_id)
        links = self.email_links(state, gif) if state and state.animation.email else None
        animation, shown = (state.animation, state.done_gif) if state else (None, 0)
        made = self.carry_out(decide.on_gif(animation, gif, links, now, shown), line, resend=again)
        again_with_formats = decide.outputs_of(gif) if not made else None
        if again_with_formats is not None:  # a format's failure redriven: the formats as made now
            self.carry_out(again_with_formats)

    # Schedules: a tick, fanned out --------------------------------------------------

    def tick(self, kind: ticks.Kind, now: int | None = None) -> dict[str, Any]:
        """A schedule's tick: the first page of each directory shard, packed into slices of up to
        ticks.SLICE animations, to the tick queue."""
        now = self.now() if now is None else now
        with ThreadPoolExecutor(max_workers=SHARDS) as pool:  # 16 queries at once: one's latency
            page = in_context(lambda shard: (shard, self.store.directory(shard, None, ticks.SLICE)))
            pages = list(pool.map(page, range(SHARDS)))
        slices = ticks.pack(kind, now, pages)
        self.hand_on(slices)
        if kind == "fetch":
            try:  # the status view's heartbeat: the schedule runs, whether or not anything was due
                self.store.record_tick(now)
            except Exception as exc:
                logger.warning(f"tick not recorded: {exc!r}")
        logger.info(f"{kind} tick at {now}: {len(slices)} slices handed on")
        return {"kind": kind, "time": now, "slices": len(slices)}

    def fetch_due_frames(self, now: int | None = None) -> dict[str, Any]:
        """Every few minutes: ask for each enabled animation's frame that is due."""
        return self.tick("fetch", now)

    def rebuild_gifs(self, now: int | None = None) -> dict[str, Any]:
        """Hourly: a GIF of the newest frames of each animation with frames newer than its latest GIF."""
        return self.tick("rebuild", now)

    def hand_on(self, slices: list[TickSlice]) -> None:
        if self.enqueue is None:
            for part in slices:
                self.run_slice(part)
            return
        missed = self.enqueue(slices)
        if missed:
            raise NotSent(f"{len(missed)} of {len(slices)} tick slices were not enqueued")

    def run_slice(self, part: TickSlice, again: bool = False) -> dict[str, Any]:
        """A slice of a tick: at most ticks.SLICE animations, each on its own. `again`: it came
        before (a redelivery, or a retry slice): what its animations' records show asked for and
        not done is sent again."""
        again = again or part.attempt > 0
        if part.only is not None:
            image_ids, rest = list(part.only), part.after
        else:
            page = self.store.directory(part.shard, part.after, ticks.SLICE)
            image_ids, rest = ticks.due(part.kind, part.time, page), page.after
        if rest is not None:  # the rest of the shard, first: it is not held up by this part
            self.hand_on([TickSlice(kind=part.kind, time=part.time, shard=part.shard, after=rest)])
        states = self.store.states(image_ids) if image_ids else {}
        if part.attempt == 0:  # the fetch tick's due animations; the hourly rebuild's, all
            self.note_stale(part, states)
        work = self._fetch_part if part.kind == "fetch" else self._rebuild_part
        done, resent, failed = work(states, part.time, again)
        if failed:
            if part.attempt >= ticks.MAX_ATTEMPTS:
                raise NotSent(f"{part.kind} tick at {part.time}: still failing for {sorted(failed)}")
            retry = part.replace(only=sorted(failed), after=None, attempt=part.attempt + 1)
            logger.warning(f"{part.kind} tick: {len(failed)} animations tried again in {retry.retry_delay} s")
            self.hand_on([retry])
        result = {"animations": len(states), "done": done, "resent": resent, "failed": sorted(failed)}
        counts = {"animations": len(states), "asked": len(done), "resent": len(resent), "failed": len(failed)}
        logger.info(f"{part.kind} slice of shard {part.shard}: {len(done)} asked", extra=counts)
        return result

    def note_stale(self, part: TickSlice, states: dict[str, AnimationState]) -> None:
        """The slice's stale animations (no new frame for STALE_INTERVALS intervals): a metric (the
        alarm's) and a record (the status view's). Best effort: the fetches matter more."""
        stale = []
        for image_id, state in states.items():
            since = decide.stale_since(state, part.time)
            if since is not None:
                stale.append({"imageId": image_id, "since": since, "interval": state.animation.interval})
        telemetry.add("StaleAnimations", len(stale))
        if stale:
            logger.warning(f"{len(stale)} stale animations in shard {part.shard}", extra={"stale": stale[:20]})
        try:
            self.store.record_stale(part.shard, part.only[0] if part.only else part.after, stale, part.time)
        except Exception as exc:
            logger.warning(f"stale animations not recorded: {exc!r}")

    def _fetch_part(self, states: dict[str, AnimationState], now: int, again: bool) -> Outcome:
        """Each animation's frames due (its newest on its grid; all of its window when it is new or
        after a gap; a failed one again) claimed once, and asked for in batches."""
        asked: Asked = []
        failed: set[str] = set()
        unsure: list[tuple[str, int]] = []  # claimed before: sent, unless the records say otherwise
        for image_id, state in states.items():
            try:
                decisions = self.due_fetches(state, now)
            except LookupError as exc:  # its source is no longer configured: nothing to ask of it
                logger.warning(f"no frames asked for {image_id!r}: {exc}")
                continue
            if again and state.animation.enabled and state.animation.observes:  # claimed before: maybe unsent
                newest = decide.due_slot(state.animation, now, TICK_SECONDS)
                unsure += [(image_id, t) for t in decide.window(state.animation, newest) if t <= state.last_requested]
            try:
                for decision in decisions:  # oldest first: each claimed from the last request the one before left
                    self.store.apply(decision, [Line("out", m, m.correlation_id) for m in decision.messages])
                    asked += [(image_id, m) for m in decision.messages]
            except AlreadyDecided:
                pass  # another tick made it (its requests are on their records: `again` sends them)
            except Exception as exc:  # throttled, or the table unreachable: this animation's part only
                logger.warning(f"fetch claim of {image_id!r} failed: {exc!r}")
                failed.add(image_id)
            if state.animation.runs and state.last_run > state.complete_run and now >= state.run_deadline:
                try:  # its newest run's deadline passed: made into its GIF (a loop: used) with what came
                    self.settle_run(image_id, state.last_run, now)
                except Exception as exc:
                    logger.warning(f"run {state.last_run} of {image_id!r} not settled: {exc!r}")
                    failed.add(image_id)
        fetches = self.store.fetches_in(unsure) if unsure else []
        resent: Asked = [
            (image_id, fetch.request)
            for image_id, fetch in fetches
            if fetch.status == "requested" and fetch.request is not None
        ]
        return self._send(asked, resent, failed)

    def due_fetches(self, state: AnimationState, now: int) -> list[Decision]:
        """What an animation asks of its sources now: its window's frames that are due (an observed
        animation's, a loop's history), served by its source; the newest model run, if it is new (a
        forecast's, a loop's forecast part). LookupError: a source the stage does not have."""
        from .. import sources

        animation, decisions = state.animation, []
        if animation.observes:
            times = sources.source(animation.source).times
            decisions += decide.next_fetches(state, now, TICK_SECONDS, back=times.back, newest=times.newest(now))
        if animation.runs:
            times = sources.source(animation.run_source).times
            run = decide.next_run(state, now, times.latest_run(now), times.step, times.ahead)
            decisions += [run] if run is not None else []
        return decisions

    def start(self, image_id: str, now: int | None = None) -> None:
        """A new animation, or one enabled again: its window's frames (and its newest run) asked for
        at once, here, as its tick would (claimed once, then sent), so its first GIF comes within a
        minute, not once N intervals have passed; and no tick waits behind a thousand of them. What
        fails here its next due tick asks for: it fills the window (NotSent says so)."""
        now = self.now() if now is None else now
        state = self.store.get_animation(image_id, consistent=True)
        if state is None:
            return
        _, _, failed = self._fetch_part({image_id: state}, now, again=False)
        if failed:
            raise NotSent(f"the frames of {image_id!r} were not all asked for: its next tick asks for them")

    def _rebuild_part(self, states: dict[str, AnimationState], now: int, again: bool) -> Outcome:
        """Each enabled animation with frames newer than its latest GIF: a GIF of its newest frames."""
        asked: Asked = []
        resent: Asked = []
        failed: set[str] = set()
        for image_id, state in states.items():
            if not state.animation.enabled:
                continue
            try:
                decision, made = self.claim_gif(image_id, now, "rebuild", decide.rebuild_due, state=state)
                if decision is not None and made:
                    asked += [(image_id, m) for m in decision.messages]
                elif again:
                    valid_time = decision.changes[0].valid_time if decision is not None else state.latest_gif
                    resent += [(image_id, m) for m in self.unsent_gif(image_id, valid_time)]
            except Exception as exc:
                logger.warning(f"GIF rebuild of {image_id!r} failed: {exc!r}")
                failed.add(image_id)
        return self._send(asked, resent, failed)

    def _send(self, asked: Asked, resent: Asked, failed: set[str]) -> Outcome:
        """A slice's messages, 10 a call (the fresh ones logged with their decisions, those sent
        again logged here, 25 lines a call): which animations were asked, asked again, failed."""
        if resent:
            try:
                self.store.log_events(Line("out", m, m.correlation_id) for _, m in resent)
            except Exception as exc:  # the log is no reason to hold back a request
                logger.warning(f"{len(resent)} resends not logged: {exc!r}")
        everything = asked + resent
        missed = {id(m) for m in self.publish([m for _, m in everything])} if everything else set()
        failed |= {image_id for image_id, m in everything if id(m) in missed}
        return Outcome([i for i, _ in asked], [i for i, _ in resent], failed)

    # Asked for by people (the REST API) -----------------------------------------------

    def fetch_now(self, image_id: str, now: int) -> Message:
        state = self.store.get_animation(image_id)
        if state is None:
            raise LookupError(image_id)
        if not state.animation.enabled:
            raise Refused(f"animation {image_id!r} is disabled")
        if state.animation.kind == "forecast":
            raise Refused(
                f"{image_id!r} is a forecast: its frames come with its model runs (a GIF of the run now instead)"
            )
        decision = decide.fetch_now(state.animation, now)
        change = decision.changes[0]
        if not self.carry_out(decision):
            fetch = self.store.fetch(image_id, change.valid_time)
            if fetch is None or fetch.sent_at or fetch.status != "requested" or fetch.request is None:
                raise Refused(f"a frame of {image_id!r} for this minute was asked for already")
            self.send([fetch.request], logged=False)  # asked for before, but its sending failed
        self.store.mark_sent("FETCH", image_id, change.valid_time)
        return decision.messages[0]

    def gif_now(self, image_id: str, now: int) -> Message:
        state = self.store.get_animation(image_id, consistent=True)
        if state is None:
            raise LookupError(image_id)
        if not state.animation.enabled:
            raise Refused(f"animation {image_id!r} is disabled: enable it to make GIFs")
        if state.animation.kind == "forecast":
            return self.run_gif_now(state, now)
        decision, made = self.claim_gif(image_id, now, "manual", lambda _: True, f"manual-gif-{image_id}-{now}", state)
        if decision is None:
            frames, wanted = state.frame_count, state.animation.frames
            raise Refused(f"only {frames} of {wanted} frames so far: a GIF of {image_id!r} needs {wanted}")
        valid_time = decision.changes[0].valid_time
        if made:
            self.send(list(decision.messages))
            self.store.mark_sent("GIF", image_id, valid_time)
            return decision.messages[0]
        gif = self.store.gif(image_id, valid_time, consistent=True)
        if gif is None or gif.sent_at or gif.status != "claimed" or gif.request is None:
            window = f"the newest {state.animation.frames} frames (to {decide.utc(valid_time)})"
            if gif is not None and gif.status == "claimed":
                raise Refused(f"a GIF of this window, {window}, is being made")
            if gif is not None and gif.status == "failed":
                raise Refused(f"the GIF of {window} failed: redrive its failure to try again")
            raise Refused(f"a GIF of {window} exists already: no newer frame since")
        self.send([gif.request], logged=False)  # claimed before, but not known sent: send it now
        self.store.mark_sent("GIF", image_id, valid_time)
        return gif.request

    def run_gif_now(self, state: AnimationState, now: int) -> Message:
        """A forecast's GIF now: its newest run settled at once, with the frames that came."""
        image_id = state.animation.image_id
        run = self.store.run(image_id, state.last_run) if state.last_run else None
        if run is None:
            raise Refused(f"no model run of {image_id!r} asked for yet")
        when = decide.utc(run.run_time)
        if run.settled:
            gif = self.store.gif(image_id, run.run_time, consistent=True)
            if gif is not None and gif.status == "claimed" and not gif.sent_at and gif.request is not None:
                self.send([gif.request], logged=False)  # claimed before, not known sent
                self.store.mark_sent("GIF", image_id, run.run_time)
                return gif.request
            raise Refused(f"the run of {when} is made already: the next run makes the next GIF")
        frames = self.store.run_frames(image_id, run.run_time)
        decision = decide.settle_run(state, run._replace(deadline=now), frames, now)
        if decision is None or not decision.messages:
            raise Refused(f"only {len(frames)} of {run.expected} frames of the run of {when} so far: a GIF needs 2")
        self.carry_out(decision)
        self.store.mark_sent("GIF", image_id, run.run_time)
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
            self.send([message], logged=False)
            self.store.forget_failure(image_id, failure)
            redriven += 1
        return {"redriven": redriven, "kept": kept}

    # Decisions ------------------------------------------------------------------------

    def carry_out(self, decision: Decision, line: Line | None = None, resend: bool = False) -> bool:
        """Apply a decision once, logged with the message that led to it, and send its messages;
        True if this call made it. Made before: send what its records show left unsent (`resend`).
        Outdated propagates: the caller decides again on fresh counts."""
        lines = [line] if line else []
        about = getattr(decision.changes[0], "image_id", None) if decision.changes else None
        charge = metering.for_decision(about if about != decide.UNATTRIBUTED else None, len(decision.messages))
        try:
            self.store.apply(decision, lines + [Line("out", m, m.correlation_id) for m in decision.messages], charge)
        except AlreadyDecided:
            unsent = self.unsent(decision) if resend else []
            if unsent or lines:
                self.send(unsent, logged=False, lines=lines)
            return False
        metering.recorded(charge)
        self.send(list(decision.messages))
        return True

    def send(self, messages: list[Message], logged: bool = True, lines: list[Line] | None = None) -> None:
        """Messages to their workers (lines logged first, with an "out" line for each message not
        `logged` with its decision); NotSent when any did not go."""
        lines = list(lines or []) + ([] if logged else [Line("out", m, m.correlation_id) for m in messages])
        if lines:
            self.store.log_events(lines)
        failed = self.publish(messages) if messages else []
        if failed:
            raise NotSent(f"{len(failed)} of {len(messages)} messages were not sent: {failed[0].type}, ...")

    def unsent(self, decision: Decision) -> list[Message]:
        """What a decision made before asked for and its records show not done (as it asked)."""
        found: list[Message] = []
        for change in decision.changes:
            if isinstance(change, RecordFrame):
                frame = self.store.frame(change.image_id, change.valid_time, consistent=True)
                if frame is not None:
                    found += frame.unsent()
                    if frame.gif_claimed is not None:
                        found += self.unsent_gif(change.image_id, frame.gif_claimed)
            elif isinstance(change, ClaimGif):
                found += self.unsent_gif(change.image_id, change.valid_time)
            elif isinstance(change, FinishGif):
                gif = self.store.gif(change.image_id, change.valid_time, consistent=True)
                if gif is not None and gif.email_status == "requested" and gif.email is not None:
                    found.append(gif.email)
            elif isinstance(change, RecordFetchRequest):
                fetch = self.store.fetch(change.image_id, change.valid_time)
                if fetch is not None and fetch.status == "requested" and fetch.request is not None:
                    found.append(fetch.request)
            elif isinstance(change, RecordRunFrame):
                frame = self.store.run_frame(change.image_id, change.run_time, change.valid_time)
                found += frame.unsent() if frame is not None else []
            elif isinstance(change, ClaimRun):
                found += [
                    f.request
                    for f in self.store.run_fetches(change.image_id, change.run_time)
                    if f.status == "requested" and f.request is not None
                ]
            elif isinstance(change, SettleRun):
                found += self.unsent_gif(change.image_id, change.run_time) if change.gif is not None else []
            elif isinstance(change, ClaimFetches):
                wanted = [(change.image_id, r.valid_time) for r in change.retried + change.requests]
                for _, fetch in self.store.fetches_in(wanted):
                    if fetch.status == "requested" and fetch.request is not None:
                        found.append(fetch.request)
        return found

    def unsent_gif(self, image_id: str, valid_time: int) -> list[Message]:
        if not valid_time:
            return []
        gif = self.store.gif(image_id, valid_time, consistent=True)
        return [gif.request] if gif is not None and gif.status == "claimed" and gif.request is not None else []

    def claim_gif(
        self,
        image_id: str,
        now: int,
        reason: GifReason,
        rule: Callable[[AnimationState], bool],
        correlation_id: str | None = None,
        state: AnimationState | None = None,
    ) -> tuple[Decision | None, bool]:
        """Claim a GIF of the newest frames if `rule` says one is due (not sending it): the decision
        and whether this call made it (False: its GIF was claimed before); (None, False) when none is
        due. Claims are guarded by the counts they saw: when those moved, look again."""
        for attempt in range(CLAIM_ATTEMPTS):
            if state is None or attempt:
                state = self.store.get_animation(image_id, consistent=True)
            if state is None or not rule(state):
                return None, False
            frames = self.store.newest_frames(image_id, state.animation.frames)
            decision = decide.gif_of(state, frames, now, reason, correlation_id, self.forecast_frames(state))
            if decision is None:
                return None, False
            try:
                self.store.apply(decision, [Line("out", m, m.correlation_id) for m in decision.messages])
                return decision, True
            except AlreadyDecided:
                return decision, False
            except Outdated:
                _back_off(attempt)
        raise Contended(f"the counts of {image_id!r} kept moving: no GIF claimed")

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
        run = gif.valid_time if state.animation.kind == "forecast" else None  # a run's GIF: its run's frames
        if labels:
            frames = (
                self.store.run_frames(gif.image_id, run)[-EMAIL_THUMBNAILS:]
                if run is not None
                else self.store.newest_frames(gif.image_id, EMAIL_THUMBNAILS, up_to=gif.valid_time)
            )
            for frame in frames:
                # A route is linked whether or not the thumbnail is made yet (the GIF may come before its
                # newest frame's thumbnail): it redirects when followed. A presigned URL needs the object.
                location = frame.thumbnails.get(labels[0])
                if base:
                    thumbnails.append(
                        (frame.valid_time, thumbnail_link(base, gif.image_id, frame.valid_time, labels[0]))
                    )
                elif location is not None:
                    thumbnails.append((frame.valid_time, self.presign(location, FALLBACK_LINK_SECONDS)))
        gif_url = (
            gif_link(base, gif.image_id, gif.valid_time) if base else self.presign(gif.location, FALLBACK_LINK_SECONDS)
        )
        return Links(gif_url, sorted(thumbnails))


def _animation_of(message: Message) -> str | None:
    """The animation a did-message's cost is charged to: the one it names (an upload's thumbnail and a
    did-fail name none: a did-fail's goes to the animation its failure is recorded against)."""
    if isinstance(message, DidCreateThumbnail) and message.source is not None:
        return None
    image_id = getattr(message, "image_id", None)
    return image_id if isinstance(image_id, str) else None


def _back_off(attempt: int) -> None:
    """A short random wait before deciding again, so decisions racing on one animation's counts
    spread out (full jitter, 5 ms doubling)."""
    time.sleep(random.uniform(0, 0.005 * 2**attempt))


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
            publish=lambda messages: publish(messages),
            presign=lambda location, expiry: presign(location, expiry),
            enqueue=lambda slices: enqueue(slices),
        )
    )


def handle_record(body: str, again: bool = False) -> None:
    mediator().handle_record(body, again)


def handle(message: Message, now: int, again: bool = False) -> None:
    mediator().handle(message, now, again)


def fetch_due_frames(now: int | None = None, context: Any = None) -> dict[str, Any]:
    from .metering import metered

    with metered("fetch_due_frames", context):
        return mediator().fetch_due_frames(now)


def rebuild_gifs(now: int | None = None, context: Any = None) -> dict[str, Any]:
    from .metering import metered

    with metered("rebuild_gifs", context):
        return mediator().rebuild_gifs(now)


def run_slice(part: TickSlice, again: bool = False) -> dict[str, Any]:
    return mediator().run_slice(part, again)


def fetch_now(image_id: str, now: int) -> Message:
    return mediator().fetch_now(image_id, now)


def start(image_id: str) -> None:
    mediator().start(image_id)


def gif_now(image_id: str, now: int) -> Message:
    return mediator().gif_now(image_id, now)


def redrive_failures(image_id: str) -> dict[str, int]:
    return mediator().redrive_failures(image_id)


def enqueue(slices: list[TickSlice]) -> list[TickSlice]:
    """Slices to the tick queue, those of one delay together; those SQS did not take."""
    missed: list[TickSlice] = []
    for delay in sorted({part.retry_delay for part in slices}):
        group = [part for part in slices if part.retry_delay == delay]
        missed += [group[i] for i in enqueue_slices([part.to_json() for part in group], delay)]
    return missed


def redrive_dead_letters() -> int:
    """Every dead letter back where it came from (a tick's slice to the tick queue, anything else
    to the mediator's queue), each then forgotten (sent at least once)."""
    moved = 0
    for letter in store.dead_letters():
        try:
            part = ticks.parse_slice(letter.body)
        except MessageError:
            resend_to_mediator(letter.body, redriven=True)
        else:
            if enqueue([part.replace(attempt=1)]):  # a retry: it sends what is unsent
                raise NotSent(f"dead letter {letter.message_id} could not be sent back")
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


def gif_link(base: str, image_id: str, valid_time: int, format: str = "gif") -> str:
    """The route that redirects to a GIF (or to its WebP or MP4, made from the same frames)."""
    link = f"{base}animations/{quote(image_id, safe='')}/gifs/{int(valid_time)}/image"
    return link if format == "gif" else f"{link}?format={format}"


def frame_link(base: str, image_id: str, valid_time: int, run_time: int | None = None) -> str:
    link = f"{base}animations/{quote(image_id, safe='')}/frames/{int(valid_time)}/image"
    return link if run_time is None else f"{link}?run={int(run_time)}"


def thumbnail_link(base: str, image_id: str, valid_time: int, label: str, run_time: int | None = None) -> str:
    link = f"{base}animations/{quote(image_id, safe='')}/frames/{int(valid_time)}/thumbnails/{quote(label, safe='')}"
    return link if run_time is None else f"{link}?run={int(run_time)}"


def presign(location: Location, expiry: int) -> str:
    return objects().presign(location, expiry)
