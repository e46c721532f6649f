"""What every worker does around its one job.

Parse the request, log under its correlation id, do the work, answer the mediator
with the did-message. A request that can never succeed (PermanentError, including an
invalid message) is answered with did-fail-<action> and not retried; any other error
is raised so the platform retries the invocation.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ..bus import send_to_mediator
from ..errors import PermanentError
from ..log import logger
from ..messages import Message, failure, parse

CORRELATION_KEYS = ("correlationId", "runId")
M = TypeVar("M", bound=Message)

# The Lambda context of the invocation being served (remaining time, request id).
lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


class Worker(NamedTuple):
    action: str  # "fetch-amp-image", ...
    request: type[Message]
    work: Callable[[Any], Message]


def reply(model: type[M], request: Message, **fields: Any) -> M:
    """A did-message: `fields`, plus the request's extra keys that the reply does not define."""
    defined = {field.alias or name for name, field in model.model_fields.items()} | set(fields)
    passed_on = {key: value for key, value in request.extras.items() if key not in defined}
    return model(**fields, **passed_on)


def run_sns(worker: Worker, event: Any) -> dict[str, Any]:
    """An SNS-triggered worker: one record, its Message is the request."""
    sns = event.to_dict()["Records"][0]["Sns"]
    lambda_context.set(getattr(event, "context", None))
    return run(worker, sns["Message"], default_correlation_id=sns.get("MessageId"))


def run(worker: Worker, raw: str | dict[str, Any], default_correlation_id: str | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = parse(raw, expect=worker.request)
    except PermanentError as exc:
        received = _as_data(raw)
        passed_on = {k: received[k] for k in CORRELATION_KEYS if isinstance(received, dict) and k in received}
        logger.set_correlation_id(passed_on.get("correlationId") or default_correlation_id)
        return _answer_failure(worker, exc, received, passed_on, started)

    logger.set_correlation_id(request.extras.get("correlationId") or default_correlation_id)
    try:
        reply = worker.work(request)
    except PermanentError as exc:
        return _answer_failure(worker, exc, request.to_dict(), request.extras, started)
    except Exception:
        logger.exception(
            "worker failed; the platform will retry",
            extra={"action": worker.action, "request": _brief(request.to_dict())},
        )
        raise
    send_to_mediator(reply)
    logger.info(
        reply.type,
        extra={"action": worker.action, "reply": _brief(reply.to_dict()), "ms": _ms(started)},
    )
    return reply.to_dict()


def _answer_failure(
    worker: Worker, exc: Exception, request: Any, extras: dict[str, Any], started: float
) -> dict[str, Any]:
    reply = failure(worker.action, exc, request, **extras)
    send_to_mediator(reply)
    logger.error(
        f"{worker.action} can never succeed: {exc}",
        extra={"action": worker.action, "error_type": type(exc).__name__, "ms": _ms(started)},
    )
    return reply.to_dict()


def _as_data(raw: str | dict[str, Any]) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _brief(data: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """The message for a log line: long texts (an email body) cut short."""
    return {k: (v[:limit] + "..." if isinstance(v, str) and len(v) > limit else v) for k, v in data.items()}


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
