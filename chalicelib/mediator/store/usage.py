"""What the handlers used, per animation and UTC hour: the records an animation's cost comes from.

One record an hour (ANIM#{imageId} USAGE#{yyyy-mm-ddThh}; what no one animation caused under
USAGE#shared), each invocation's usage ADDed to it (chalicelib.costs names the attributes): in the
transaction of a decision about the animation, or on its own (see mediator/metering.py). By the
hour, so the last 24 hours and the last 30 days are whole records. Kept 400 days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, NamedTuple

from ...aws import table
from ...aws.dynamodb import Update
from ...costs import increments
from . import keys

Usages = list[dict[str, Any]]  # invocations' usage: function, ms, memoryMb, requests by kind


class Charge(NamedTuple):
    """What a decision's transaction records: these usages against this animation. The last is the
    mediator's own, to which the store adds the transaction's write units (chalicelib.mediator.metering
    makes it)."""

    image_id: str
    usages: Usages


SHARED = "USAGE#shared"
KEEP_DAYS = 400


def hour_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H")


def _partition(image_id: str) -> str:
    return keys.animation(image_id) if image_id else SHARED


def add_usage(charges: Mapping[str, Iterable[Mapping[str, Any]]], now: float) -> int:
    """Add each animation's usages ("" for shared) to its record of the hour; the writes made."""
    writes = 0
    for image_id, usages in charges.items():
        update = usage_update(image_id, usages, now)
        if update is not None:
            table().update(update.pk, update.sk, update.expression, names=update.names, values=update.values)
            writes += 1
    return writes


def usage_update(image_id: str, usages: Iterable[Mapping[str, Any]], now: float) -> Update | None:
    """The write that adds these usages to the animation's record of the hour (None: nothing to add);
    on its own, or in a decision's transaction."""
    adding = increments(usages)
    if not adding:
        return None
    names = {f"#a{i}": name for i, name in enumerate(adding)}
    values: dict[str, Any] = {f":a{i}": Decimal(str(round(v, 3))) for i, v in enumerate(adding.values())}
    values[":expires"] = keys.expires(KEEP_DAYS)
    expression = "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(adding))) + " SET expiresAt = :expires"
    return Update(_partition(image_id), f"USAGE#{hour_of(now)}", expression, names=names, values=values)


def usage(image_id: str, since: float, until: float) -> list[dict[str, Any]]:
    """The usage records of an animation ("" for shared) of the hours from `since` to `until`."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        page = table().query(
            _partition(image_id), between=(f"USAGE#{hour_of(since)}", f"USAGE#{hour_of(until)}"), after=after
        )
        found += page.items
        after = page.last_sk
        if after is None:
            return found
