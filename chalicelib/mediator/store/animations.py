"""Animations: each one's configuration and counters, created, read, listed, deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ...aws import table
from ...aws.dynamodb import ConditionFailed
from ..animation import Animation
from ..decide import AnimationState
from . import keys


def put_animation(animation: Animation) -> bool:
    """Create or replace the configuration; counters are kept. True if this call created it.

    A conditional write decides it: "create if absent", else "replace if present", so of any
    number of concurrent first writes exactly one is told it created the animation. (An
    unconditional update answering its old item would do on DynamoDB, but moto reads that old
    item outside the write, so two writers could both see none.) A delete in between is retried.
    """
    values = {":config": animation.to_dict(), ":now": int(time.time())}
    for _ in range(5):
        for condition, created in (("attribute_not_exists(pk)", True), ("attribute_exists(pk)", False)):
            try:
                table().update(
                    keys.ANIMATIONS,
                    animation.image_id,
                    "SET #config = :config, updatedAt = :now",
                    condition,
                    names={"#config": "config"},
                    values=values,
                )
                return created
            except ConditionFailed:
                continue
    raise RuntimeError(f"animation {animation.image_id!r} was created and deleted under every write: giving up")


def get_animation(image_id: str, consistent: bool = False) -> AnimationState | None:
    item = table().get(keys.ANIMATIONS, image_id, consistent=consistent)
    return _state(item) if item else None


def delete_animation(image_id: str) -> bool:
    try:
        table().delete(keys.ANIMATIONS, image_id, condition="attribute_exists(pk)")
    except ConditionFailed:
        return False
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


def list_animations(limit: int = 100, after: str | None = None) -> tuple[list[AnimationState], str | None]:
    """One page of animations in imageId order, and the imageId to continue after."""
    page = table().query(keys.ANIMATIONS, limit=limit, after=after)
    return [_state(item) for item in page.items], page.last_sk


def all_animations() -> Iterator[AnimationState]:
    after = None
    while True:
        states, after = list_animations(100, after)
        yield from states
        if not after:
            return


def note_newest_frame(image_id: str, valid_time: int) -> None:
    """Move the animation's newest-frame mark forward (never back)."""
    try:
        table().update(
            keys.ANIMATIONS,
            image_id,
            "SET newestFrame = :t",
            "attribute_exists(pk) AND (attribute_not_exists(newestFrame) OR newestFrame < :t)",
            values={":t": valid_time},
        )
    except ConditionFailed:
        pass


def _state(item: dict[str, Any]) -> AnimationState:
    return AnimationState(
        animation=Animation.model_validate(item["config"], context={"stored": True}),
        frame_count=item.get("frameCount", 0),
        gif_frame_count=item.get("gifFrameCount", 0),
        last_requested=item.get("lastRequested", 0),
        newest_frame=item.get("newestFrame", 0),
        latest_gif=item.get("latestGif", 0),
    )
