"""Where messages go: workers answer the mediator's queue; the mediator asks through topics."""

from __future__ import annotations

from .aws import queues, topics
from .messages import Message
from .settings import names

# The mediator's please-messages go to the worker topics.
_TOPIC_OF = {
    "please-fetch-amp-image": "fetch_topic",
    "please-create-thumbnail": "thumbnail_topic",
    "please-create-gif": "gif_topic",
    "please-send-email": "email_topic",
}


def send_to_mediator(message: Message) -> str:
    return resend_to_mediator(message.to_json(), message.type)


def resend_to_mediator(body: str, message_type: str = "") -> str:
    """A message body as it was (a dead letter's, redriven) to the mediator's queue."""
    return queues().send(names().mediator_queue, body, message_type)


def publish(message: Message) -> str:
    """A please-message to its worker's topic."""
    return topics().publish(getattr(names(), _TOPIC_OF[message.type]), message.to_json(), message.type)


def delete_from_queue(queue_arn: str, receipt_handles: list[str]) -> list[str]:
    """Delete received messages (an SQS event's records) from the queue `queue_arn` names; the
    receipt handles that were not (their messages come back, and are handled again, idempotently)."""
    return queues().delete(queue_arn, receipt_handles)
