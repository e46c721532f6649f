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


def api():  # -> the module chalicelib.api.routes (left to inference: tools then know its functions)
    """The REST routes' bodies, imported on the first request: app.py calls each by its name,
    `entry.api().list_animations(request)`, and `import app` (every function's cold start) loads none."""
    with loading("api"):
        from .api import routes

    return routes
