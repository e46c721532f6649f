"""SQS: send to a queue by name, delete what a Lambda event delivered, look at a queue."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .batches import chunks

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any


class Queues:
    def __init__(self, client: SQSClient):
        self._sqs = client

    @functools.cache  # noqa: B019 (one Queues per container: aws.queues())
    def url(self, name: str, account: str | None = None) -> str:
        options = {"QueueOwnerAWSAccountId": account} if account else {}
        return self._sqs.get_queue_url(QueueName=name, **options)["QueueUrl"]

    def send(
        self,
        queue: str,
        body: str,
        message_type: str = "",
        marks: dict[str, str] | None = None,
        group: str | None = None,
        dedup: str | None = None,
    ) -> str:
        """`body` to the queue named `queue`; the message's id. `message_type` goes in an attribute,
        and each of `marks` in one of its own. A FIFO queue's message (its name ends in .fifo) goes in
        message `group`, deduplicated by `dedup`."""
        attributes = {"type": {"DataType": "String", "StringValue": message_type}} if message_type else {}
        attributes.update({name: {"DataType": "String", "StringValue": value} for name, value in (marks or {}).items()})
        fifo = {"MessageGroupId": group, "MessageDeduplicationId": dedup} if queue.endswith(".fifo") else {}
        return self._sqs.send_message(QueueUrl=self.url(queue), MessageBody=body, MessageAttributes=attributes, **fifo)[
            "MessageId"
        ]

    def send_batch(self, queue: str, bodies: list[str], message_type: str = "", delay: int = 0) -> list[int]:
        """Bodies to the queue named `queue`, 10 (and at most 256 KiB) a call, each seen after
        `delay` seconds; the indexes of those SQS did not take (a call that failed as a whole
        fails all it carried)."""
        attributes = {"type": {"DataType": "String", "StringValue": message_type}} if message_type else {}
        weights = [len(body.encode()) + len("typeString") + len(message_type) for body in bodies]
        failed: list[int] = []
        for indexes in chunks(weights):
            entries = [
                {"Id": str(i), "MessageBody": bodies[i], "MessageAttributes": attributes, "DelaySeconds": delay}
                for i in indexes
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self.url(queue), Entries=entries)
            except Exception:  # throttled or unreachable after botocore's own retries
                failed += indexes
                continue
            failed += [int(entry["Id"]) for entry in answer.get("Failed", [])]
        return sorted(failed)

    def delete(self, queue_arn: str, receipt_handles: list[str]) -> list[str]:
        """Delete received messages (an SQS event's records) from the queue `queue_arn` names; the
        receipt handles SQS did not delete (an expired one: that message comes back)."""
        *_, account, name = queue_arn.split(":")
        url, kept = self.url(name, account), []
        for start in range(0, len(receipt_handles), 10):
            chunk = receipt_handles[start : start + 10]
            answer = self._sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
            )
            kept += [chunk[int(failed["Id"])] for failed in answer.get("Failed", [])]
        return kept

    def depth(self, queue: str) -> dict[str, int]:
        """How many messages wait (visible), are being handled (inFlight) and are delayed."""
        got = self._sqs.get_queue_attributes(
            QueueUrl=self.url(queue),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(got.get("ApproximateNumberOfMessages", 0)),
            "inFlight": int(got.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(got.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def check(self, queue: str) -> None:
        """Raises unless the queue answers (the health route)."""
        self._sqs.get_queue_attributes(QueueUrl=self.url(queue), AttributeNames=["QueueArn"])
