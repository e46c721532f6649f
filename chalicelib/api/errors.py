"""API errors as JSON: {"error": reason, "field": name} with 400, 404, 409 or 413; never a 500 for bad input."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chalice import Response

from ..model import Invalid


class ApiError(Exception):
    status = 400

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def response(self) -> Response:
        body: dict[str, Any] = {"error": self.reason}
        if self.field:
            body["field"] = self.field
        return Response(body=body, status_code=self.status, headers={"Content-Type": "application/json"})


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


MAX_BODY = 64 * 1024  # bytes: an animation's configuration is well under 2 KB
MAX_DEPTH = 16  # nesting of a body's arrays and objects: a configuration needs 3


def from_validation(exc: Invalid) -> BadRequest:
    """Every problem of a body that is no valid record, each by its JSON path; the first one's the field."""
    return BadRequest("; ".join(f"{path}: {text}" if path else text for path, text in exc.problems), exc.field)


def json_body(request: Any) -> dict[str, Any]:
    """The body as a JSON object: at most MAX_BODY bytes and MAX_DEPTH levels, each key once,
    standard JSON only (no NaN or Infinity, no unpaired surrogates); else 400 or 413 naming the field."""
    raw = request.raw_body or b""
    if not raw:
        raise BadRequest("a JSON object is required", "body")
    if len(raw) > MAX_BODY:
        raise TooLarge(f"the body is {len(raw)} bytes; at most {MAX_BODY} are accepted", "body")
    repeated: list[tuple[dict[str, Any], str]] = []  # an object (kept alive, so ids stay unique), a key it holds twice

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in items:
            if key in obj:
                repeated.append((obj, key))
            obj[key] = value
        return obj

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        body = json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)
    except RecursionError:
        raise BadRequest(f"the body is nested too deeply (at most {MAX_DEPTH} levels)", "body") from None
    except ValueError as exc:  # includes a body that is not UTF-8, and numbers of over 4300 digits
        raise BadRequest(f"the body is not JSON: {exc}", "body") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {_json_type(body)}", "body")
    first: dict[int, str] = {}
    for obj, key in repeated:
        first.setdefault(id(obj), key)
    _check_tree(body, first)
    return body


def _check_tree(body: dict[str, Any], repeated: dict[int, str]) -> None:
    """Depth, keys given twice and unpaired surrogates, found without recursion (the body may be deep)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        field = ".".join(path) or "body"
        if len(path) > MAX_DEPTH:
            raise BadRequest(f"the body is nested too deeply (at most {MAX_DEPTH} levels)", field)
        if isinstance(value, str):
            _utf8(value, field)
        elif isinstance(value, dict):
            if id(value) in repeated:
                key = repeated[id(value)]
                raise BadRequest(f"the key {key!r} is given twice", ".".join((*path, key)))
            for key, item in value.items():
                _utf8(key, ".".join((*path, key)) if _encodes(key) else field)
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(value))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _utf8(text: str, field: str) -> None:
    if not _encodes(text):
        raise BadRequest("the body holds an unpaired surrogate (\\ud800-\\udfff), which is not a character", field)


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null"
    )


def answers_json(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ApiError into its JSON response; everything else is a real failure."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ApiError as exc:
            return exc.response()
        except Invalid as exc:
            return from_validation(exc).response()

    return wrapper
