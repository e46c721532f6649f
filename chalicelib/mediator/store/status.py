"""What the status view reads without walking every animation: the stale animations each tick
slice found, and an index of failures by hour.

    STATUS       STALE#{shard}#{first}      a tick slice's stale animations (kept an hour)
    STATUS       TICK                       when the fetch schedule last ran (its heartbeat)
    FAILED#{hour}#{shard} {time}#{imageId}#FAIL#...  a failure recorded (with its record's transaction; 2 days)
"""

from __future__ import annotations

from typing import Any

from ...aws import table
from ...aws.dynamodb import Put
from . import keys
from .usage import hour_of

STATUS = "STATUS"
STALE_KEEP_SECONDS = 3600  # a slice's finding lasts until the next ticks replace it
MAX_LISTED = 100  # stale animations named per slice (all are counted)


def record_stale(shard: int, first: str | None, stale: list[dict[str, Any]], now: int) -> None:
    """A fetch slice's finding (the slice named by its shard and first animation or starting point):
    how many of its animations are stale, and which (up to MAX_LISTED)."""
    table().put(
        {
            "pk": STATUS,
            "sk": f"STALE#{shard:02d}#{first or ''}",
            "count": len(stale),
            "stale": stale[:MAX_LISTED],
            "at": now,
            "expiresAt": now + STALE_KEEP_SECONDS,
        }
    )


def record_tick(now: int) -> None:
    """The fetch schedule ran (whether or not any animation was due): the status view's heartbeat."""
    table().put({"pk": STATUS, "sk": "TICK", "at": now, "expiresAt": now + STALE_KEEP_SECONDS})


def stale(now: int, fresh_seconds: int) -> tuple[int, list[dict[str, Any]], int | None, bool]:
    """The stale animations the ticks' slices found in the last hour (each animation is looked at by
    its fetch tick once an interval, at its phase, and by the hourly rebuild's): how many, which (the
    newest finding of each), when the fetch schedule last ran (None: not in the last hour), and
    whether that is within fresh_seconds (if not, the ticks have stopped: what they found is no news)."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        page = table().query(STATUS, prefix="STALE#", after=after)
        items += page.items
        after = page.last_sk
        if after is None:
            break
    heartbeat = table().get(STATUS, "TICK")
    checked = int(heartbeat["at"]) if heartbeat else (max((int(i.get("at", 0)) for i in items), default=0) or None)
    if checked is None:
        return 0, [], None, False
    if checked < now - fresh_seconds:
        return 0, [], checked, False
    newest: dict[str, dict[str, Any]] = {}
    counted = 0
    for item in sorted(items, key=lambda item: int(item.get("at", 0))):
        if int(item.get("at", 0)) < now - STALE_KEEP_SECONDS:
            continue
        listed = item.get("stale") or []
        counted += max(int(item.get("count", 0)) - len(listed), 0)  # past MAX_LISTED: counted, not named
        for entry in listed:
            newest[str(entry.get("imageId"))] = entry
    return counted + len(newest), list(newest.values()), checked, True


def failure_entry(image_id: str, valid_time: int, action: str, error: str, now: int, detail: str = "") -> Put:
    """The index entry of a failure, written in the same transaction as the failure's record (and
    named as it is: two failures are two entries, whenever they come)."""
    return Put(
        {
            "pk": failed_partition(hour_of(now), keys.shard(image_id)),
            "sk": f"{keys.at(now)}#{image_id}#{keys.failure(valid_time, action, detail)}",
            "imageId": image_id,
            "action": action,
            "error": error[:300],
            "failedAt": now,
            "expiresAt": now + 2 * 86400,
        }
    )


def failed_partition(hour: str, shard: int) -> str:
    """An hour's failures, spread over the directory's shards: an outage's burst of failures (every
    fetch failing at once) is no hot partition."""
    return f"FAILED#{hour}#{shard:02d}"


def failures_since(since: int, now: int, limit: int = 200, most: int = 1000) -> tuple[int, list[dict[str, Any]], bool]:
    """Failures recorded from `since` to `now`: how many (counted up to `most`: then True, "at least"),
    and the newest of them (up to limit)."""
    count, more = 0, False
    found: list[dict[str, Any]] = []
    hour = now - now % 3600
    while hour >= since - since % 3600 and not more:  # the newest hour first
        for shard in range(keys.SHARDS):
            after = None
            while not more:
                page = table().query(
                    failed_partition(hour_of(hour), shard),
                    between=(keys.at(since), keys.at(now) + "#~"),
                    newest_first=True,
                    after=after,
                )
                count += len(page.items)
                found += page.items
                after = page.last_sk
                more = count >= most
                if after is None:
                    break
        hour -= 3600
    found.sort(key=lambda item: item.get("failedAt", 0), reverse=True)
    return count, found[:limit], more
