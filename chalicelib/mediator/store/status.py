"""What the status view reads without walking every animation: the stale animations each tick
slice found, and an index of failures by hour.

    STATUS       STALE#{shard}#{first}      a fetch tick slice's stale animations (kept an hour)
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


def stale(now: int, fresh_seconds: int) -> tuple[int, list[dict[str, Any]], int | None, bool]:
    """The stale animations the newest fetch tick's slices found: how many, which, that tick's time
    (None: no tick has looked in the last hour), and whether it is within fresh_seconds (if not, the
    ticks have stopped: what they found is no news)."""
    items: list[dict[str, Any]] = []
    after = None
    while True:
        page = table().query(STATUS, prefix="STALE#", after=after)
        items += page.items
        after = page.last_sk
        if after is None:
            break
    if not items:
        return 0, [], None, False
    newest = max(int(item.get("at", 0)) for item in items)
    if newest < now - fresh_seconds:
        return 0, [], newest, False
    latest = [item for item in items if int(item.get("at", 0)) == newest]
    found = [entry for item in latest for entry in item.get("stale") or []]
    return sum(int(item.get("count", 0)) for item in latest), found, newest, True


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
