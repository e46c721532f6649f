"""Where messages go: workers answer the mediator's queue; the mediator asks through topics, and
hands itself a tick's slices through its tick queue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

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
TICK_SLICE = "tick-slice"  # the type attribute of a tick queue's message


def send_to_mediator(message: Message) -> str:
    return resend_to_mediator(message.to_json(), message.type)


REDRIVEN = "redriven"  # the attribute of a message sent back from the dead letters: it came before


def resend_to_mediator(body: str, message_type: str = "", redriven: bool = False) -> str:
    """A message body as it was (a dead letter's, redriven: so marked) to the mediator's queue."""
    return queues().send(names().mediator_queue, body, message_type, {REDRIVEN: "true"} if redriven else None)


def publish(messages: Sequence[Message]) -> list[Message]:
    """Please-messages to their workers' topics, 10 a call per topic; those SNS did not take."""
    by_topic: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        by_topic[_TOPIC_OF[message.type]].append(message)
    failed: list[Message] = []
    for role, group in by_topic.items():
        missed = topics().publish_batch(getattr(names(), role), [(m.to_json(), m.type) for m in group])
        failed += [group[index] for index in missed]
    return failed


def enqueue_slices(bodies: list[str], delay: int = 0) -> list[int]:
    """A tick's slices to the tick queue (10 a call); the indexes of those SQS did not take."""
    return queues().send_batch(names().tick_queue, bodies, TICK_SLICE, delay)


def delete_from_queue(queue_arn: str, receipt_handles: list[str]) -> list[str]:
    """Delete received messages (an SQS event's records) from the queue `queue_arn` names; the
    receipt handles that were not (their messages come back, and are handled again, idempotently)."""
    return queues().delete(queue_arn, receipt_handles)
