"""Animations: each one's configuration (in its directory shard, and with its counters in its own
partition), created, read, listed, deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from ...aws import table
from ...aws.dynamodb import Cancelled, Delete, Put, Update
from ..animation import Animation
from ...settings import TICK_SECONDS
from ..decide import AnimationState, phase
from . import keys


class ShardPage(NamedTuple):
    """A page of a directory shard: animation ids, the id to continue after (None: the shard's end),
    and each one's schedule as its entry says it (interval, phase, enabled; absent for an entry
    written before entries said it)."""

    image_ids: list[str]
    after: str | None
    schedules: dict[str, tuple[int, int, bool]] = {}


def put_animation(animation: Animation) -> bool:
    """Create or replace the configuration; counters are kept. True if this call created it.

    A conditional write decides it: "create if absent", else "replace if present" (each with the
    directory entry, in one transaction), so of any number of concurrent first writes exactly one
    is told it created the animation. A delete in between is retried.
    """
    image_id, config, now = animation.image_id, animation.to_dict(), int(time.time())
    entry = Put(
        {
            "pk": keys.directory(keys.shard(image_id)),
            "sk": image_id,
            # what a tick needs to know whether the animation is due, without reading its state
            "interval": animation.interval,
            "phase": phase(animation, TICK_SECONDS),
            "enabled": animation.enabled,
        }
    )
    values = {":config": config, ":now": now}
    for _ in range(5):
        for condition, created in (("attribute_not_exists(pk)", True), ("attribute_exists(pk)", False)):
            state = Update(
                keys.animation(image_id),
                keys.STATE,
                "SET #config = :config, updatedAt = :now",
                condition,
                names={"#config": "config"},
                values=values,
            )
            try:
                table().transact([state, entry])
                return created
            except Cancelled as exc:
                if not exc.conditions_failed:
                    raise
    raise RuntimeError(f"animation {image_id!r} was created and deleted under every write: giving up")


def get_animation(image_id: str, consistent: bool = False) -> AnimationState | None:
    item = table().get(keys.animation(image_id), keys.STATE, consistent=consistent)
    return _state(item) if item else None


def states(image_ids: list[str]) -> dict[str, AnimationState]:
    """Several animations' states at once (100 a call), by id: those that exist."""
    items = table().get_all((keys.animation(image_id), keys.STATE) for image_id in image_ids)
    return {item["config"]["imageId"]: _state(item) for item in items}


def delete_animation(image_id: str) -> bool:
    """Its configuration and counters go (its records stay: see delete_records); True if it was there."""
    try:
        table().transact(
            [
                Delete(keys.animation(image_id), keys.STATE, "attribute_exists(pk)"),
                Delete(keys.directory(keys.shard(image_id)), image_id),
            ]
        )
    except Cancelled as exc:
        if exc.conditions_failed:
            return False
        raise
    return True


def delete_records(image_id: str) -> int:
    """Every frame, GIF, fetch and failure record of an animation; how many there were."""
    deleted, after = 0, None
    while True:
        page = table().query(keys.animation(image_id), keys_only=True, after=after)
        deleted += table().delete_all((item["pk"], item["sk"]) for item in page.items)
        after = page.last_sk
        if after is None:
            return deleted


def directory(shard: int, after: str | None = None, limit: int = 1000, prefix: str | None = None) -> ShardPage:
    """One page of a directory shard's animation ids, in order: one query (of small items)."""
    page = table().query(keys.directory(shard), after=after, limit=limit, prefix=prefix)
    schedules = {
        item["sk"]: (int(item["interval"]), int(item.get("phase", 0)), bool(item.get("enabled", True)))
        for item in page.items
        if "interval" in item
    }
    return ShardPage([item["sk"] for item in page.items], page.last_sk, schedules)


def list_animations(
    limit: int = 100, after: str | None = None, prefix: str | None = None
) -> tuple[list[AnimationState], str | None]:
    """One page of animations (shard after shard, each in imageId order), their states read at once,
    and where the next page starts ("shard:imageId", None at the end). `prefix` narrows to the ids
    that start with it."""
    shard, last = _position(after)
    found: list[str] = []
    while shard < keys.SHARDS and len(found) < limit:
        page = directory(shard, last, limit - len(found), prefix)
        found += page.image_ids
        shard, last = (shard, page.after) if page.after is not None else (shard + 1, None)
    by_id = states(found) if found else {}
    listed = [by_id[image_id] for image_id in found if image_id in by_id]  # one deleted since: gone
    return listed, None if shard >= keys.SHARDS else f"{shard}:{last or ''}"


def all_animations() -> Iterator[AnimationState]:
    after = None
    while True:
        states_, after = list_animations(100, after)
        yield from states_
        if not after:
            return


def _position(after: str | None) -> tuple[int, str | None]:
    """Where a page starts: its shard, and the id to continue after (None: the shard's start)."""
    if not after:
        return 0, None
    shard, _, last = after.partition(":")
    if not shard.isdigit() or not 0 <= int(shard) <= keys.SHARDS:
        raise ValueError(f"{after!r} is no place in the listing")
    return int(shard), last or None


def _animation(config: dict[str, Any]) -> Animation:
    return Animation.from_dict(config)


def _state(item: dict[str, Any]) -> AnimationState:
    return AnimationState(
        animation=_animation(item["config"]),
        frame_count=item.get("frameCount", 0),
        gif_frame_count=item.get("gifFrameCount", 0),
        last_requested=item.get("lastRequested", 0),
        newest_frame=item.get("newestFrame", 0),
        latest_gif=item.get("latestGif", 0),
        done_gif=item.get("doneGif", 0),
        updated_at=item.get("updatedAt", 0),
        failed_slots=tuple(sorted(_slot(entry) for entry in item.get("failedSlots") or ())),
        last_run=item.get("lastRun", 0),
        run_deadline=item.get("runDeadline", 0),
        complete_run=item.get("completeRun", 0),
    )


def _slot(entry: str) -> tuple[int, int]:
    """A failed slot as the state keeps it, "validTime:attempts"."""
    valid_time, _, attempts = entry.partition(":")
    return int(valid_time), int(attempts or 1)
