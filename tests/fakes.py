"""In-memory stand-ins for the mediator's ports: a store that keeps the same promises as the
DynamoDB one (each decision's changes all or none, under the same claims and guards), a
publisher that keeps what it was given, and a clock. No AWS service is faked: these replace
the app's own port (chalicelib.mediator.service.Store), not boto3."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from chalicelib.mediator.animation import Animation
from chalicelib.mediator.decide import (
    UNATTRIBUTED,
    AlreadyDecided,
    AnimationState,
    ClaimFetches,
    ClaimGif,
    ClaimRun,
    phase,
    Decision,
    FinishGif,
    Outdated,
    RecordEmail,
    RecordFailure,
    RecordFetchRequest,
    RecordFrame,
    RecordOutputs,
    RecordRunFrame,
    RecordThumbnail,
    SettleRun,
)
from chalicelib.mediator.records import Failure, Fetch, Frame, Gif, Line, Run
from chalicelib.mediator.store import keys
from chalicelib.mediator.store.animations import ShardPage
from chalicelib.messages import Message
from chalicelib.settings import TICK_SECONDS

Check = Callable[[], bool]
Effect = Callable[[], None]
Write = tuple[Check, Effect, bool]  # its condition, what it does, whether the condition is a guard


class MemoryStore:
    """chalicelib.mediator.store's promises, in dicts behind one lock."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0):
        self.clock = clock
        self._lock = threading.RLock()
        self.animations: dict[str, dict[str, Any]] = {}  # config and counters, as the STATE item
        self.frames: dict[tuple[str, int], Frame] = {}
        self.fetches: dict[tuple[str, int], Fetch] = {}
        self.runs: dict[tuple[str, int], Run] = {}
        self.run_frames_: dict[tuple[str, int, int], Frame] = {}
        self.run_fetches_: dict[tuple[str, int, int], Fetch] = {}
        self.gifs: dict[tuple[str, int], Gif] = {}
        self.failures_: dict[tuple[str, int, str, str], Failure] = {}
        self.stale: dict[tuple[int, str | None], list[dict[str, Any]]] = {}
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
                item.get("doneGif", 0),
                item.get("updatedAt", 0),
                tuple(sorted(item.get("failedSlots", set()))),
                item.get("lastRun", 0),
                item.get("runDeadline", 0),
                item.get("completeRun", 0),
            )

    def states(self, image_ids: list[str]) -> dict[str, AnimationState]:
        found = {image_id: self.get_animation(image_id) for image_id in image_ids}
        return {image_id: state for image_id, state in found.items() if state is not None}

    def directory(
        self, shard: int, after: str | None = None, limit: int = 1000, prefix: str | None = None
    ) -> ShardPage:
        with self._lock:
            ids = sorted(
                i
                for i in self.animations
                if keys.shard(i) == shard and (after is None or i > after) and i.startswith(prefix or "")
            )
        schedules = {
            i: (a.interval, phase(a, TICK_SECONDS), a.enabled)
            for i in ids[:limit]
            for a in [self.animations[i]["config"]]
        }
        return ShardPage(ids[:limit], ids[limit - 1] if len(ids) > limit else None, schedules)

    def all_animations(self) -> Iterator[AnimationState]:
        for image_id in sorted(self.animations):
            state = self.get_animation(image_id)
            if state is not None:
                yield state

    # Records --------------------------------------------------------------------------

    def newest_frames(self, image_id: str, count: int, up_to: int | None = None) -> list[Frame]:
        with self._lock:
            found = [f for (i, t), f in self.frames.items() if i == image_id and (up_to is None or t <= up_to)]
        return sorted(found, key=lambda f: -f.valid_time)[:count]

    def run(self, image_id: str, run_time: int, consistent: bool = True) -> Run | None:
        with self._lock:
            return self.runs.get((image_id, run_time))

    def run_frames(self, image_id: str, run_time: int) -> list[Frame]:
        with self._lock:
            found = [f for (i, r, _), f in self.run_frames_.items() if (i, r) == (image_id, run_time)]
        return sorted(found, key=lambda f: f.valid_time)

    def run_frame(self, image_id: str, run_time: int, valid_time: int) -> Frame | None:
        with self._lock:
            return self.run_frames_.get((image_id, run_time, valid_time))

    def run_fetches(self, image_id: str, run_time: int) -> list[Fetch]:
        with self._lock:
            return [f for (i, r, _), f in sorted(self.run_fetches_.items()) if (i, r) == (image_id, run_time)]

    def frame(self, image_id: str, valid_time: int, consistent: bool = False) -> Frame | None:
        with self._lock:
            return self.frames.get((image_id, valid_time))

    def gif(self, image_id: str, valid_time: int, consistent: bool = False) -> Gif | None:
        with self._lock:
            return self.gifs.get((image_id, valid_time))

    def fetch(self, image_id: str, valid_time: int) -> Fetch | None:
        with self._lock:
            return self.fetches.get((image_id, valid_time))

    def fetches_of(self, wanted: list[tuple[str, int]]) -> dict[str, Fetch]:
        with self._lock:
            return {image_id: self.fetches[(image_id, t)] for image_id, t in wanted if (image_id, t) in self.fetches}

    def fetches_in(self, wanted: list[tuple[str, int]]) -> list[tuple[str, Fetch]]:
        with self._lock:
            return [(image_id, self.fetches[(image_id, t)]) for image_id, t in wanted if (image_id, t) in self.fetches]

    def mark_sent(self, kind: str, image_id: str, valid_time: int) -> None:
        with self._lock:
            kept: dict[Any, Any] = self.fetches if kind == "FETCH" else self.gifs
            if (image_id, valid_time) in kept:
                kept[(image_id, valid_time)] = kept[(image_id, valid_time)]._replace(sent_at=int(self.clock()) or 1)

    def failures(self, image_id: str, limit: int = 20) -> list[Failure]:
        with self._lock:
            return [f for key, f in sorted(self.failures_.items(), reverse=True) if key[0] == image_id][:limit]

    def forget_failure(self, image_id: str, failure: Failure) -> bool:
        with self._lock:
            return self.failures_.pop((image_id, failure.valid_time, failure.action, failure.detail), None) is not None

    def record_tick(self, now: int) -> None:
        with self._lock:
            self.ticked = now

    def record_stale(self, shard: int, after: str | None, stale: list[dict[str, Any]], now: int) -> None:
        with self._lock:
            self.stale[(shard, after)] = stale

    def log_event(self, direction: str, message: Message | dict[str, Any], correlation_id: str | None) -> None:
        self.log_events([Line(direction, message, correlation_id)])

    def log_events(self, lines: Iterable[Line]) -> None:
        with self._lock:
            for direction, message, correlation_id in lines:
                kind = message.type if isinstance(message, Message) else str(message.get("type", "?"))
                self.log.append((direction, kind, correlation_id))

    # Decisions ----------------------------------------------------------------------------

    def apply(self, decision: Decision, log: Sequence[Line] = (), usage: Any = None) -> None:
        """Every condition first, then every effect and the log lines: all or none, as a transaction.
        A claim that fails: AlreadyDecided; only guards: Outdated."""
        with self._lock:
            writes = [write for change in decision.changes for write in self._writes(change)]
            failed = [guard for check, _, guard in writes if not check()]
            if failed:
                raise Outdated(decision.key) if all(failed) else AlreadyDecided(decision.key)
            for _, effect, _ in writes:
                effect()
            self.log_events(log)

    # Each change: its conditions and its effects (as chalicelib/mediator/store/writes.py writes them)

    def _writes(self, change: Any) -> list[Write]:
        return {
            RecordFrame: self._record_frame,
            RecordFetchRequest: self._fetch_request,
            ClaimFetches: self._claim_fetches,
            ClaimRun: self._claim_run,
            RecordRunFrame: self._record_run_frame,
            SettleRun: self._settle_run,
            ClaimGif: self._claim_gif,
            FinishGif: self._finish_gif,
            RecordOutputs: self._record_outputs,
            RecordThumbnail: self._record_thumbnail,
            RecordEmail: self._record_email,
            RecordFailure: self._record_failure,
        }[type(change)](change)

    def _animation(self, image_id: str) -> dict[str, Any]:
        return self.animations.get(image_id, {})

    def _record_frame(self, c: RecordFrame) -> list[Write]:
        key, item = (c.image_id, c.valid_time), self._animation(c.image_id)
        frame = Frame(
            c.valid_time,
            c.location,
            {},
            c.correlation_id,
            int(self.clock()),
            c.requests,
            c.gif.valid_time if c.gif else None,
        )

        def counted() -> bool:
            seen = c.image_id in self.animations and item.get("frameCount", 0) == c.seen_count
            return seen and (c.gif is None or item.get("gifFrameCount", 0) == c.gif.seen_gif_frame_count)

        def count() -> None:
            item["frameCount"] = item.get("frameCount", 0) + 1
            if c.newest:
                item["newestFrame"] = c.valid_time
            if c.gif is not None:
                item.update(gifFrameCount=c.gif.frame_count, latestGif=c.gif.valid_time)
            item["failedSlots"] = set(item.get("failedSlots", set())) - set(c.cleared)

        writes: list[Write] = [
            (lambda: key not in self.frames, lambda: self.frames.__setitem__(key, frame), False),
            (counted, count, True),
            self._fetch_outcome(c.image_id, c.requested_time, "done"),
        ]
        if c.gif is not None:
            check, effect, _ = self._gif_record(c.gif)
            writes.append((check, effect, True))
        return writes

    def _fetch_request(self, c: RecordFetchRequest) -> list[Write]:
        key = (c.image_id, c.valid_time)
        fetch = Fetch(c.valid_time, "requested", int(self.clock()), request=c.request)
        return [(lambda: key not in self.fetches, lambda: self.fetches.__setitem__(key, fetch), False)]

    def _claim_fetches(self, c: ClaimFetches) -> list[Write]:
        item = self._animation(c.image_id)
        writes: list[Write] = []
        for request in c.requests:
            key = (c.image_id, request.valid_time)
            fetch = Fetch(request.valid_time, "requested", int(self.clock()), request=request)
            writes.append(
                (
                    lambda key=key: key not in self.fetches or self.fetches[key].status != "requested",
                    lambda key=key, fetch=fetch: self.fetches.__setitem__(key, fetch),
                    False,
                )
            )
        for request in c.retried:
            key = (c.image_id, request.valid_time)
            fetch = Fetch(request.valid_time, "requested", int(self.clock()), request=request)
            writes.append(
                (
                    lambda key=key: key in self.fetches and self.fetches[key].status == "failed",
                    lambda key=key, fetch=fetch: self.fetches.__setitem__(key, fetch),
                    False,
                )
            )
            failure = (c.image_id, request.valid_time, "fetch-amp-image", "")
            writes.append((lambda: True, lambda failure=failure: self.failures_.pop(failure, None), False))
        gone = {(r.valid_time, r.attempt or 0) for r in c.retried} | set(c.dropped)

        def claimed() -> bool:
            return c.image_id in self.animations and item.get("lastRequested", 0) == c.seen_last_requested

        def claim() -> None:
            if c.requests:
                item["lastRequested"] = c.newest
            item["failedSlots"] = set(item.get("failedSlots", set())) - gone

        writes.append((claimed, claim, False))
        return writes

    def _claim_run(self, c: ClaimRun) -> list[Write]:
        item = self._animation(c.image_id)
        key = (c.image_id, c.run_time)
        run = Run(c.run_time, tuple(r.valid_time for r in c.requests), 0, 0, int(self.clock()), c.deadline)

        def claim() -> None:
            self.runs[key] = run
            for request in c.requests:
                fetch = Fetch(request.valid_time, "requested", int(self.clock()), request=request)
                self.run_fetches_[(c.image_id, c.run_time, request.valid_time)] = fetch
            item.update(lastRun=c.run_time, runDeadline=c.deadline)

        return [
            (
                lambda: (
                    c.image_id in self.animations and item.get("lastRun", 0) == c.seen_last_run and key not in self.runs
                ),
                claim,
                False,
            )
        ]

    def _record_run_frame(self, c: RecordRunFrame) -> list[Write]:
        key = (c.image_id, c.run_time, c.valid_time)
        frame = Frame(c.valid_time, c.location, {}, c.correlation_id, int(self.clock()), c.requests)

        def record() -> None:
            self.run_frames_[key] = frame
            run = self.runs.get((c.image_id, c.run_time))
            if run is not None:
                self.runs[(c.image_id, c.run_time)] = run._replace(got=run.got + 1)
            if key in self.run_fetches_:
                self.run_fetches_[key] = self.run_fetches_[key]._replace(status="done")

        return [(lambda: key not in self.run_frames_, record, False)]

    def _settle_run(self, c: SettleRun) -> list[Write]:
        key = (c.image_id, c.run_time)
        item = self._animation(c.image_id)

        def settle() -> None:
            self.runs[key] = self.runs[key]._replace(settled=int(self.clock()) or 1)
            if c.newer:
                item["completeRun"] = c.run_time

        writes: list[Write] = [(lambda: key in self.runs and not self.runs[key].settled, settle, False)]
        if c.gif is not None:
            writes.append(self._gif_record(c.gif))
        return writes

    def _claim_gif(self, c: ClaimGif) -> list[Write]:
        item = self._animation(c.image_id)
        return [
            (
                lambda: c.image_id in self.animations and item.get("gifFrameCount", 0) == c.seen_gif_frame_count,
                lambda: item.update(gifFrameCount=c.frame_count, latestGif=c.valid_time),
                True,
            ),
            self._gif_record(c),
        ]

    def _gif_record(self, c: ClaimGif) -> Write:
        key = (c.image_id, c.valid_time)
        gif = Gif(
            c.valid_time,
            "claimed",
            c.frame_times,
            c.reason,
            correlation_id=c.correlation_id,
            claimed_at=int(self.clock()),
            request=c.request,
            run_time=c.run_time,
            gaps=c.gaps,
        )
        return (lambda: key not in self.gifs, lambda: self.gifs.__setitem__(key, gif), False)

    def _finish_gif(self, c: FinishGif) -> list[Write]:
        key = (c.image_id, c.valid_time)

        def finish() -> None:
            update: dict[str, Any] = {"status": "done", "location": c.location, "request": None}
            if c.outputs:
                update["outputs"] = tuple(c.outputs)
            if c.email is not None:
                update.update(email_id=c.email.email_id, email_status="requested", email=c.email)
            self.gifs[key] = self.gifs[key]._replace(**update)

        item = self._animation(c.image_id)
        writes: list[Write] = [(lambda: key in self.gifs and self.gifs[key].status != "done", finish, False)]
        if c.newest:
            writes.append(
                (lambda: c.image_id in self.animations, lambda: item.__setitem__("doneGif", c.valid_time), False)
            )
        return writes

    def _record_outputs(self, c: RecordOutputs) -> list[Write]:
        key = (c.image_id, c.valid_time)
        return [
            (
                lambda: key in self.gifs,
                lambda: self.gifs.__setitem__(key, self.gifs[key]._replace(outputs=tuple(c.outputs))),
                False,
            )
        ]

    def _record_thumbnail(self, c: RecordThumbnail) -> list[Write]:
        kept: dict[Any, Frame] = self.frames if c.run_time is None else self.run_frames_
        key: Any = (c.image_id, c.valid_time) if c.run_time is None else (c.image_id, c.run_time, c.valid_time)
        return [
            (
                lambda: key in kept and c.label not in kept[key].thumbnails,
                lambda: kept[key].thumbnails.__setitem__(c.label, c.location),
                False,
            )
        ]

    def _record_email(self, c: RecordEmail) -> list[Write]:
        key = (c.image_id, c.valid_time)
        return [
            (
                lambda: key in self.gifs and self.gifs[key].email_status != "sent",
                lambda: self.gifs.__setitem__(key, self.gifs[key]._replace(email_status="sent", email=None)),
                False,
            )
        ]

    def _record_failure(self, c: RecordFailure) -> list[Write]:
        key = (c.image_id, c.valid_time, c.action, c.detail)
        failure = Failure(c.valid_time, c.action, c.error, int(self.clock()), c.correlation_id, c.request, c.detail)
        writes: list[Write] = [
            (lambda: key not in self.failures_, lambda: self.failures_.__setitem__(key, failure), False)
        ]
        gif_key = (c.image_id, c.valid_time)
        if c.failed_slot is not None:
            item = self._animation(c.image_id)
            writes.append(
                (
                    lambda: c.image_id in self.animations,
                    lambda: item.__setitem__("failedSlots", set(item.get("failedSlots", set())) | {c.failed_slot}),
                    False,
                )
            )
        if c.action == "fetch-amp-image" and c.run_time is not None:
            run_key, fetch_key = (c.image_id, c.run_time), (c.image_id, c.run_time, c.valid_time)

            def counted() -> None:
                if run_key in self.runs:
                    self.runs[run_key] = self.runs[run_key]._replace(failed=self.runs[run_key].failed + 1)
                if fetch_key in self.run_fetches_:
                    self.run_fetches_[fetch_key] = self.run_fetches_[fetch_key]._replace(status="failed", error=c.error)

            writes.append((lambda: True, counted, False))
        elif c.action == "fetch-amp-image":
            writes.append(self._fetch_outcome(c.image_id, c.valid_time, "failed", c.error))
        elif (
            c.action in ("create-gif", "send-email")
            and c.image_id != UNATTRIBUTED
            and not (c.action == "create-gif" and c.detail)
        ):
            field, unless = ("status", "done") if c.action == "create-gif" else ("email_status", "sent")
            writes.append(
                (
                    lambda: gif_key in self.gifs and getattr(self.gifs[gif_key], field) != unless,
                    lambda: self.gifs.__setitem__(gif_key, self.gifs[gif_key]._replace(**{field: "failed"})),
                    False,
                )
            )
        return writes

    def _fetch_outcome(self, image_id: str, valid_time: int, status: str, error: str | None = None) -> Write:
        key = (image_id, valid_time)

        def end() -> None:
            before = self.fetches.get(key, Fetch(valid_time, status))
            self.fetches[key] = before._replace(status=status, error=error)

        return (lambda: True, end, False)


class Published:
    """A publisher port that keeps every message, and can fail the first `failing` messages, or
    every message `refuse` says no to (as SNS's PublishBatch does: each message on its own)."""

    def __init__(self, failing: int = 0, refuse: Callable[[Message], bool] | None = None):
        self.messages: list[Message] = []
        self.failing = failing
        self.refuse = refuse
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, messages: Sequence[Message]) -> list[Message]:
        failed = []
        with self._lock:
            self.calls += 1
            for message in messages:
                if self.failing > 0 or (self.refuse is not None and self.refuse(message)):
                    self.failing = max(0, self.failing - 1)
                    failed.append(message)
                else:
                    self.messages.append(message)
        return failed

    def of(self, kind: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.type == kind]
