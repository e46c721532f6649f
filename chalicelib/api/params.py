"""What the routes take from a request: path parts, query strings and where links start, each
checked (a 400 naming the field), and the path's animation looked up (a 404)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from ..mediator import store
from ..mediator.decide import AnimationState
from ..messages import IMAGE_ID_PATTERN, ImageId
from ..settings import public_url
from .errors import BadRequest, NotFound
from .openapi import query

MAX_PAGE = 100

VALID_TIME = re.compile(r"0|[1-9][0-9]{0,11}")  # epoch seconds; store keys hold 12 digits

LABEL = re.compile(r"[1-9][0-9]{0,3}x[1-9][0-9]{0,3}(-(cover|contain))?")  # as thumbnail records store it

HOST = re.compile(r"([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)*")  # a stage or a custom domain's base path

NUMBER = re.compile(r"[0-9]{1,4}")  # a query string's whole number: ASCII digits only (not '²', '①' or 5000 nines)


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


def limit_param(default: int) -> dict[str, Any]:
    return query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": default},
        "a whole number in ASCII digits",
    )


def known(image_id: str) -> AnimationState:
    checked_id(image_id)
    state = store.get_animation(image_id)
    if state is None:
        raise NotFound(f"no animation {image_id!r}", "imageId")
    return state


def checked_id(value: str, field: str = "imageId") -> str:
    import msgspec

    try:
        return msgspec.convert(value, ImageId)
    except msgspec.ValidationError:
        raise BadRequest(
            f"{show(value)} is not an animation id (letters, digits, '.', '_', '-'; 1..64)", field
        ) from None


def checked_time(value: str, field: str = "validTime") -> int:
    if not VALID_TIME.fullmatch(value):
        raise BadRequest(f"{show(value)} is not a {field} (epoch seconds: up to 12 digits, no leading zeros)", field)
    return int(value)


def query_string(request: Any, *allowed: str) -> dict[str, str]:
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
                f"unknown query parameter {show(name)}: this route takes {', '.join(allowed)}", name[:100] or "query"
            )
        values = given.getlist(name)
        if len(values) != 1:
            raise BadRequest(f"{name} is given {len(values)} times: give it once", name)
        out[name] = values[0]
    return out


def int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not NUMBER.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {show(raw)}", name)
    return int(raw)


def show(value: Any, most: int = 40) -> str:
    """A value for an error message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


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
