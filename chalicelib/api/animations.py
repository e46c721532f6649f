"""The animations: list them, the page's cards, read, create or replace, delete; and the actions a person
asks of one (a frame now, a GIF now)."""

from __future__ import annotations

import re
import time
from typing import Any

from chalice import Response

from ..aws import objects
from ..log import logger
from ..mediator import decide, service, store
from ..mediator.animation import Animation
from ..mediator.decide import AnimationState
from ..messages import IMAGE_ID_PATTERN
from ..settings import TICK_SECONDS, names
from .auth import holds_token
from .errors import MAX_BODY, BadRequest, Conflict, NotFound, answers_json, json_body
from .openapi import answer, documented, error, errors, query
from .images import formats_answer
from .schemas import AnimationAnswer, Animations, Cards, Deleted, FetchAsked, GifAsked, UnsupportedMediaType
from .params import MAX_PAGE, base_url, checked_id, int_param, iso, known, limit_param, query_string, show

LISTING = (
    query(
        "after",
        {"type": "string", "maxLength": 80, "pattern": "^[0-9]{1,2}:", "example": "3:canyon"},
        "where to continue: the `next` of the page before",
    ),
    query("prefix", {"type": "string", "pattern": f"^{IMAGE_ID_PATTERN}$"}, "only the ids that start so"),
)

NEXT = re.compile(rf"([0-9]{{1,2}}):({IMAGE_ID_PATTERN})?")  # a listing's place: directory shard, last id


@documented(
    answer("animations, and where the next page starts (next; null at the end)", Animations),
    errors(400),
    query=(limit_param(20), *LISTING),
)
@answers_json
def list_animations(request: Any) -> dict[str, Any]:
    """Animations, a page at a time (in no order a reader should rely on), or those whose id starts so.

    Public; `email` (the recipients and sender) is included only when the request carries the token."""
    states, next_after = _listing(request, 20)
    private = holds_token(request)
    return {"animations": [animation_answer(state, private) for state in states], "next": next_after}


@documented(
    answer("a page of cards, and where the next page starts (next; null at the end)", Cards),
    errors(400),
    query=(limit_param(24), *LISTING),
)
@answers_json
def summary(request: Any) -> dict[str, Any]:
    """The page's cards: each animation's GIF, counts and how its latest run is doing, a page at a time.

    One request a page of cards, read in a few batched calls whatever the page's size. Public."""
    states, next_after = _listing(request, 24)
    latest = store.latest(states) if states else {}
    base = base_url(request)
    return {
        "animations": [_card(state, latest[state.animation.image_id], base) for state in states],
        "next": next_after,
    }


def _listing(request: Any, default: int) -> tuple[list[AnimationState], str | None]:
    params = query_string(request, "limit", "after", "prefix")
    limit = int_param(params, "limit", default, 1, MAX_PAGE)
    after, prefix = params.get("after"), params.get("prefix")
    if after is not None and (not NEXT.fullmatch(after) or int(after.partition(":")[0]) > store.SHARDS):
        raise BadRequest(f"after must be the `next` of the page before, not {show(after)}", "after")
    if prefix is not None:
        checked_id(prefix, "prefix")
    return store.list_animations(limit, after, prefix)


def _card(state: AnimationState, latest: Any, base: str) -> dict[str, Any]:
    """An animation's card: what it is, its latest GIF made, and how its latest run is doing."""
    animation, image_id = state.animation, state.animation.image_id
    gif, fetch, made = latest.gif, latest.fetch, latest.made
    if fetch is not None and fetch.status == "failed":
        status = "failed: fetch-amp-image"
    elif gif is not None and gif.status == "failed":
        status = "failed: create-gif"
    elif gif is not None and gif.status == "claimed":
        status = "making"
    else:
        status = "done" if state.done_gif else "waiting"
    run = gif.correlation_id if gif is not None else fetch.correlation_id if fetch is not None else None
    if animation.kind == "forecast" and latest.run is not None:  # its newest run's work: fetches, frames, GIF
        run = decide.forecast_id(image_id, latest.run.run_time)
    return {
        "imageId": image_id,
        "enabled": animation.enabled,
        "kind": animation.kind,
        "source": animation.source,
        "layers": animation.layers,
        "center": animation.center,
        "interval": animation.interval,
        "frames": animation.frames,
        "state": state_answer(state),
        "gif": {
            "validTime": state.done_gif,
            "time": iso(state.done_gif),
            "url": service.gif_link(base, image_id, state.done_gif),
            "runTime": made.run_time if made is not None else None,
            "gaps": [iso(t) for t in made.gaps] if made is not None else [],
            "formats": formats_answer(base, image_id, made, animation.formats) if made is not None else [],
        }
        if state.done_gif
        else None,
        "status": status,
        "runId": run,
        "progress": run_progress(state, latest.run)
        if animation.kind == "forecast"
        else progress(state, int(time.time())),
    }


def run_progress(state: AnimationState, run: Any) -> dict[str, Any]:
    """How far a forecast has come toward its newest run's GIF: `have` of `need` frames of the run
    (and how many failed), and when it is made at the latest (its deadline)."""
    enabled = state.animation.enabled
    if run is None:
        return {
            "rule": "run",
            "run": None,
            "have": 0,
            "need": state.animation.frames,
            "failed": 0,
            "deadline": None,
            "gifDue": False,
            "nextFrame": None,
            "nextGif": None,
            "newestFrame": None,
            "frameAgeSeconds": None,
            "nextFetch": None,
        }
    return {
        "rule": "run",
        "run": iso(run.run_time),
        "have": run.got,
        "need": run.expected,
        "failed": run.failed,
        "deadline": iso(run.deadline) if run.deadline and not run.settled else None,
        "gifDue": bool(run.settled),
        "nextFrame": None,
        "nextGif": iso(run.deadline) if enabled and run.deadline and not run.settled else None,
        "newestFrame": None,
        "frameAgeSeconds": None,
        "nextFetch": None,
    }


def progress(state: AnimationState, now: int) -> dict[str, Any]:
    """How far an animation has come toward its next GIF: `have` of `need` frames (the first GIF
    needs N; each one after, K new frames), its newest frame, when the next frame is due on its
    interval grid, and when the next GIF is expected (an estimate: the count rule, a frame an
    interval; the hourly rebuild may come sooner). None for what a disabled animation will not do."""
    animation = state.animation
    first = not state.latest_gif
    need = animation.frames if first else animation.gif_every
    have = min(state.frame_count if first else state.frame_count - state.gif_frame_count, need)
    interval = animation.interval
    slot = decide.due_slot(animation, now, TICK_SECONDS)  # the newest frame due by now, at its phase
    next_frame = slot if slot > state.last_requested else state.last_requested + interval
    left = need - have
    next_gif = next_frame + (left - 1) * interval if left > 0 else None
    return {
        "rule": "first" if first else "every",
        "have": have,
        "need": need,
        "newestFrame": iso(state.newest_frame) if state.newest_frame else None,
        "frameAgeSeconds": max(now - state.newest_frame, 0) if state.newest_frame else None,
        "nextFrame": iso(next_frame) if animation.enabled else None,
        "nextFetch": iso(next_frame + decide.phase(animation, TICK_SECONDS)) if animation.enabled else None,
        "nextGif": iso(next_gif) if animation.enabled and next_gif is not None else None,
        "gifDue": left <= 0,
    }


@documented(answer("the animation", AnimationAnswer), errors(400, 404))
@answers_json
def get_animation(request: Any, image_id: str) -> dict[str, Any]:
    """One animation: configuration and counts.

    Public; `email` (the recipients and sender) is included only when the request carries the token."""
    return animation_answer(known(image_id), holds_token(request))


@documented(
    answer("replaced", AnimationAnswer),
    answer("created", AnimationAnswer, status=201),
    errors(400),
    error(413, f"a body of over {MAX_BODY // 1024} KB"),
    answer("a body sent as anything but application/json (Chalice's own answer)", UnsupportedMediaType, status=415),
    body=Animation,
)
@answers_json
def put_animation(request: Any, image_id: str) -> Response:
    """Create or replace an animation.

    A new animation (and one enabled again) asks at once for the frames of its newest window, so its
    first GIF comes within a minute, not N intervals later. A JSON object of at most 64 KB, camelCase keys, strict types (true is not 1, "800" is not 800), each
    key once; email addresses are checked. Of concurrent creates of one id, exactly one answers 201."""
    checked_id(image_id)
    body = json_body(request)
    if "imageId" in body and body["imageId"] != image_id:
        raise BadRequest(
            f"imageId {show(body['imageId'])} in the body differs from {image_id!r} in the path", "imageId"
        )
    # camelCase keys only, strict types: a body in the API's own terms, as openapi.json describes it
    animation = Animation.configured({**body, "imageId": image_id})
    before = store.get_animation(image_id, consistent=True)
    created = store.put_animation(animation)  # atomic: of concurrent creates, exactly one is told it created
    if animation.enabled and (created or before is None or not before.animation.enabled):
        try:
            service.start(image_id)  # its window's frames at once: full from the start, or after a pause
        except Exception as exc:  # its next due tick asks for the whole window all the same
            logger.warning(f"the frames of {image_id!r} are asked for at its next tick: {exc!r}")
    state = store.get_animation(image_id, consistent=True) or AnimationState(animation)  # (deleted meanwhile)
    return Response(body=animation_answer(state, True), status_code=201 if created else 200)


@documented(
    answer("deleted", Deleted),
    errors(400, 404),
    query=(query("images", {"enum": ["keep", "remove"], "default": "keep"}, "its frames, thumbnails and GIFs"),),
)
@answers_json
def delete_animation(request: Any, image_id: str) -> dict[str, Any]:
    """Delete an animation (its schedule stops); keep or remove its images."""
    images = query_string(request, "images").get("images", "keep")
    if images not in ("keep", "remove"):
        raise BadRequest(f"images must be 'keep' or 'remove', not {show(images)}", "images")
    known(image_id)
    store.delete_animation(image_id)  # no configuration: the schedule asks for nothing more
    removed = {"records": 0, "objects": 0}
    if images == "remove":
        removed = {"records": store.delete_records(image_id), "objects": _delete_objects(image_id)}
    return {"deleted": image_id, "images": images, "removed": removed}


# Actions ------------------------------------------------------------------------------


@documented(
    answer("asked for (the please-fetch-amp-image message)", FetchAsked, status=202),
    errors(400, 404),
    error(409, "disabled, or a frame for this minute was asked for already (the error says which)"),
)
@answers_json
def fetch_now(image_id: str) -> Response:
    """Fetch a frame now."""
    return _ask(service.fetch_now, image_id)


@documented(
    answer("asked for (the please-create-gif message)", GifAsked, status=202),
    errors(400, 404),
    error(
        409, "disabled, too few frames, or a GIF of the newest frames is being made or exists (the error says which)"
    ),
)
@answers_json
def gif_now(image_id: str) -> Response:
    """Build a GIF of the newest N frames now."""
    return _ask(service.gif_now, image_id)


def _ask(action: Any, image_id: str) -> Response:
    """202 with the message an action sent; 404 for no such animation, 409 when refused."""
    checked_id(image_id)
    try:
        message = action(image_id, int(time.time()))
    except LookupError:
        raise NotFound(f"no animation {image_id!r}", "imageId") from None
    except service.Refused as exc:
        raise Conflict(str(exc)) from None
    return Response(body={"asked": message.to_dict()}, status_code=202)


# Answers ------------------------------------------------------------------------------


def animation_answer(state: AnimationState, private: bool) -> dict[str, Any]:
    """An animation as answered: its email recipients and sender only to the token's holder."""
    config = state.animation.to_dict()
    if not private:
        config.pop("email", None)
    return {**config, "state": state_answer(state)}


def state_answer(state: AnimationState) -> dict[str, Any]:
    return {
        "frameCount": state.frame_count,
        "lastRequested": state.last_requested or None,
        "newestFrame": state.newest_frame or None,
        "latestGif": state.latest_gif or None,
        "doneGif": state.done_gif or None,
        "lastRun": state.last_run or None,
        "completeRun": state.complete_run or None,
    }


def _delete_objects(image_id: str) -> int:
    n = names()
    return sum(
        objects().delete_prefix(bucket, f"{image_id}/")
        for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket)
    )
