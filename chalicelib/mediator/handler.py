"""The mediator's SQS batch: each record on its own, failures reported per record.

Powertools' BatchProcessor returns {"batchItemFailures": [...]} naming only the
records that raised, so one bad record does not redo nine good ones; those come back
after the visibility timeout, and after the queue's receive limit go to its
dead-letter queue. Invalid messages never raise: they are recorded and dropped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..log import logger
from . import service, store


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    processor = BatchProcessor(event_type=EventType.SQS)  # one per batch: it keeps the batch's results
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)


def _record(record: SQSRecord) -> None:
    logger.set_correlation_id(record.message_id)
    try:
        service.handle_record(record.body)
    except Exception as exc:
        _note_error(record.message_id, exc)
        raise


def _note_error(message_id: str, exc: Exception) -> None:
    """Keep the error where the dead-letter listing finds it, by the message's id (best effort:
    when the table itself is what failed, the original error is what must propagate)."""
    try:
        store.log_event("error", {"type": "error", "error": f"{type(exc).__name__}: {exc}"}, f"sqs-{message_id}")
    except Exception:
        logger.exception("could not record the error in the event log")
