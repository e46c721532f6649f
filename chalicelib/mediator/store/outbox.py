"""The outbox: the messages of a decision, kept until they are all sent.

A decision's entry is written in its transaction (decisions.apply), so a decision that was
made always has its messages somewhere: sent, or waiting here to be sent again.
"""

from __future__ import annotations

import time

from ...aws import table
from ...aws.dynamodb import Put
from ...messages import Message, parse
from ..decide import Decision
from . import keys

KEEP_DAYS = 7


def entry(decision: Decision, now: int) -> Put:
    return Put(
        {
            "pk": keys.OUTBOX,
            "sk": decision.key,
            "createdAt": now,
            "expiresAt": keys.expires(KEEP_DAYS),
            "messages": [message.to_json() for message in decision.messages],
        },
        "attribute_not_exists(pk)",
    )


def pending(key: str) -> list[Message]:
    """Messages a decision stored and has not yet marked sent."""
    item = table().get(keys.OUTBOX, key, consistent=True)
    return [parse(text) for text in item.get("messages", [])] if item else []


def sent(key: str) -> None:
    table().delete(keys.OUTBOX, key)


def stale_outbox(older_than: int) -> list[str]:
    """Decision keys whose messages have waited more than `older_than` seconds."""
    page = table().query(keys.OUTBOX, where="createdAt < :cutoff", values={":cutoff": int(time.time()) - older_than})
    return [item["sk"] for item in page.items]
