"""SNS: publish to a topic of this account and region, by its name, up to 10 messages a call."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .batches import chunks

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
else:
    SNSClient = Any


class Topics:
    def __init__(self, client: SNSClient, account: Callable[[], str]):
        self._sns = client
        self._account = account  # asked once, when a topic's ARN is first needed

    @functools.cache  # noqa: B019 (one Topics per container: aws.topics())
    def arn(self, name: str) -> str:
        meta = self._sns.meta
        return f"arn:{meta.partition}:sns:{meta.region_name}:{self._account()}:{name}"

    def publish_batch(self, topic: str, messages: Sequence[tuple[str, str]]) -> list[int]:
        """(body, type) pairs to the topic named `topic`, 10 (and at most 256 KiB) a call; the
        indexes of those SNS did not take (a call that failed as a whole fails all it carried)."""
        failed: list[int] = []
        weights = [len(body.encode()) + len("typeString") + len(kind.encode()) for body, kind in messages]
        for indexes in chunks(weights):
            chunk = [(index, messages[index]) for index in indexes]
            entries = [
                {
                    "Id": str(index),
                    "Message": body,
                    "MessageAttributes": {"type": {"DataType": "String", "StringValue": message_type}},
                }
                for index, (body, message_type) in chunk
            ]
            try:
                answer = self._sns.publish_batch(TopicArn=self.arn(topic), PublishBatchRequestEntries=entries)
            except Exception:  # throttled or unreachable after botocore's own retries
                failed += [index for index, _ in chunk]
                continue
            failed += [int(entry["Id"]) for entry in answer.get("Failed", [])]
        return sorted(failed)
