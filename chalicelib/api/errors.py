"""API errors as JSON: {"error": reason, "field": name} with 400, 404 or 409; never a 500 for bad input."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chalice import Response
from pydantic import ValidationError


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


def from_validation(exc: ValidationError) -> BadRequest:
    """The first problem of a pydantic error, by its JSON path, and all of them in the reason."""
    problems = []
    first_field = None
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or None
        first_field = first_field or path
        text = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {text}" if path else text)
    return BadRequest("; ".join(problems), first_field)


def json_body(request: Any) -> dict[str, Any]:
    raw = request.raw_body or b""
    if not raw:
        raise BadRequest("a JSON object is required", "body")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", "body") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(body).__name__}", "body")
    return body


def answers_json(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ApiError into its JSON response; everything else is a real failure."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ApiError as exc:
            return exc.response()
        except ValidationError as exc:
            return from_validation(exc).response()

    return wrapper
