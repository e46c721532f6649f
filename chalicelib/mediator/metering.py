"""A mediator function's invocation, metered (chalicelib.telemetry): its metrics go out, and what it
used is recorded per animation (what the service charged to each; the rest as shared)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import telemetry
from ..log import logger
from . import store


@contextmanager
def metered(function: str, context: Any = None) -> Iterator[telemetry.Meter]:
    """A mediator function's invocation, metered: at its end, what it used is recorded per animation
    (what the service charged to each; the rest, shared), one write per animation, whatever the end."""
    with telemetry.invocation(function, context) as meter:
        try:
            yield meter
        finally:
            _record_usage(meter)


def _record_usage(meter: telemetry.Meter) -> None:
    charged = telemetry.Mark(0, {})
    for usages in meter.charges.values():
        for usage in usages:
            if usage["function"] == meter.function:
                charged.ms += usage["ms"]
                for kind, n in usage["requests"].items():
                    charged.requests[kind] = charged.requests.get(kind, 0) + n
    rest = meter.usage(since=charged)
    charges = {image_id: list(usages) for image_id, usages in meter.charges.items()}
    if rest["ms"] or rest["requests"] or not charges:
        charges[""] = [*charges.get("", []), rest]
    own = [usage for usages in charges.values() for usage in usages if usage["function"] == meter.function]
    for usage in own:  # one invocation, shared among the parts it was charged in
        usage["invocations"] = 1 / len(own)
    try:
        store.add_usage(charges, time.time())
    except Exception:  # the record of what work cost is no reason to do the work again
        logger.exception("usage not recorded")
