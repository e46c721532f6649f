"""Where each record lives in the mediator's table (pk, sk; TTL on expiresAt).

    pk                 sk                        what
    DIR#{shard}        {imageId}                 an animation's configuration, in one of SHARDS
                                                 directory partitions (listing; the tick's slices)
    ANIM#{imageId}     STATE                     its configuration and counters
    ANIM#{imageId}     FRAME#{validTime}         a frame: location, thumbnails, their requests,
                                                 the GIF it completed
    ANIM#{imageId}     FETCH#{validTime}         a fetch asked for (its request), how it ended
    ANIM#{imageId}     GIF#{validTime}           a GIF (by its newest frame; a forecast's by its run):
                                                 claimed (its request), done, its email, emailed
    ANIM#{imageId}     RUN#{runTime}             a model run asked for: its frames' times, how many
                                                 came and failed, its deadline, when it settled
    ANIM#{imageId}     RFRAME#{run}#{validTime}  a run's frame (as FRAME#), RFETCH#... its fetch
    ANIM#{imageId}     FAIL#{validTime}#{action}[#{detail}]  a failure of a request, and the request
    ANIM#-unattributed FAIL#0#{action}#{digest}  a failure that names no animation
    ANIM#{imageId}     USAGE#{yyyy-mm-ddThh}     what its work used that hour (its cost; TTL 400 days)
    USAGE#shared       USAGE#{yyyy-mm-ddThh}     what the shared work used (ticks, schedules...)
    LOG#{runId}        {ms}#{o}{place}#{random}  the event log of a run (TTL): by time, then (lines
                                                 written at one time) what came in (o=0) before what
                                                 went out (o=1), each in its place
    DEAD               {messageId}               a dead letter of the mediator's queue
    STATUS             STALE#{shard}#{first}     the stale animations a fetch tick slice found (TTL)
    FAILED#{hour}#{shard}  {time}#{imageId}#FAIL#...  a failure, indexed by when (TTL 2 days)

No partition is hot at any size: an animation's counters change in its own partition, the
directory is written only when a configuration changes, and a tick reads each directory
shard once (see README, "Scale").
"""

from __future__ import annotations

import time
import zlib

SHARDS = 16  # directory partitions: the tick's parallel slices start one per shard
STATE = "STATE"
DEAD = "DEAD"
WIDTH = 12  # validTime digits in sort keys, so they sort as numbers


def shard(image_id: str) -> int:
    return zlib.crc32(image_id.encode()) % SHARDS


def directory(number: int) -> str:
    return f"DIR#{number:02d}"


def animation(image_id: str) -> str:
    return f"ANIM#{image_id}"


def at(valid_time: int) -> str:
    return f"{valid_time:0{WIDTH}d}"


def record(kind: str, valid_time: int) -> str:
    """The sort key of an animation's FRAME, FETCH or GIF record."""
    return f"{kind}#{at(valid_time)}"


def run_record(kind: str, run: int, valid_time: int) -> str:
    """The sort key of a model run's FRAME or FETCH record: RFRAME#{run}#{validTime}, RFETCH#..."""
    return f"R{kind}#{at(run)}#{at(valid_time)}"


def failure(valid_time: int, action: str, detail: str = "") -> str:
    return f"FAIL#{at(valid_time)}#{action}" + (f"#{detail}" if detail else "")


def run(correlation_id: object) -> str:
    """A run's log partition; a correlation id that cannot be one (it came with a message) logs as 'none'."""
    if isinstance(correlation_id, str) and 0 < len(correlation_id) <= 200:
        return f"LOG#{correlation_id}"
    return "LOG#none"


def expires(days: float) -> int:
    return int(time.time() + days * 86400)
