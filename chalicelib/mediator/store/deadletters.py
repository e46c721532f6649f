"""The mediator's dead letters, kept in its table until they are sent back."""

from __future__ import annotations

import time

from ...aws import table
from ...aws.dynamodb import ConditionFailed
from .. import records
from ..records import DeadLetter
from . import keys


def record_dead_letter(message_id: str, body: str, sent_at: int, error: str | None) -> None:
    """A message the mediator gave up on, kept until it is redriven (once, however often it is delivered)."""
    try:
        table().put(
            {
                "pk": keys.DEAD,
                "sk": message_id,
                "body": body,
                "sentAt": sent_at,
                "error": error,
                "deadAt": int(time.time()),
            },
            condition="attribute_not_exists(pk)",
        )
    except ConditionFailed:
        pass


def dead_letters(limit: int = 100) -> list[DeadLetter]:
    page = table().query(keys.DEAD, limit=limit, consistent=True)
    return [records.dead_letter(item) for item in page.items]


def forget_dead_letter(message_id: str) -> None:
    table().delete(keys.DEAD, message_id)
