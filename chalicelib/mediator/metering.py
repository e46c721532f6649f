"""What the mediator's work and its workers' cost, recorded per animation and UTC day, at no extra
call to taking in a frame.

A mediator function runs metered (`metered`: chalicelib.telemetry's metrics and usage). A
did-message's cost is charged to its animation in the same transaction as the decision it leads to
(`message`, `for_decision`, `recorded`): the worker's usage from its reply, the mediator's own until
then, and the requests the decision is about to make (its transaction's write units, estimated by
the store, and its sends). So a worker's usage is recorded exactly when its answer's decision is,
once: a duplicate, a redelivery or a message whose handling failed records none of it again.

What no decision carries is shared: the mediator's time after a decision is written, a duplicate's
handling, the ticks', schedules' and dead letters' work. It is owed in this container's ledger and
written in one go (one write) once the oldest owing is FLUSH_SECONDS old, at the end of an
invocation; a container that ends in between takes its share with it.
"""

from __future__ import annotations

import contextvars
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import telemetry
from ..log import logger
from . import store
from .store.usage import Charge, Usages

FLUSH_SECONDS = 60
SHARED = ""  # the usage record of what no one animation caused


class Ledger:
    """Shared usage owed to the records, in this container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owed: Usages = []
        self._since: float | None = None

    def owe(self, usages: Usages) -> None:
        if not usages:
            return
        with self._lock:
            self._owed.extend(usages)
            self._since = self._since or time.time()

    def due(self, now: float, force: bool = False) -> Usages:
        """Everything owed, taken out, once the oldest owing is FLUSH_SECONDS old (or `force`)."""
        with self._lock:
            if not self._owed or not (force or (self._since and now - self._since >= FLUSH_SECONDS)):
                return []
            owed, self._owed, self._since = self._owed, [], None
            return owed


LEDGER = Ledger()


class _Message:
    """The did-message being handled: its animation (if it names one), its worker's usage, and where
    the mediator's own usage for it starts."""

    def __init__(self, image_id: str | None, worker: Usages, since: telemetry.Mark, share: float):
        self.image_id, self.worker, self.since, self.share = image_id, worker, since, share
        self.recorded = False


_message: contextvars.ContextVar[_Message | None] = contextvars.ContextVar("message", default=None)
_share: contextvars.ContextVar[float] = contextvars.ContextVar("share", default=1.0)


@contextmanager
def metered(function: str, context: Any = None, records: int = 0) -> Iterator[telemetry.Meter]:
    """A mediator function's invocation: its metrics go out at the end, and what it used that no
    decision recorded is owed as shared (written when due). `records`: the batch's messages, among
    which the invocation itself is shared."""
    token = _share.set(1 / records if records else 1.0)
    with telemetry.invocation(function, context) as meter:
        try:
            yield meter
        finally:
            _share.reset(token)
            rest = meter.usage(since=meter.charged)
            rest["invocations"] = max(0.0, 1.0 - meter.charged_invocations)
            if rest["ms"] or rest["requests"] or rest["invocations"]:
                LEDGER.owe([rest])
            flush()


def flush(force: bool = False) -> int:
    """Write the shared usage owed, if due (one write). Best effort: the record of what work cost is
    no reason to do the work again."""
    owed = LEDGER.due(time.time(), force)
    if not owed:
        return 0
    try:
        return store.add_usage({SHARED: owed}, time.time())
    except Exception:
        logger.exception("shared usage not recorded")
        return 0


@contextmanager
def message(image_id: str | None, worker: Usages) -> Iterator[None]:
    """Handling one did-message (of `image_id`, if it names one): its cost goes with its decision."""
    meter = telemetry.current()
    if meter is None:
        yield
        return
    token = _message.set(_Message(image_id, worker, meter.mark(), _share.get()))
    try:
        yield
    finally:
        _message.reset(token)


def for_decision(image_id: str | None, sends: int = 0) -> Charge | None:
    """What the decision about to be written (about `image_id`) records, if a message is being handled
    and its charge is not yet recorded: its worker's usage, and the mediator's so far with the `sends`
    (please-messages) it is about to publish, 10 a call."""
    handling, meter = _message.get(), telemetry.current()
    if handling is None or meter is None or handling.recorded:
        return None
    charged_to = handling.image_id or image_id
    if not charged_to:
        return None
    own = meter.usage(since=handling.since, extra={"sns": math.ceil(sends / 10)} if sends else None)
    own["invocations"] = handling.share
    return Charge(charged_to, [*handling.worker, own])


def recorded(charge: Charge | None) -> None:
    """The decision's transaction recorded `charge`: the mediator's part is charged, once."""
    handling, meter = _message.get(), telemetry.current()
    if charge is None or handling is None or meter is None:
        return
    own = charge.usages[-1]
    meter.count_charged(own)
    meter.charged_invocations += own["invocations"]
    handling.recorded = True
