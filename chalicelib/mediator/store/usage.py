"""What the handlers used, per animation and UTC day: the records an animation's cost comes from.

One record a day (ANIM#{imageId} USAGE#{yyyy-mm-dd}; what no one animation caused under
USAGE#shared), each invocation's usage ADDed to it (chalicelib.costs names the attributes): in the
transaction of a decision about the animation, or on its own (see mediator/metering.py). Kept 400 days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ...aws import table
from ...aws.dynamodb import Update
from ...costs import increments
from . import keys

SHARED = "USAGE#shared"
KEEP_DAYS = 400


def day_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d")


def _partition(image_id: str) -> str:
    return keys.animation(image_id) if image_id else SHARED


def add_usage(charges: Mapping[str, Iterable[Mapping[str, Any]]], now: float) -> int:
    """Add each animation's usages ("" for shared) to its record of the day; the writes made."""
    writes = 0
    for image_id, usages in charges.items():
        update = usage_update(image_id, usages, now)
        if update is not None:
            table().update(update.pk, update.sk, update.expression, names=update.names, values=update.values)
            writes += 1
    return writes


def usage_update(image_id: str, usages: Iterable[Mapping[str, Any]], now: float) -> Update | None:
    """The write that adds these usages to the animation's record of the day (None: nothing to add);
    on its own, or in a decision's transaction."""
    adding = increments(usages)
    if not adding:
        return None
    names = {f"#a{i}": name for i, name in enumerate(adding)}
    values: dict[str, Any] = {f":a{i}": Decimal(str(round(v, 3))) for i, v in enumerate(adding.values())}
    values[":expires"] = keys.expires(KEEP_DAYS)
    expression = "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(adding))) + " SET expiresAt = :expires"
    return Update(_partition(image_id), f"USAGE#{day_of(now)}", expression, names=names, values=values)


def usage(image_id: str, first_day: str, last_day: str) -> list[dict[str, Any]]:
    """The usage records of an animation ("" for shared) from first_day to last_day (inclusive)."""
    page = table().query(_partition(image_id), between=(f"USAGE#{first_day}", f"USAGE#{last_day}"))
    return page.items


def days_back(now: float, days: int) -> str:
    return day_of(now - timedelta(days=days).total_seconds())
