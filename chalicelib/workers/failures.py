"""Worker invocations that failed for good, told to the mediator as the workers' did-fail messages.

SNS and S3 invoke the workers asynchronously. When an invocation keeps raising (an error
that might have passed: a timeout, throttling, a 5xx), Lambda retries it twice and then
sends an invocation record to the worker failure queue (post-deploy sets this; the local
runtime does the same). This handler turns each record into the did-fail-<action> reply
its worker would have sent, with the error and the original request, so the mediator
records the failure against its frame or GIF and it can be redriven. A record that is no
invocation record is logged and dropped: it can never become a reply.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from ..batch import Record, handle_batch
from ..bus import send_to_mediator
from .. import telemetry
from ..log import logger
from ..messages import DidFail, failure, run_ids

# The function a record names (weathergif-{stage}-{handler}) -> the action it failed at.
ACTIONS = {
    "fetch_amp_image": "fetch-amp-image",
    "create_thumbnail": "create-thumbnail",
    "thumbnail_upload": "create-thumbnail",
    "create_gif": "create-gif",
    "send_email": "send-email",
}


class NotAnInvocationRecord(ValueError):
    """The message is not one of Lambda's on-failure invocation records of a worker."""


def handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with telemetry.invocation("worker_failed", context):
        return handle_batch(event, _record, context)


def _record(record: Record) -> None:
    try:
        reply = did_fail(json.loads(record.body))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        logger.error(
            f"not a worker's invocation record, dropped: {type(exc).__name__}: {exc}", extra={"body": record.body[:500]}
        )
        return
    logger.set_correlation_id(reply.correlation_id or record.message_id)
    send_to_mediator(reply)
    logger.warning(f"{reply.type}: {reply.error}")


def did_fail(invocation: dict[str, Any]) -> DidFail:
    """The did-fail-<action> message of one invocation record (Lambda's destination format)."""
    if not isinstance(invocation, dict) or "requestContext" not in invocation:
        raise NotAnInvocationRecord("no requestContext")
    context = invocation["requestContext"]
    function = str(context["functionArn"]).split(":")[6]
    handler = function.rsplit("-", 1)[-1]
    if handler not in ACTIONS:
        raise NotAnInvocationRecord(f"{function} is not a worker")
    request = _request(invocation.get("requestPayload"))
    payload = invocation.get("responsePayload")
    response: dict[str, Any] = payload if isinstance(payload, dict) else {}
    error_type = str(response.get("errorType") or context.get("condition") or "Error")
    message = str(response.get("errorMessage") or "no error message")
    attempts = context.get("approximateInvokeCount")
    error = f"{context.get('condition', 'failed')} after {attempts} attempts: {error_type}: {message}"
    ids = run_ids(request)
    return failure(
        ACTIONS[handler],
        error,
        request,
        error_type=error_type,
        correlation_id=ids.get("correlation_id"),
        run_id=ids.get("run_id"),
    )


def _request(payload: Any) -> Any:
    """The request a worker was given: the please-message an SNS event carried, or the upload an
    S3 event named ({"source": {"Bucket", "Key"}}, as the upload thumbnailer's own did-fail has it)."""
    record = payload["Records"][0]
    if "Sns" in record:
        text = record["Sns"]["Message"]
        try:
            return json.loads(text)
        except ValueError:
            return text
    s3 = record["s3"]
    return {"source": {"Bucket": s3["bucket"]["name"], "Key": unquote_plus(s3["object"]["key"])}}
