"""The bodies of app.py's handlers. Light to import: each loads its worker on first call
(chalicelib.coldstart: with the cyclic garbage collector paused, then frozen)."""

from __future__ import annotations

from typing import Any

from .coldstart import loading


def fetch_amp_image(event: Any) -> dict[str, Any]:
    with loading("fetch_amp_image"):
        from .workers import fetcher, runner

    return runner.run_sns(fetcher.WORKER, event)


def create_thumbnail(event: Any) -> dict[str, Any]:
    with loading("create_thumbnail"):
        from .workers import runner, thumbnailer

    return runner.run_sns(thumbnailer.WORKER, event)


def create_gif(event: Any) -> dict[str, Any]:
    with loading("create_gif"):
        from .workers import gifmaker, runner

    return runner.run_sns(gifmaker.WORKER, event)


def send_email(event: Any) -> dict[str, Any]:
    with loading("send_email"):
        from .workers import emailer, runner

    return runner.run_sns(emailer.WORKER, event)


def thumbnail_upload(event: Any) -> list[dict[str, Any]]:
    with loading("thumbnail_upload"):
        from .workers import uploads

    return uploads.thumbnail_uploads(event.to_dict(), event.context)


def mediate(event: Any) -> dict[str, Any]:
    with loading("mediate"):
        from .mediator import handler

    return handler.handle_messages(event.to_dict(), event.context)


def tick(event: Any) -> dict[str, Any]:
    with loading("tick"):
        from .mediator import handler

    return handler.handle_ticks(event.to_dict(), event.context)


def keep_dead_letters(event: Any) -> dict[str, Any]:
    with loading("keep_dead_letters"):
        from .mediator import handler

    return handler.handle_dead_letters(event.to_dict(), event.context)


def worker_failed(event: Any) -> dict[str, Any]:
    with loading("worker_failed"):
        from .workers import failures

    return failures.handle(event.to_dict(), event.context)


def fetch_due_frames(event: Any) -> dict[str, Any]:
    with loading("fetch_due_frames"):
        from .mediator import service

    return service.fetch_due_frames(service.event_time(event.time), event.context)


def rebuild_gifs(event: Any) -> dict[str, Any]:
    with loading("rebuild_gifs"):
        from .mediator import service

    return service.rebuild_gifs(service.event_time(event.time), event.context)


def authorize(auth_request: Any) -> Any:
    with loading("authorize"):
        from .api import auth

    return auth.authorize(auth_request)


# The REST API: each route's body is the function of its handler's name in one module by concern,
# imported on the route's first request (so `import app`, every function's cold start, loads none).
# Left to inference, so tools know each module's functions.


def animations():  # -> chalicelib.api.animations: list, cards, read, create, delete; fetch and GIF now
    with loading("api"):
        from .api import animations

    return animations


def images():  # -> chalicelib.api.images: frames, GIFs, and the links that redirect to them
    with loading("api"):
        from .api import images

    return images


def runs():  # -> chalicelib.api.runs: failures and their redrive, timelines, dead letters
    with loading("api"):
        from .api import runs

    return runs


def operations():  # -> chalicelib.api.operations: status, metrics, cost
    with loading("api"):
        from .api import operations

    return operations


def sources():  # -> chalicelib.api.sources: the map sources, the default marked
    with loading("api"):
        from .api import sources

    return sources


def site():  # -> chalicelib.api.site: the page, health, openapi.json
    with loading("api"):
        from .api import site

    return site
