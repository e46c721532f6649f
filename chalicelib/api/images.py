"""The images: an animation's frames and GIFs with their links, and the links themselves (in emails
and answers), each a redirect to a freshly presigned URL of the image, so it lasts as long as the image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalice import Response

from ..mediator import service, store
from ..messages import CONTENT_TYPES, Location
from .auth import HIDDEN, holds_token
from .errors import BadRequest, NotFound, answers_json
from .openapi import answer, documented, error, errors, query
from .schemas import Frames, Gifs, Redirect
from .params import (
    LABEL,
    MAX_PAGE,
    base_url,
    checked_id,
    checked_time,
    int_param,
    iso,
    known,
    limit_param,
    query_string,
    show,
)

IMAGE_LINK_SECONDS = 900  # a redirect's presigned URL: followed at once by the browser or mail client

IMAGE_CACHE_SECONDS = IMAGE_LINK_SECONDS - 60  # the redirect may be reused while its URL has time left

REDIRECT = answer(
    f"to a presigned URL of the image, made now and good for {IMAGE_LINK_SECONDS // 60} minutes",
    Redirect,
    status=302,
    headers=("Location", "Cache-Control"),
)

NO_IMAGE = {**errors(400), **error(404, "no such image (or the GIF is not made yet)")}


RUN = query(
    "run",
    {"type": "integer", "minimum": 0, "example": 1700002800},
    "a model run (epoch seconds): that run's frames (a forecast's)",
)


@documented(
    answer("the newest frames (a forecast's: of a run)", Frames), errors(400, 404), query=(limit_param(12), RUN)
)
@answers_json
def frames(request: Any, image_id: str) -> dict[str, Any]:
    """Newest frames, with links to them and their thumbnails (routes that redirect to the image).

    A forecast's are its newest run's (or the run `run` names), oldest first."""
    state = known(image_id)
    params = query_string(request, "limit", "run")
    limit = int_param(params, "limit", 12, 1, MAX_PAGE)
    run = _run(params) if "run" in params else (state.last_run or None if state.animation.kind == "forecast" else None)
    base = base_url(request)
    found = store.run_frames(image_id, run)[:limit] if run is not None else store.frames(image_id, limit=limit)
    out = []
    for frame in found:
        out.append(
            {
                "validTime": frame.valid_time,
                "time": iso(frame.valid_time),
                "runTime": run,
                "url": service.frame_link(base, image_id, frame.valid_time, run),
                "thumbnails": {
                    label: service.thumbnail_link(base, image_id, frame.valid_time, label, run)
                    for label in sorted(frame.thumbnails)
                },
                "runId": frame.correlation_id,
            }
        )
    return {"imageId": image_id, "kind": state.animation.kind, "runTime": run, "frames": out}


def _run(params: dict[str, str]) -> int:
    """The `run` query parameter: a run's time, epoch seconds."""
    return checked_time(params["run"], "run")


@documented(answer("GIFs, newest first", Gifs), errors(400, 404), query=(limit_param(10),))
@answers_json
def gifs(request: Any, image_id: str) -> dict[str, Any]:
    """GIFs, newest first, with links, and each one's email: sent, failed (why: with the token),
    waiting (for the GIF or the emailer), or none (no email was configured when it was made)."""
    known(image_id)
    limit = int_param(query_string(request, "limit"), "limit", 10, 1, MAX_PAGE)
    base = base_url(request)
    found = store.gifs(image_id, limit=limit)
    failed = {g.valid_time for g in found if g.email_status == "failed"}
    reasons = (
        {f.valid_time: f.error for f in store.failures(image_id, limit=MAX_PAGE) if f.action == "send-email"}
        if failed
        else {}
    )
    private = holds_token(request)
    asked = known(image_id).animation.formats
    lacking = any(gif.done and len(gif.outputs or ((),)) < len(asked) for gif in found)
    format_failures = (
        {
            (f.valid_time, f.detail): f.error
            for f in store.failures(image_id, limit=MAX_PAGE)
            if f.action == "create-gif" and f.detail
        }
        if lacking
        else {}
    )
    out = []
    for gif in found:
        out.append(
            {
                "validTime": gif.valid_time,
                "time": iso(gif.valid_time),
                "status": gif.status,
                "reason": gif.reason,
                "frames": len(gif.frame_times),
                "runTime": gif.run_time,
                "gaps": [iso(t) for t in gif.gaps],
                "url": service.gif_link(base, image_id, gif.valid_time) if gif.done else None,
                "formats": formats_answer(base, image_id, gif, asked, format_failures),
                "emailStatus": gif.email_status,
                "email": _email(gif, reasons.get(gif.valid_time), private),
                "runId": gif.correlation_id,
            }
        )
    return {"imageId": image_id, "gifs": out}


def formats_answer(
    base: str, image_id: str, gif: Any, asked: Sequence[str], failures: dict[tuple[int, str], str] | None = None
) -> list[dict[str, Any]]:
    """Each format of a made GIF, smallest first: its link (a route that redirects to it), its media
    type and bytes; a format asked for and not made, with why when its failure is kept."""
    if not gif.done:
        return []
    made = {output.format: output for output in gif.outputs}
    out = [
        {
            "format": output.format,
            "type": CONTENT_TYPES[output.format],
            "bytes": output.bytes,
            "url": service.gif_link(base, image_id, gif.valid_time, output.format),
        }
        for output in sorted(gif.outputs, key=lambda output: output.bytes)
    ]
    if not made:  # the GIF alone was asked for (or made before formats were)
        out = [
            {
                "format": "gif",
                "type": CONTENT_TYPES["gif"],
                "bytes": None,
                "url": service.gif_link(base, image_id, gif.valid_time),
            }
        ]
    for format in asked:
        if format not in made and format != "gif" and made:
            error = (failures or {}).get((gif.valid_time, format))
            out.append(
                {
                    "format": format,
                    "type": CONTENT_TYPES[format],
                    "bytes": None,
                    "url": None,
                    "error": error or "not made",
                }
            )
    return out


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


@documented(
    REDIRECT,
    NO_IMAGE,
    query=(query("format", {"enum": ["gif", "webp", "mp4"], "default": "gif"}, "the GIF, or its WebP or MP4"),),
)
@answers_json
def gif_image(request: Any, image_id: str, valid_time: str) -> Response:
    """A GIF, or its WebP or MP4: a redirect to it (the links in emails and answers; they last as long
    as the GIF)."""
    checked_id(image_id)
    when = checked_time(valid_time)
    format = query_string(request, "format").get("format", "gif")
    if format not in CONTENT_TYPES:
        raise BadRequest(f"format must be gif, webp or mp4, not {show(format)}", "format")
    gif = store.gif(image_id, when)
    if gif is None or gif.location is None or not gif.done:
        raise NotFound(f"no GIF of {image_id!r} to {when} (or it is not made yet)", "validTime")
    if format == "gif":
        return _redirect(gif.location)
    output = next((output for output in gif.outputs if output.format == format), None)
    if output is None:
        raise NotFound(f"no {format} of the GIF of {image_id!r} to {when} (not asked for, or not made)", "format")
    return _redirect(output.location)


@documented(REDIRECT, NO_IMAGE, query=(RUN,))
@answers_json
def frame_image(request: Any, image_id: str, valid_time: str) -> Response:
    """A frame (a run's, with `run`): a redirect to it."""
    checked_id(image_id)
    when = checked_time(valid_time)
    params = query_string(request, "run")
    frame = store.run_frame(image_id, _run(params), when) if "run" in params else store.frame(image_id, when)
    if frame is None:
        raise NotFound(f"no frame of {image_id!r} at {when}", "validTime")
    return _redirect(frame.location)


@documented(REDIRECT, NO_IMAGE, query=(RUN,))
@answers_json
def thumbnail_image(request: Any, image_id: str, valid_time: str, label: str) -> Response:
    """A frame's thumbnail (a run's frame's, with `run`): a redirect to it."""
    checked_id(image_id)
    when = checked_time(valid_time)
    params = query_string(request, "run")
    if not LABEL.fullmatch(label):
        raise BadRequest(
            f"{show(label)} is not a thumbnail label (WxH-cover or WxH-contain, such as 200x150-cover)", "label"
        )
    frame = store.run_frame(image_id, _run(params), when) if "run" in params else store.frame(image_id, when)
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
