"""Where messages go: workers answer the mediator's queue."""

from __future__ import annotations

from .aws import client, queue_url
from .messages import Message
from .settings import names


def send_to_mediator(message: Message) -> str:
    response = client("sqs").send_message(
        QueueUrl=queue_url(names().mediator_queue),
        MessageBody=message.to_json(),
        MessageAttributes={"type": {"DataType": "String", "StringValue": message.type}},
    )
    return response["MessageId"]
