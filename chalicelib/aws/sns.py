"""SNS: publish to a topic of this account and region, by its name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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

    def publish(self, topic: str, body: str, message_type: str) -> str:
        """`body` to the topic named `topic`, its type in an attribute; the message's id."""
        return self._sns.publish(
            TopicArn=self.arn(topic),
            Message=body,
            MessageAttributes={"type": {"DataType": "String", "StringValue": message_type}},
        )["MessageId"]
