"""Where messages go: workers answer the mediator's queue; the mediator asks through topics."""

from __future__ import annotations

from .aws import account_id, client, queue_url
from .messages import Message
from .settings import names


def send_to_mediator(message: Message) -> str:
    return resend_to_mediator(message.to_json(), message.type)


def resend_to_mediator(body: str, message_type: str = "") -> str:
    """A message body as it was (a dead letter's, redriven) to the mediator's queue."""
    attributes = {"type": {"DataType": "String", "StringValue": message_type}} if message_type else {}
    response = client("sqs").send_message(
        QueueUrl=queue_url(names().mediator_queue), MessageBody=body, MessageAttributes=attributes
    )
    return response["MessageId"]


# The mediator's please-messages go to the worker topics.
_TOPIC_OF = {
    "please-fetch-amp-image": "fetch_topic",
    "please-create-thumbnail": "thumbnail_topic",
    "please-create-gif": "gif_topic",
    "please-send-email": "email_topic",
}


def publish(message: Message) -> str:
    """A please-message to its worker's topic."""
    topic = getattr(names(), _TOPIC_OF[message.type])
    response = client("sns").publish(
        TopicArn=topic_arn(topic),
        Message=message.to_json(),
        MessageAttributes={"type": {"DataType": "String", "StringValue": message.type}},
    )
    return response["MessageId"]


def topic_arn(name: str) -> str:
    sns = client("sns")
    partition = sns.meta.partition
    return f"arn:{partition}:sns:{sns.meta.region_name}:{account_id()}:{name}"


def delete_from_queue(queue_arn: str, receipt_handles: list[str]) -> None:
    """Delete received messages (an SQS event's records) from the queue `queue_arn` names.

    A message whose receipt handle has expired stays and comes back: handlers are idempotent."""
    *_, account, name = queue_arn.split(":")
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    for start in range(0, len(receipt_handles), 10):
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(receipt_handles[start:start + 10])]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)
