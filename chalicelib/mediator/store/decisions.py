"""A decision's changes as conditional writes, all in one transaction with its outbox entry.

Each kind of change has its writer in writes.WRITERS. Every write is conditional, so a
decision happens once, or not at all: when a condition fails, the decision was made before
(or another one won), and apply says AlreadyDecided.
"""

from __future__ import annotations

import time

from ...aws import table
from ...aws.dynamodb import Cancelled
from ..decide import AlreadyDecided, Decision
from . import outbox
from .writes import WRITERS


def apply(decision: Decision) -> None:
    """All of a decision's changes and its outbox entry, in one transaction.

    Raises AlreadyDecided when a condition fails: the decision was made before.
    """
    now = int(time.time())
    writes = [write for change in decision.changes for write in WRITERS[type(change)](change, now)]
    if decision.messages:
        writes.append(outbox.entry(decision, now))
    try:
        table().transact(writes)
    except Cancelled as exc:
        if exc.conditions_failed:
            raise AlreadyDecided(decision.key) from None
        raise  # a conflict or throttling: worth a retry
