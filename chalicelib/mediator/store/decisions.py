"""A decision's changes as conditional writes, in one transaction with its event-log lines.

Each kind of change has its writer in writes.WRITERS. Every write is conditional, so a
decision happens once, or not at all. When a transaction is cancelled on conditions, the
reasons (one per item, in order) tell which: a claim that failed means the decision was made
before, or another won (AlreadyDecided); only guards failing means the counts it was made on
have moved (Outdated: decide again on fresh ones).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from ...aws import table
from ...aws.dynamodb import Cancelled, Put, Write
from ..decide import AlreadyDecided, Decision, Outdated
from ..records import Line
from . import eventlog
from .usage import Charge, usage_update
from .writes import WRITERS, Guarded

CONFLICT_ATTEMPTS = 4


def apply(decision: Decision, log: Sequence[Line] = (), usage: Charge | None = None) -> None:
    """All of a decision's changes, the lines that log it and the usage it records (what its message
    cost: see mediator/metering.py), in one transaction.

    Raises AlreadyDecided when a claim fails (the decision was made before), Outdated when only
    a guard does.
    """
    now_ms = int(time.time() * 1000)
    writes: list[Write] = []
    guards: set[int] = set()
    for change in decision.changes:
        for write in WRITERS[type(change)](change, now_ms // 1000):
            if isinstance(write, Guarded):
                guards.add(len(writes))
                write = write.write
            writes.append(write)
    writes += [Put(eventlog.item(line, now_ms, place)) for place, line in enumerate(log)]
    if usage is not None:  # what the message cost, with this transaction's write units (an item each, twice)
        own = usage.usages[-1]["requests"]
        own["dynamodb.write"] = own.get("dynamodb.write", 0) + 2 * (len(writes) + 1)
        recording = usage_update(usage.image_id, usage.usages, now_ms / 1000)
        if recording is not None:
            writes.append(recording)
    cancelled = _transact(writes)
    if cancelled is None:
        return
    failed = {i for i, reason in enumerate(cancelled.reasons) if reason == "ConditionalCheckFailed"}
    if failed - guards:
        raise AlreadyDecided(decision.key)
    raise Outdated(decision.key)


def _transact(writes: list[Write]) -> Cancelled | None:
    """The transaction; when its conditions failed, why (None: it was written). A conflict with
    another transaction on one of its items is tried again (a decision's usage record and its
    frame or GIF are written by other messages' decisions too); throttling, or conflicts that go on,
    raise: the message comes back."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            table().transact(writes)
            return None
        except Cancelled as exc:
            if exc.conditions_failed:
                return exc
            if "TransactionConflict" not in exc.reasons or attempt == CONFLICT_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
    return None
