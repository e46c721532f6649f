"""Where messages go: workers answer the mediator's queue; the mediator asks through topics, and
hands itself a tick's slices through its tick queue.

The mediator's queue is FIFO, each animation a message group: SQS hands one animation's messages to
one invocation at a time, so the mediator's decisions on an animation never race (a burst of frames
is decided one after another, not retried against each other), while different animations are
decided in parallel. A message's deduplication id is its body's digest (a worker that sends the same
answer twice within five minutes sends it once); a redriven dead letter gets a fresh one.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

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
_GROUP = re.compile(r"[A-Za-z0-9._-]{1,64}")  # an image id (messages.IMAGE_ID_PATTERN), as a group id


def resend_to_mediator(body: str, message_type: str = "", redriven: bool = False) -> str:
    """A message body as it was (a dead letter's, redriven: so marked) to the mediator's queue, in its
    animation's message group."""
    dedup = uuid.uuid4().hex if redriven else hashlib.sha256(body.encode()).hexdigest()
    return queues().send(
        names().mediator_queue,
        body,
        message_type,
        {REDRIVEN: "true"} if redriven else None,
        group=message_group(body),
        dedup=dedup,
    )


def message_group(body: str) -> str:
    """The animation a mediator message is about (its imageId; a did-fail's, its request's), as its
    FIFO message group. One that names none (an upload's thumbnail, a garbled body) changes no
    animation's counts: it is a group of its own ("-" and its digest; no image id starts with "-")."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    image_id = data.get("imageId") if isinstance(data, dict) else None
    if isinstance(data, dict) and image_id is None and isinstance(data.get("request"), dict):
        image_id = data["request"].get("imageId")
    upload = (
        isinstance(data, dict) and data.get("type") == "did-create-thumbnail" and isinstance(data.get("source"), dict)
    )
    if isinstance(image_id, str) and _GROUP.fullmatch(image_id) and not upload:
        return image_id
    return "-" + hashlib.sha256(body.encode()).hexdigest()[:32]


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
