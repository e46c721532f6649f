"""An animation's records, typed: its frames, fetches, GIFs and failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ...aws import table
from ...aws.dynamodb import ConditionFailed
from .. import records
from ..records import Failure, Fetch, Frame, Gif
from . import keys

R = TypeVar("R")


def newest_frames(image_id: str, count: int, up_to: int | None = None) -> list[Frame]:
    """The newest `count` frames (valid at or before `up_to`), newest first: a query, never a scan."""
    upper = keys.record("FRAME", up_to) if up_to is not None else "FRAME#~"
    page = table().query(
        keys.animation(image_id), between=("FRAME#", upper), newest_first=True, limit=count, consistent=True
    )
    return [records.frame(item) for item in page.items]


def frames(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Frame]:
    return _kind(image_id, "FRAME", records.frame, limit, newest_first)


def gifs(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Gif]:
    return _kind(image_id, "GIF", records.gif, limit, newest_first)


def fetches(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Fetch]:
    return _kind(image_id, "FETCH", records.fetch, limit, newest_first)


def failures(image_id: str, limit: int = 20, newest_first: bool = True) -> list[Failure]:
    """An animation's recorded failures, newest first, each with its request when it was kept."""
    return _kind(image_id, "FAIL", records.failure, limit, newest_first)


def frame(image_id: str, valid_time: int) -> Frame | None:
    """One frame by its valid time: a get, not a query."""
    item = table().get(keys.animation(image_id), keys.record("FRAME", valid_time))
    return records.frame(item) if item else None


def gif(image_id: str, valid_time: int) -> Gif | None:
    """One GIF by the valid time of its newest frame: a get, not a query."""
    item = table().get(keys.animation(image_id), keys.record("GIF", valid_time))
    return records.gif(item) if item else None


def forget_failure(image_id: str, failure: Failure) -> bool:
    """Delete a failure record (it was redriven: a new failure can be recorded); True if it was there."""
    try:
        table().delete(
            keys.animation(image_id),
            keys.failure(failure.valid_time, failure.action, failure.detail),
            condition="attribute_exists(pk)",
        )
    except ConditionFailed:
        return False
    return True


def _kind(image_id: str, kind: str, typed: Callable[[dict[str, Any]], R], limit: int, newest_first: bool) -> list[R]:
    page = table().query(keys.animation(image_id), prefix=f"{kind}#", newest_first=newest_first, limit=limit)
    return [typed(item) for item in page.items]
