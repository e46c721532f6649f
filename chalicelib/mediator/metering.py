"""What the mediator's work and its workers' cost, recorded per animation and UTC day, at no extra
call to taking in a frame.

A mediator function runs metered (`metered`: chalicelib.telemetry's metrics and usage). Each
did-message it handles is charged to its animation (`message`): the worker's usage from the reply,
and the mediator's own share of the invocation. The charge goes into the usage record in the same
transaction as the decision the message leads to (`for_decision`, then `recorded`), with whatever
that animation owed before. What no decision carries (the time after a decision is written,
spent sending its requests; a duplicate's handling; the ticks' and the schedules' work, which is
shared) is owed in this container's ledger, and goes with the animation's next decision here, or
is written in one go once the oldest owing is FLUSH_SECONDS old (at the end of an invocation).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from .. import telemetry
from ..log import logger
from . import store

FLUSH_SECONDS = 60
Usages = list[dict[str, Any]]


class Ledger:
    """Usage owed to the records, by animation ("" for shared work), in this container."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owed: dict[str, Usages] = {}
        self._since: float | None = None

    def owe(self, image_id: str, usages: Usages) -> None:
        if not usages:
            return
        with self._lock:
            self._owed.setdefault(image_id, []).extend(usages)
            self._since = self._since or time.time()

    def take(self, image_id: str) -> Usages:
        with self._lock:
            return self._owed.pop(image_id, [])

    def due(self, now: float, force: bool = False) -> dict[str, Usages]:
        """Everything owed, taken out, once the oldest owing is FLUSH_SECONDS old (or `force`)."""
        with self._lock:
            if not self._owed or not (force or (self._since and now - self._since >= FLUSH_SECONDS)):
                return {}
            owed, self._owed, self._since = self._owed, {}, None
            return owed


LEDGER = Ledger()


class _Message:
    """The did-message being handled: its animation, its worker's usage, and from where the
    mediator's own usage is counted."""

    def __init__(self, image_id: str, worker: Usages, since: telemetry.Mark, share: float):
        self.image_id, self.worker, self.since, self.share = image_id, worker, since, share
        self.recorded = False


class Charge(NamedTuple):
    """What a decision's transaction records: these usages against this animation."""

    image_id: str
    usages: Usages
    owed: Usages  # of those, what the animation owed from before
    since: telemetry.Mark  # where the mediator's usage not yet recorded starts, once it is


_message: contextvars.ContextVar[_Message | None] = contextvars.ContextVar("message", default=None)
_share: contextvars.ContextVar[float] = contextvars.ContextVar("share", default=1.0)


@contextmanager
def metered(function: str, context: Any = None, records: int = 0) -> Iterator[telemetry.Meter]:
    """A mediator function's invocation: its metrics go out at the end, and what it used that no
    message's charge took is owed as shared (the ledger written when due). `records`: the batch's
    messages, among which the invocation itself is shared."""
    token = _share.set(1 / records if records else 1.0)
    with telemetry.invocation(function, context) as meter:
        try:
            yield meter
        finally:
            _share.reset(token)
            rest = meter.usage(since=meter.charged)
            rest["invocations"] = 0.0 if records else 1.0
            if rest["ms"] or rest["requests"]:
                LEDGER.owe("", [rest])
            flush()


def flush(force: bool = False) -> int:
    """Write what is owed, if due: one write per animation. Best effort: the record of what work cost
    is no reason to do the work again."""
    owed = LEDGER.due(time.time(), force)
    if not owed:
        return 0
    try:
        return store.add_usage(owed, time.time())
    except Exception:
        logger.exception("usage not recorded")
        return 0


@contextmanager
def message(image_id: str | None, worker: Usages) -> Iterator[None]:
    """Handling one did-message of `image_id`: what it costs is charged to it (see the module)."""
    meter = telemetry.current()
    if meter is None or not image_id:
        yield
        return
    handling = _Message(image_id, worker, meter.mark(), _share.get())
    token = _message.set(handling)
    try:
        yield
    finally:
        _message.reset(token)
        own = meter.usage(since=handling.since)
        own["invocations"] = 0.0 if handling.recorded else handling.share
        meter.count_charged(own)
        LEDGER.owe(image_id, ([] if handling.recorded else handling.worker) + [own])


def for_decision() -> Charge | None:
    """What the decision about to be written should record, if a message is being handled and its
    charge is not yet recorded: what its animation owed, its worker's usage, the mediator's so far."""
    handling, meter = _message.get(), telemetry.current()
    if handling is None or meter is None or handling.recorded:
        return None
    since = meter.mark()
    own = meter.usage(since=handling.since)
    own["invocations"] = handling.share
    owed = LEDGER.take(handling.image_id)
    return Charge(handling.image_id, [*owed, *handling.worker, own], owed, since)


def recorded(charge: Charge | None) -> None:
    """The decision's transaction recorded `charge`: the message's usage from here on is owed anew."""
    handling, meter = _message.get(), telemetry.current()
    if charge is None or handling is None or meter is None:
        return
    meter.count_charged(charge.usages[-1])
    handling.recorded, handling.since = True, charge.since


def not_recorded(charge: Charge | None) -> None:
    """The transaction did not happen: what the animation owed is owed still."""
    if charge is not None:
        LEDGER.owe(charge.image_id, charge.owed)
