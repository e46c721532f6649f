"""The mediator's SQS batch: each record on its own, and no record lost however it is deployed.

Powertools' BatchProcessor handles each record and collects the ones that raised.
What Lambda does with the handler's answer depends on the event source mapping:

- with `ReportBatchItemFailures` (post-deploy switches it on), only the records named
  in {"batchItemFailures": [...]} come back;
- without it (a plain `chalice deploy`), Lambda deletes the whole batch when the
  handler returns, whatever it returns, and keeps the whole batch when it raises.

So when some records fail, the ones that succeeded are deleted from the queue here,
and then the handler raises: in both setups the failed records come back after the
visibility timeout (and after the queue's receive limit go to its dead-letter queue),
and the good ones are applied once. Invalid messages never raise: they are recorded
and dropped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..bus import delete_from_queue
from ..log import logger
from . import service, store


class BatchIncomplete(Exception):
    """Some records of the batch failed: they stay on the queue to be tried again."""


def handle_batch(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    records = event.get("Records", [])
    processor = BatchProcessor(event_type=EventType.SQS)  # one per batch: it keeps the batch's results
    with processor(records=records, handler=_record, lambda_context=context):
        processor.process()
    response = processor.response()
    failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    if failed:
        done = [record for record in records if record["messageId"] not in failed]
        for queue_arn in {record["eventSourceARN"] for record in done}:
            delete_from_queue(queue_arn, [r["receiptHandle"] for r in done if r["eventSourceARN"] == queue_arn])
        raise BatchIncomplete(f"{len(failed)} of {len(records)} records failed and stay on the queue; "
                              f"the {len(done)} done were deleted from it")
    return response


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
