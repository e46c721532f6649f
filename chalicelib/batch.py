"""An SQS batch, each record on its own, and no record lost however the mapping is set.

Each record is handled on its own (as a Record: the fields of Lambda's SQS record the handlers
read), and the ones that raised are collected: what Powertools' BatchProcessor does for a
standard queue, without its asyncio and its data classes' imports on a cold start. What Lambda does with the handler's answer depends on the event source mapping:

- with `ReportBatchItemFailures` (post-deploy switches it on), only the records named
  in {"batchItemFailures": [...]} come back;
- without it (a plain `chalice deploy`), Lambda deletes the whole batch when the
  handler returns, whatever it returns, and keeps the whole batch when it raises.

So when some records fail, the ones that succeeded are deleted from the queue here,
and then the handler raises: in both setups the failed records come back after the
visibility timeout (and after the queue's receive limit go to its dead-letter queue,
where it has one), and the good ones are done once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .bus import delete_from_queue
from .log import logger


class Record:
    """One record of Lambda's SQS event, as the handlers read it."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: dict[str, Any]):
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        return str(self.raw_event["messageId"])

    @property
    def body(self) -> str:
        return str(self.raw_event.get("body") or "")

    @property
    def message_attributes(self) -> dict[str, Any]:
        return dict(self.raw_event.get("messageAttributes") or {})

    def attribute(self, name: str, default: int = 0) -> int:
        """A whole-number system attribute (SentTimestamp, ApproximateReceiveCount), or `default`."""
        try:
            return int((self.raw_event.get("attributes") or {}).get(name, default))
        except (TypeError, ValueError):
            return default


class BatchIncomplete(Exception):
    """Some records of the batch failed: they stay on the queue to be tried again."""


def handle_batch(event: dict[str, Any], handle: Callable[[Record], None], context: Any = None) -> dict[str, Any]:
    """`handle` each record; returns {"batchItemFailures": []} or raises BatchIncomplete."""
    records = event.get("Records", [])
    failed: set[str] = set()
    for record in records:
        try:
            handle(Record(record))
        except Exception as exc:  # the record stays on the queue; the others go on
            logger.debug(f"record {record['messageId']} failed: {type(exc).__name__}: {exc}")
            failed.add(record["messageId"])
    if failed:
        done = [record for record in records if record["messageId"] not in failed]
        for queue_arn in {record["eventSourceARN"] for record in done}:
            kept = delete_from_queue(queue_arn, [r["receiptHandle"] for r in done if r["eventSourceARN"] == queue_arn])
            if kept:
                logger.warning(f"{len(kept)} done records could not be deleted: they come back, to be done again")
        raise BatchIncomplete(
            f"{len(failed)} of {len(records)} records failed and stay on the queue; "
            f"the {len(done)} done were deleted from it"
        )
    return {"batchItemFailures": []}
