"""Where messages go: workers answer the mediator's queue; the mediator asks through topics."""

from __future__ import annotations

from .aws import account_id, client, queue_url
from .messages import Message
from .settings import names


def send_to_mediator(message: Message) -> str:
    response = client("sqs").send_message(
        QueueUrl=queue_url(names().mediator_queue),
        MessageBody=message.to_json(),
        MessageAttributes={"type": {"DataType": "String", "StringValue": message.type}},
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
