"""What every worker does around its one job.

Parse the request, log under its correlation id, do the work, answer the mediator
with the did-message. A request that can never succeed (PermanentError, including an
invalid message, and a reply that fails its own validation) is answered with
did-fail-<action> and not retried; any other error is raised so the platform retries
the invocation. Every text that leaves (the did-fail's error, log lines) goes through the
redactor the work put in force (chalicelib.redaction), if any.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from .. import redaction, telemetry
from ..bus import send_to_mediator
from ..errors import PermanentError
from ..log import logger
from ..messages import Message, MessageError, Usage, failure, parse, run_ids
from ..model import Invalid

M = TypeVar("M", bound=Message)

# The Lambda context of the invocation being served (remaining time, request id).
lambda_context: contextvars.ContextVar[Any] = contextvars.ContextVar("lambda_context", default=None)


class PassingError(Exception):
    """An error that may pass, raised again with the secrets in its text redacted."""


class Worker(NamedTuple):
    action: str  # "fetch-amp-image", ...
    request: type[Message]
    work: Callable[[Any], Message]

    @property
    def function(self) -> str:
        """Its handler's name in app.py (and its metrics' Function)."""
        return self.action.replace("-", "_")


def reply(model: type[M], request: Message, **fields: Any) -> M:
    """A did-message: `fields`, the request's run ids, and its extra keys the reply does not define;
    checked (Invalid if it breaks the contract), so a worker builds it before it stores anything."""
    passed_on = {key: value for key, value in request.extras.items() if key not in fields}
    return model.make(passed_on, **{**request.run(), **fields}).checked()


def run_sns(worker: Worker, event: Any) -> dict[str, Any]:
    """An SNS-triggered worker: one record, its Message is the request."""
    sns = event.to_dict()["Records"][0]["Sns"]
    lambda_context.set(getattr(event, "context", None))
    return run(worker, sns["Message"], default_correlation_id=sns.get("MessageId"))


def run(worker: Worker, raw: str | dict[str, Any], default_correlation_id: str | None = None) -> dict[str, Any]:
    scope = redaction.scoped()  # this request's redactor, if its work sets one, ends with it
    try:
        with telemetry.invocation(worker.function, lambda_context.get()):
            return _run(worker, raw, default_correlation_id)
    finally:
        redaction.end_scope(scope)


def _with_usage(reply: M) -> M:
    """The reply, with what this invocation used (its own sending counted): the mediator records it."""
    meter = telemetry.current()
    if meter is None:
        return reply
    try:
        usage = Usage.from_dict(meter.usage(extra={"sqs": 1}))
    except Invalid:  # what it says of cost is no reason to hold back the reply
        logger.exception("usage left off the reply")
        return reply
    return reply.replace(usage=usage)


def _run(worker: Worker, raw: str | dict[str, Any], default_correlation_id: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = parse(raw, expect=worker.request)
    except PermanentError as exc:
        received = _as_data(raw)
        ids = run_ids(received)
        logger.set_correlation_id(ids.get("correlation_id") or default_correlation_id)
        return _answer_failure(worker, exc, received, {}, ids, started)

    logger.set_correlation_id(request.correlation_id or default_correlation_id)
    try:
        reply = worker.work(request).checked()
    except PermanentError as exc:
        return _answer_failure(worker, exc, request.to_dict(), request.extras, request.run(), started)
    except Invalid as exc:  # a reply (or a location) that breaks the contract: retrying gives the same
        error = MessageError(exc.describe(), exc.title)
        return _answer_failure(worker, error, request.to_dict(), request.extras, request.run(), started)
    except Exception as exc:
        logger.exception(
            "worker failed; the platform will retry",
            extra={"action": worker.action, "request": _brief(request.to_dict())},
        )
        text = str(exc)
        cleaned = redaction.redact(text)
        if cleaned != text:  # the platform logs what is raised, and the failure record keeps it
            raise PassingError(f"{type(exc).__name__}: {cleaned}") from None
        raise
    reply = _with_usage(reply)
    send_to_mediator(reply)
    logger.info(
        reply.type,
        extra={"action": worker.action, "reply": _brief(reply.to_dict()), "ms": _ms(started)},
    )
    return reply.to_dict()


def _answer_failure(
    worker: Worker, exc: Exception, request: Any, extras: dict[str, Any], run: dict[str, str], started: float
) -> dict[str, Any]:
    reply = failure(worker.action, exc, request, extras=extras, **run)
    redactor = redaction.active()
    reply = reply.replace(error=redactor(reply.error), request=redactor.scrub(reply.request))
    telemetry.failed(type(exc).__name__)
    reply = _with_usage(reply)
    send_to_mediator(reply)
    logger.error(
        f"{worker.action} can never succeed: {reply.error}",
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
