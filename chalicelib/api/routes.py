"""The bodies of app.py's REST routes: configure animations, trigger runs, show results.

Each is named as its handler in app.py, which calls it by that name, and says beside it (@documented)
what openapi.json tells of it besides its path, method and authorizer, which come from app.routes."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from chalice import Response

from .. import __version__
from ..aws import objects, queues, table
from ..aws.clients import error_code
from ..mediator import service, store
from ..mediator.animation import Animation
from ..mediator.decide import UNATTRIBUTED, AnimationState
from ..messages import IMAGE_ID_PATTERN, ImageId, Location
from ..settings import names, public_url
from .auth import holds_token
from .errors import MAX_BODY, BadRequest, Conflict, NotFound, answers_json, json_body
from .openapi import ANIMATION, Operation, answer, document, error, errors, query

PAGE = Path(__file__).resolve().parent.parent / "web" / "index.html"
MAX_PAGE = 100
IMAGE_LINK_SECONDS = 900  # a redirect's presigned URL: followed at once by the browser or mail client
IMAGE_CACHE_SECONDS = IMAGE_LINK_SECONDS - 60  # the redirect may be reused while its URL has time left
VALID_TIME = re.compile(r"0|[1-9][0-9]{0,11}")  # epoch seconds; store keys hold 12 digits
LABEL = re.compile(r"[1-9][0-9]{0,3}x[1-9][0-9]{0,3}(-(cover|contain))?")  # as thumbnail records store it
HOST = re.compile(r"([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")  # a stage or a custom domain's base path
NUMBER = re.compile(r"[0-9]{1,4}")  # a query string's whole number: ASCII digits only (not '²', '①' or 5000 nines)
INLINE = re.compile(r"<(script|style)\b[^>]*>(.*?)</\1>", re.S)  # the page's inline blocks, hashed for its CSP
NONE = "'none'"
HIDDEN = "the reason is shown with the API token (it may name email addresses)"


# openapi.json: app.py's route table, and what is said here of each route's body ------------

F = TypeVar("F", bound=Callable[..., Any])
OPERATIONS: dict[str, Operation] = {}  # by the body's name, which is its handler's in app.py


def documented(
    *responses: dict[str, Any], query: tuple[dict[str, Any], ...] = (), body: dict[str, Any] | None = None
) -> Callable[[F], F]:
    """Describe a route's body for openapi.json: its docstring (summary, then description), the query
    parameters it takes, its request body's schema and its answers (401 and 403 come with an authorizer)."""

    def register(function: F) -> F:
        OPERATIONS[function.__name__] = Operation.of(function, responses, query, body)
        return function

    return register


# The path parameters, by the names app.py's paths give them: their names and schemas in openapi.json.
PATH_PARAMETERS = {
    "image_id": {
        "name": "imageId",
        "description": "an animation's id",
        "schema": {"type": "string", "pattern": f"^{IMAGE_ID_PATTERN}$"},
    },
    "valid_time": {
        "name": "validTime",
        "description": "the frame's or the GIF's validTime (epoch seconds)",
        "schema": {"type": "string", "pattern": f"^({VALID_TIME.pattern})$"},
    },
    "label": {
        "name": "label",
        "description": "a thumbnail's label, as its frame lists it (200x150-cover)",
        "schema": {"type": "string", "pattern": f"^({LABEL.pattern})$"},
    },
    "run_id": {
        "name": "runId",
        "description": "a run's id (runId in the answers)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}


def _limit(default: int) -> dict[str, Any]:
    return query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default},
        "a whole number in ASCII digits",
    )


REDIRECT = answer(
    f"to a presigned URL of the image, made now and good for {IMAGE_LINK_SECONDS // 60} minutes",
    status=302,
    media="",
    headers=("Location", "Cache-Control"),
)
NO_IMAGE = {**errors(400), **error(404, "no such image (or the GIF is not made yet)")}


# Animations ---------------------------------------------------------------------------


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
    answer("animations, and where the next page starts (next; null at the end)"),
    errors(400),
    query=(_limit(20), *LISTING),
)
@answers_json
def list_animations(request: Any) -> dict[str, Any]:
    """Animations, a page at a time (in no order a reader should rely on), or those whose id starts so.

    Public; `email` (the recipients and sender) is included only when the request carries the token."""
    states, next_after = _listing(request, 20)
    private = holds_token(request)
    return {"animations": [_animation(state, private) for state in states], "next": next_after}


@documented(
    answer("a page of cards, and where the next page starts (next; null at the end)"),
    errors(400),
    query=(_limit(24), *LISTING),
)
@answers_json
def summary(request: Any) -> dict[str, Any]:
    """The page's cards: each animation's GIF, counts and how its latest run is doing, a page at a time.

    One request a page of cards, read in a few batched calls whatever the page's size. Public."""
    states, next_after = _listing(request, 24)
    latest = store.latest(states) if states else {}
    base = base_url(request)
    return {
        "animations": [_card(state, *latest[state.animation.image_id], base) for state in states],
        "next": next_after,
    }


def _listing(request: Any, default: int) -> tuple[list[AnimationState], str | None]:
    params = _query(request, "limit", "after", "prefix")
    limit = _int_param(params, "limit", default, 1, MAX_PAGE)
    after, prefix = params.get("after"), params.get("prefix")
    if after is not None and (not NEXT.fullmatch(after) or int(after.partition(":")[0]) > store.SHARDS):
        raise BadRequest(f"after must be the `next` of the page before, not {_show(after)}", "after")
    if prefix is not None:
        _image_id(prefix, "prefix")
    return store.list_animations(limit, after, prefix)


def _card(state: AnimationState, gif: Any, fetch: Any, base: str) -> dict[str, Any]:
    """An animation's card: what it is, its latest GIF made, and how its latest run is doing."""
    animation, image_id = state.animation, state.animation.image_id
    if fetch is not None and fetch.status == "failed":
        status = "failed: fetch-amp-image"
    elif gif is not None and gif.status == "failed":
        status = "failed: create-gif"
    elif gif is not None and gif.status == "claimed":
        status = "making"
    else:
        status = "done" if state.done_gif else "waiting"
    run = gif.correlation_id if gif is not None else fetch.correlation_id if fetch is not None else None
    return {
        "imageId": image_id,
        "enabled": animation.enabled,
        "layers": animation.layers,
        "center": animation.center,
        "interval": animation.interval,
        "frames": animation.frames,
        "state": _state_answer(state),
        "gif": {
            "validTime": state.done_gif,
            "time": _iso(state.done_gif),
            "url": service.gif_link(base, image_id, state.done_gif),
        }
        if state.done_gif
        else None,
        "status": status,
        "runId": run,
        "progress": progress(state, int(time.time())),
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
    slot = now - now % interval  # the frame due now on the grid, unless asked for already
    next_frame = slot if slot > state.last_requested else slot + interval
    left = need - have
    next_gif = next_frame + (left - 1) * interval if left > 0 else None
    return {
        "rule": "first" if first else "every",
        "have": have,
        "need": need,
        "newestFrame": _iso(state.newest_frame) if state.newest_frame else None,
        "frameAgeSeconds": max(now - state.newest_frame, 0) if state.newest_frame else None,
        "nextFrame": _iso(next_frame) if animation.enabled else None,
        "nextGif": _iso(next_gif) if animation.enabled and next_gif is not None else None,
        "gifDue": left <= 0,
    }


@documented(answer("the animation", ANIMATION), errors(400, 404))
@answers_json
def get_animation(request: Any, image_id: str) -> dict[str, Any]:
    """One animation: configuration and counts.

    Public; `email` (the recipients and sender) is included only when the request carries the token."""
    return _animation(_state(image_id), holds_token(request))


@documented(
    answer("replaced", ANIMATION),
    answer("created", ANIMATION, status=201),
    errors(400),
    error(413, f"a body of over {MAX_BODY // 1024} KB"),
    {"415": {"description": "a body sent as anything but application/json (Chalice's own answer: Code, Message)"}},
    body=ANIMATION,
)
@answers_json
def put_animation(request: Any, image_id: str) -> Response:
    """Create or replace an animation.

    A JSON object of at most 64 KB, camelCase keys, strict types (true is not 1, "800" is not 800), each
    key once; email addresses are checked. Of concurrent creates of one id, exactly one answers 201."""
    _image_id(image_id)
    body = json_body(request)
    if "imageId" in body and body["imageId"] != image_id:
        raise BadRequest(
            f"imageId {_show(body['imageId'])} in the body differs from {image_id!r} in the path", "imageId"
        )
    # camelCase keys only, strict types: a body in the API's own terms, as openapi.json describes it
    animation = Animation.configured({**body, "imageId": image_id})
    created = store.put_animation(animation)  # atomic: of concurrent creates, exactly one is told it created
    state = store.get_animation(image_id, consistent=True) or AnimationState(animation)  # (deleted meanwhile)
    return Response(body=_animation(state, True), status_code=201 if created else 200)


@documented(
    answer("deleted"),
    errors(400, 404),
    query=(query("images", {"enum": ["keep", "remove"], "default": "keep"}, "its frames, thumbnails and GIFs"),),
)
@answers_json
def delete_animation(request: Any, image_id: str) -> dict[str, Any]:
    """Delete an animation (its schedule stops); keep or remove its images."""
    images = _query(request, "images").get("images", "keep")
    if images not in ("keep", "remove"):
        raise BadRequest(f"images must be 'keep' or 'remove', not {_show(images)}", "images")
    _state(image_id)
    store.delete_animation(image_id)  # no configuration: the schedule asks for nothing more
    removed = {"records": 0, "objects": 0}
    if images == "remove":
        removed = {"records": store.delete_records(image_id), "objects": _delete_objects(image_id)}
    return {"deleted": image_id, "images": images, "removed": removed}


# Actions ------------------------------------------------------------------------------


@documented(
    answer("asked for (the please-fetch-amp-image message)", status=202),
    errors(400, 404),
    error(409, "disabled, or a frame for this minute was asked for already (the error says which)"),
)
@answers_json
def fetch_now(image_id: str) -> Response:
    """Fetch a frame now."""
    return _ask(service.fetch_now, image_id)


@documented(
    answer("asked for (the please-create-gif message)", status=202),
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
    _image_id(image_id)
    try:
        message = action(image_id, int(time.time()))
    except LookupError:
        raise NotFound(f"no animation {image_id!r}", "imageId") from None
    except service.Refused as exc:
        raise Conflict(str(exc)) from None
    return Response(body={"asked": message.to_dict()}, status_code=202)


# Results ------------------------------------------------------------------------------


@documented(answer("frames"), errors(400, 404), query=(_limit(12),))
@answers_json
def frames(request: Any, image_id: str) -> dict[str, Any]:
    """Newest frames, with links to them and their thumbnails (routes that redirect to the image)."""
    _state(image_id)
    limit = _int_param(_query(request, "limit"), "limit", 12, 1, MAX_PAGE)
    base = base_url(request)
    out = []
    for frame in store.frames(image_id, limit=limit):
        out.append(
            {
                "validTime": frame.valid_time,
                "time": _iso(frame.valid_time),
                "url": service.frame_link(base, image_id, frame.valid_time),
                "thumbnails": {
                    label: service.thumbnail_link(base, image_id, frame.valid_time, label)
                    for label in sorted(frame.thumbnails)
                },
                "runId": frame.correlation_id,
            }
        )
    return {"imageId": image_id, "frames": out}


@documented(answer("GIFs"), errors(400, 404), query=(_limit(10),))
@answers_json
def gifs(request: Any, image_id: str) -> dict[str, Any]:
    """GIFs, newest first, with links, and each one's email: sent, failed (why: with the token),
    waiting (for the GIF or the emailer), or none (no email was configured when it was made)."""
    _state(image_id)
    limit = _int_param(_query(request, "limit"), "limit", 10, 1, MAX_PAGE)
    base = base_url(request)
    found = store.gifs(image_id, limit=limit)
    failed = {g.valid_time for g in found if g.email_status == "failed"}
    reasons = (
        {f.valid_time: f.error for f in store.failures(image_id, limit=MAX_PAGE) if f.action == "send-email"}
        if failed
        else {}
    )
    private = holds_token(request)
    out = []
    for gif in found:
        out.append(
            {
                "validTime": gif.valid_time,
                "time": _iso(gif.valid_time),
                "status": gif.status,
                "reason": gif.reason,
                "frames": len(gif.frame_times),
                "url": service.gif_link(base, image_id, gif.valid_time) if gif.done else None,
                "emailStatus": gif.email_status,
                "email": _email(gif, reasons.get(gif.valid_time), private),
                "runId": gif.correlation_id,
            }
        )
    return {"imageId": image_id, "gifs": out}


def _email(gif: Any, error: str | None, private: bool) -> dict[str, Any]:
    """A GIF's email as the page shows it: its status, and a word on it (a failure's reason only to the
    token's holder: it may name addresses)."""
    if gif.email_status == "sent":
        return {"status": "sent", "detail": "sent"}
    if gif.email_status == "failed":
        if not private:
            return {"status": "failed", "detail": None, "detailHidden": HIDDEN}
        return {"status": "failed", "detail": error or "no reason kept (the failure was redriven or is older)"}
    if gif.email_status == "requested":
        return {"status": "waiting", "detail": "asked for; the emailer has not answered yet"}
    if gif.status == "claimed":
        return {"status": "waiting", "detail": "the GIF is not made yet"}
    if gif.status == "failed":
        return {"status": "none", "detail": "the GIF failed: no email"}
    return {"status": "none", "detail": "no email was configured when it was made"}


@documented(answer("failures"), errors(400, 404), query=(_limit(20),))
@answers_json
def animation_failures(request: Any, image_id: str) -> dict[str, Any]:
    """What failed for good.

    Public, but the error of a send-email failure (it may name addresses) only with the token."""
    _state(image_id)
    limit = _int_param(_query(request, "limit"), "limit", 20, 1, MAX_PAGE)
    private = holds_token(request)
    return {
        "imageId": image_id,
        "failures": [
            {
                "validTime": f.valid_time,
                "time": _iso(f.valid_time),
                "action": f.action,
                # an email's failure may quote its addresses (a refused recipient): the token's holder reads it
                "error": f.error if private or f.action != "send-email" else None,
                **({} if private or f.action != "send-email" else {"errorHidden": HIDDEN}),
                "runId": f.correlation_id,
                "failedAt": _iso(f.failed_at),
                "redrivable": f.request is not None,
            }
            for f in store.failures(image_id, limit=limit)
        ],
    }


@documented(
    answer("events"), errors(400), error(404, "no events for the run (the event log keeps them EVENT_LOG_DAYS)")
)
@answers_json
def timeline(run_id: str) -> dict[str, Any]:
    """A run's timeline: each message in and out (whole, addresses and bodies too), when, how long between."""
    if not run_id or len(run_id) > 200:
        raise BadRequest("a run id is 1..200 characters", "runId")
    entries = store.timeline(run_id)
    if not entries:
        raise NotFound(f"no events for run {run_id!r} (the log keeps {store.log_days():g} days)", "runId")
    start, previous, events = entries[0].at, entries[0].at, []
    for entry in entries:
        events.append(
            {
                "time": datetime.fromtimestamp(entry.at / 1000, timezone.utc).isoformat(timespec="milliseconds"),
                "direction": entry.direction,
                "type": entry.type,
                "sinceStartMs": entry.at - start,
                "sincePreviousMs": entry.at - previous,
                "message": entry.message,
            }
        )
        previous = entry.at
    return {"runId": run_id, "events": events, "tookMs": entries[-1].at - start}


# Images: the links in emails and answers, redirected to a freshly presigned URL -------


@documented(REDIRECT, NO_IMAGE)
@answers_json
def gif_image(image_id: str, valid_time: str) -> Response:
    """A GIF: a redirect to it (the links in emails and answers; they last as long as the GIF)."""
    _image_id(image_id)
    when = _valid_time(valid_time)
    gif = store.gif(image_id, when)
    if gif is None or gif.location is None or not gif.done:
        raise NotFound(f"no GIF of {image_id!r} to {when} (or it is not made yet)", "validTime")
    return _redirect(gif.location)


@documented(REDIRECT, NO_IMAGE)
@answers_json
def frame_image(image_id: str, valid_time: str) -> Response:
    """A frame: a redirect to it."""
    _image_id(image_id)
    when = _valid_time(valid_time)
    frame = store.frame(image_id, when)
    if frame is None:
        raise NotFound(f"no frame of {image_id!r} at {when}", "validTime")
    return _redirect(frame.location)


@documented(REDIRECT, NO_IMAGE)
@answers_json
def thumbnail_image(image_id: str, valid_time: str, label: str) -> Response:
    """A frame's thumbnail: a redirect to it."""
    _image_id(image_id)
    when = _valid_time(valid_time)
    if not LABEL.fullmatch(label):
        raise BadRequest(
            f"{_show(label)} is not a thumbnail label (WxH-cover or WxH-contain, such as 200x150-cover)", "label"
        )
    frame = store.frame(image_id, when)
    if frame is None:
        raise NotFound(f"no frame of {image_id!r} at {when}", "validTime")
    location = frame.thumbnails.get(label)
    if location is None:
        raise NotFound(f"no {label} thumbnail of the frame of {image_id!r} at {when}", "label")
    return _redirect(location)


def _redirect(location: Location) -> Response:
    """302 to a presigned URL made now: used at once by the browser or mail client that asked."""
    url = service.presign(location, IMAGE_LINK_SECONDS)
    return Response(
        body={"location": url},
        status_code=302,
        headers={"Location": url, "Cache-Control": f"private, max-age={IMAGE_CACHE_SECONDS}"},
    )


def _valid_time(value: str) -> int:
    if not VALID_TIME.fullmatch(value):
        raise BadRequest(
            f"{_show(value)} is not a validTime (epoch seconds: up to 12 digits, no leading zeros)", "validTime"
        )
    return int(value)


def base_url(request: Any) -> str:
    """Where links in an answer start: PUBLIC_URL if set, else the address this request came to.

    API Gateway puts the stage (or a custom domain's base path) before the route's own path
    in context['path']: '/api/animations/temps/frames' for the resource
    '/animations/{image_id}/frames'. `chalice local` and chalice.test put the route's own path
    alone there, and no 'stage'. The prefix is whatever comes before the route's own path.
    """
    configured = public_url()
    if configured:
        return configured
    context, headers = request.context or {}, request.headers or {}
    host = headers.get("host") or context.get("domainName") or "localhost"
    if len(host) > 255 or not HOST.fullmatch(host):
        raise BadRequest(f"the Host header {host!r} is not a host name", "Host")
    scheme = (headers.get("x-forwarded-proto") or "http").split(",")[0].strip().lower()
    scheme = scheme if scheme in ("http", "https") else "http"
    params = request.uri_params or {}
    own = re.sub(r"\{(\w+)\}", lambda m: params.get(m.group(1), m.group(0)), request.path or "/")
    path = context.get("path") or own
    stage = context.get("stage")
    if path.endswith(own):
        prefix = path[: len(path) - len(own)]
    elif stage and path.startswith(f"/{stage}/"):
        prefix = f"/{stage}"
    else:
        prefix = ""
    prefix = prefix.rstrip("/")
    if not PREFIX.fullmatch(prefix):
        prefix = ""
    return f"{scheme}://{host}{prefix}/"


# Dead letters -------------------------------------------------------------------------


@documented(answer("dead letters"))
@answers_json
def dead_letters() -> dict[str, Any]:
    """The mediator's dead letters (whole messages), with their errors.

    The messages the mediator gave up on, as its dead-letter handler kept them, and the failures
    that name no animation (an upload's, a garbled request's). Reading changes nothing."""
    return {
        "deadLetters": [
            {
                "messageId": letter.message_id,
                "message": letter.message,
                "error": letter.error,
                "sent": _iso(letter.sent_at),
                "dead": _iso(letter.dead_at),
            }
            for letter in store.dead_letters()
        ],
        "unattributed": [
            {
                "action": f.action,
                "error": f.error,
                "request": f.request,
                "failedAt": _iso(f.failed_at),
                "runId": f.correlation_id,
            }
            for f in store.failures(UNATTRIBUTED, limit=MAX_PAGE)
        ],
    }


@documented(answer("how many", status=202))
@answers_json
def redrive() -> Response:
    """Every dead letter back to the mediator's queue."""
    return Response(body={"redriven": service.redrive_dead_letters()}, status_code=202)


@documented(answer("how many were redriven and kept", status=202), errors(400, 404))
@answers_json
def redrive_failures(image_id: str) -> Response:
    """Each failure whose request was kept: that request to its worker again, the failure forgotten."""
    _state(image_id)
    return Response(body=service.redrive_failures(image_id), status_code=202)


# Health, the page and openapi.json ----------------------------------------------------


@documented(answer("healthy"), answer("something does not answer", status=503))
def health() -> Response:
    """Version, and whether the table, buckets and queue answer."""
    n = names()
    checks: dict[str, str] = {}

    def check(name: str, call: Any) -> None:
        try:
            call()
            checks[name] = "ok"
        except Exception as exc:  # a health check reports, it does not fail; its page is public, so it
            # names the error's kind, never its text (an AccessDenied names the role, and the account)
            checks[name] = error_code(exc) or type(exc).__name__

    check("table", lambda: table().describe())
    for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket, n.uploads_bucket):
        check(bucket, lambda b=bucket: objects().check(b))
    check("queue", lambda: queues().check(n.mediator_queue))
    healthy = all(v == "ok" for v in checks.values())
    return Response(body={"version": __version__, "ok": healthy, "checks": checks}, status_code=200 if healthy else 503)


@documented(answer("the page", media="text/html"))
def page() -> Response:
    """The web page.

    Every animation's latest GIF, thumbnails, runs and failures; a form to create one."""
    html = PAGE.read_text()
    return Response(
        body=html, status_code=200, headers={"Content-Type": "text/html; charset=utf-8", **page_headers(html)}
    )


@documented(answer("OpenAPI 3.1"))
def openapi(route_table: dict[str, Any]) -> dict[str, Any]:
    """This document.

    Every route of the app's table (app.routes), each described beside its body here."""
    from . import operations  # noqa: F401 (its routes describe themselves as it loads)

    return document(route_table, OPERATIONS, PATH_PARAMETERS)


def page_headers(html: str) -> dict[str, str]:
    """The page's Content-Security-Policy and framing, sniffing and referrer protection.

    Its inline script and style are allowed by their sha256 hashes (no 'unsafe-inline'), made
    from the page as served. Images come from the API (the links) and from where they redirect:
    S3 over https, or the emulator AWS_ENDPOINT_URL names; its icon is an empty data: URL, so
    the browser asks for no /favicon.ico (which answers 403). It calls only its own API.
    """
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, content in INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    images = " ".join(
        ["'self'", "data:", "https:", *_emulator_origin()]
    )  # data: for its empty icon (no /favicon.ico route)
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {' '.join(hashes['script']) or NONE}",
            f"style-src {' '.join(hashes['style']) or NONE}",
            f"img-src {images}",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _emulator_origin() -> list[str]:
    """The origin of an S3 emulator (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), where image links redirect."""
    from urllib.parse import urlsplit

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return []
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return []
    if parts.scheme not in ("http", "https") or not HOST.fullmatch(parts.netloc):
        return []
    return [f"{parts.scheme}://{parts.netloc}"]


# Helpers ------------------------------------------------------------------------------


def _animation(state: AnimationState, private: bool) -> dict[str, Any]:
    """An animation as answered: its email recipients and sender only to the token's holder."""
    config = state.animation.to_dict()
    if not private:
        config.pop("email", None)
    return {**config, "state": _state_answer(state)}


def _state_answer(state: AnimationState) -> dict[str, Any]:
    return {
        "frameCount": state.frame_count,
        "lastRequested": state.last_requested or None,
        "newestFrame": state.newest_frame or None,
        "latestGif": state.latest_gif or None,
        "doneGif": state.done_gif or None,
    }


def _state(image_id: str) -> AnimationState:
    _image_id(image_id)
    state = store.get_animation(image_id)
    if state is None:
        raise NotFound(f"no animation {image_id!r}", "imageId")
    return state


def _image_id(value: str, field: str = "imageId") -> str:
    import msgspec

    try:
        return msgspec.convert(value, ImageId)
    except msgspec.ValidationError:
        raise BadRequest(
            f"{_show(value)} is not an animation id (letters, digits, '.', '_', '-'; 1..64)", field
        ) from None


def _query(request: Any, *allowed: str) -> dict[str, str]:
    """The query parameters of a route that takes some: each at most once, and no others (400 naming it).

    Routes that take none ignore the query string (a mail client's or a cache-buster's additions).
    """
    given = request.query_params
    if not given:
        return {}
    out: dict[str, str] = {}
    for name in given:
        if name not in allowed:
            raise BadRequest(
                f"unknown query parameter {_show(name)}: this route takes {', '.join(allowed)}", name[:100] or "query"
            )
        values = given.getlist(name)
        if len(values) != 1:
            raise BadRequest(f"{name} is given {len(values)} times: give it once", name)
        out[name] = values[0]
    return out


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {_show(raw)}", name)
    return int(raw)


def _show(value: Any, most: int = 40) -> str:
    """A value for an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _delete_objects(image_id: str) -> int:
    n = names()
    return sum(
        objects().delete_prefix(bucket, f"{image_id}/")
        for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket)
    )


def __getattr__(name: str) -> Any:
    """The operator's routes (status, metrics, cost) are answered by chalicelib/api/operations.py."""
    from . import operations

    try:
        return getattr(operations, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
