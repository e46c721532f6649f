"""The mediator's SQS queues: its did-messages, its ticks' slices, and the dead letters of both.

Each batch goes through chalicelib.batch: every record on its own, and no record lost
whether or not the event source mapping reports batch item failures. Invalid messages
never raise: they are recorded and dropped. A message that failed the queue's receive
limit of times lands in its dead-letter queue, whose handler keeps it in the table
(GET /failures shows it, POST /failures/redrive sends it back): nothing waits in a
queue nobody reads.
"""

from __future__ import annotations

from typing import Any

from .. import telemetry
from ..batch import Record, handle_batch
from ..bus import REDRIVEN
from ..log import logger
from ..messages import MessageError
from . import service, store, ticks
from .metering import metered


def handle_messages(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with metered("mediate", context, records=len(event.get("Records", []))):
        return handle_batch(event, _record, context)


def handle_ticks(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with metered("tick", context):
        return handle_batch(event, _tick_slice, context)


def handle_dead_letters(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with metered("keep_dead_letters", context):
        return handle_batch(event, _dead_letter, context)


def _record(record: Record) -> None:
    logger.set_correlation_id(record.message_id)
    try:
        service.handle_record(record.body, again=_again(record))
    except Exception as exc:
        telemetry.failed(type(exc).__name__)
        _note_error(record.message_id, exc)
        raise


def _tick_slice(record: Record) -> None:
    """A slice of a tick; one that came before (received again) sends anew what it left unsent."""
    logger.set_correlation_id(record.message_id)
    try:
        part = ticks.parse_slice(record.body)
    except MessageError as exc:
        logger.error(f"invalid tick slice dropped: {exc}")
        store.log_event("invalid", {"type": "invalid", "error": str(exc), "body": record.body[:2000]}, "invalid")
        return
    try:
        service.run_slice(part, again=_again(record))
    except Exception as exc:
        telemetry.failed(type(exc).__name__)
        _note_error(record.message_id, exc)
        raise


def _again(record: Record) -> bool:
    """Whether this message came before: received again (its handling did not finish), or sent back
    from the dead letters."""
    return record.attribute("ApproximateReceiveCount", 1) > 1 or REDRIVEN in record.message_attributes


def _dead_letter(record: Record) -> None:
    """Keep a dead letter with the last error the mediator logged for it (SQS keeps its message id)."""
    store.record_dead_letter(
        message_id=record.message_id,
        body=record.body,
        sent_at=record.attribute("SentTimestamp") // 1000,  # when it first reached the mediator's queue
        error=store.last_error(record.message_id),
    )
    logger.warning(f"dead letter {record.message_id} kept: {record.body[:200]}")


def _note_error(message_id: str, exc: Exception) -> None:
    """Keep the error where the dead-letter handler finds it, by the message's id (best effort:
    when the table itself is what failed, the original error is what must propagate)."""
    try:
        store.log_event("error", {"type": "error", "error": f"{type(exc).__name__}: {exc}"}, f"sqs-{message_id}")
    except Exception:
        logger.exception("could not record the error in the event log")
