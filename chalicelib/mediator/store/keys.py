"""Where each record lives in the mediator's table (pk, sk; TTL on expiresAt).

pk                 sk                        what
ANIMATIONS         {imageId}                 configuration and counters of an animation
ANIM#{imageId}     FRAME#{validTime}         a frame: location, thumbnails
ANIM#{imageId}     FETCH#{validTime}         a fetch asked for, and how it ended
ANIM#{imageId}     GIF#{validTime}           a GIF (by its newest frame): claimed, done, emailed
ANIM#{imageId}     FAIL#{validTime}#{action}[#{detail}]  a failure of a request, and the request
ANIM#-unattributed FAIL#0#{action}#{digest}  a failure that names no animation
OUTBOX             {decision key}            messages of a decision not yet all sent
LOG#{runId}        {ms}#{seq}                the event log of a run (TTL)
DEAD               {messageId}               a dead letter of the mediator's queue
"""

from __future__ import annotations

import time

ANIMATIONS = "ANIMATIONS"
OUTBOX = "OUTBOX"
DEAD = "DEAD"
WIDTH = 12  # validTime digits in sort keys, so they sort as numbers


def animation(image_id: str) -> str:
    return f"ANIM#{image_id}"


def at(valid_time: int) -> str:
    return f"{valid_time:0{WIDTH}d}"


def record(kind: str, valid_time: int) -> str:
    """The sort key of an animation's FRAME, FETCH or GIF record."""
    return f"{kind}#{at(valid_time)}"


def failure(valid_time: int, action: str, detail: str = "") -> str:
    return f"FAIL#{at(valid_time)}#{action}" + (f"#{detail}" if detail else "")


def run(correlation_id: object) -> str:
    """A run's log partition; a correlation id that cannot be one (it came with a message) logs as 'none'."""
    if isinstance(correlation_id, str) and 0 < len(correlation_id) <= 200:
        return f"LOG#{correlation_id}"
    return "LOG#none"


def expires(days: float) -> int:
    return int(time.time() + days * 86400)
