"""An animation's records, typed: its frames, fetches, GIFs and failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from ...aws import table
from ...aws.dynamodb import ConditionFailed
from .. import records
from ..decide import AnimationState
from ..records import Failure, Fetch, Frame, Gif, Run
from . import keys

R = TypeVar("R")


def newest_frames(image_id: str, count: int, up_to: int | None = None) -> list[Frame]:
    """The newest `count` frames (valid at or before `up_to`), newest first: a query, never a scan."""
    upper = keys.record("FRAME", up_to) if up_to is not None else "FRAME#~"
    page = table().query(
        keys.animation(image_id), between=("FRAME#", upper), newest_first=True, limit=count, consistent=True
    )
    return [records.frame(item) for item in page.items]


def run(image_id: str, run_time: int, consistent: bool = True) -> Run | None:
    """A model run the animation asked for: a get."""
    item = table().get(keys.animation(image_id), keys.record("RUN", run_time), consistent=consistent)
    return records.run(item) if item else None


def run_frames(image_id: str, run_time: int) -> list[Frame]:
    """A model run's frames, oldest first: a query."""
    page = table().query(keys.animation(image_id), prefix=f"RFRAME#{keys.at(run_time)}#", consistent=True)
    return [records.frame(item) for item in page.items]


def run_fetches(image_id: str, run_time: int) -> list[Fetch]:
    """A model run's fetch requests and how each ended: a query."""
    page = table().query(keys.animation(image_id), prefix=f"RFETCH#{keys.at(run_time)}#", consistent=True)
    return [records.fetch(item) for item in page.items]


def run_frame(image_id: str, run_time: int, valid_time: int) -> Frame | None:
    item = table().get(keys.animation(image_id), keys.run_record("FRAME", run_time, valid_time), consistent=True)
    return records.frame(item) if item else None


def frames(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Frame]:
    return _kind(image_id, "FRAME", records.frame, limit, newest_first)


def gifs(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Gif]:
    return _kind(image_id, "GIF", records.gif, limit, newest_first)


def fetches(image_id: str, limit: int = 50, newest_first: bool = True) -> list[Fetch]:
    return _kind(image_id, "FETCH", records.fetch, limit, newest_first)


def failures(image_id: str, limit: int = 20, newest_first: bool = True) -> list[Failure]:
    """An animation's recorded failures, newest first, each with its request when it was kept."""
    return _kind(image_id, "FAIL", records.failure, limit, newest_first)


def frame(image_id: str, valid_time: int, consistent: bool = False) -> Frame | None:
    """One frame by its valid time: a get, not a query."""
    item = table().get(keys.animation(image_id), keys.record("FRAME", valid_time), consistent=consistent)
    return records.frame(item) if item else None


def gif(image_id: str, valid_time: int, consistent: bool = False) -> Gif | None:
    """One GIF by the valid time of its newest frame: a get, not a query."""
    item = table().get(keys.animation(image_id), keys.record("GIF", valid_time), consistent=consistent)
    return records.gif(item) if item else None


def fetch(image_id: str, valid_time: int) -> Fetch | None:
    """One fetch request by its valid time: a get."""
    item = table().get(keys.animation(image_id), keys.record("FETCH", valid_time), consistent=True)
    return records.fetch(item) if item else None


def fetches_of(wanted: list[tuple[str, int]]) -> dict[str, Fetch]:
    """The fetch requests of several animations, each at its valid time, by id (100 a call): those there are."""
    items = table().get_all(((keys.animation(i), keys.record("FETCH", t)) for i, t in wanted), consistent=True)
    return {item["pk"].removeprefix("ANIM#"): records.fetch(item) for item in items}


def fetches_in(wanted: list[tuple[str, int]]) -> list[tuple[str, Fetch]]:
    """The fetch requests of several animations at several valid times each (100 a call): those there are."""
    items = table().get_all(((keys.animation(i), keys.record("FETCH", t)) for i, t in wanted), consistent=True)
    return [(item["pk"].removeprefix("ANIM#"), records.fetch(item)) for item in items]


class Latest(NamedTuple):
    """What an animation's card shows of how it is doing."""

    gif: Gif | None  # the latest GIF claimed
    fetch: Fetch | None  # the latest fetch asked for
    made: Gif | None  # the latest GIF made (the one shown)
    run: Run | None  # the newest model run asked for (forecasts and loops)


def latest(states: list[AnimationState]) -> dict[str, Latest]:
    """Each animation's Latest, by id: its latest GIF claimed and made, latest fetch and newest run
    (one BatchGetItem for 25 animations)."""
    wanted: list[tuple[str, str]] = []
    for s in states:
        pk = keys.animation(s.animation.image_id)
        if s.latest_gif:
            wanted.append((pk, keys.record("GIF", s.latest_gif)))
        if s.done_gif and s.done_gif != s.latest_gif:
            wanted.append((pk, keys.record("GIF", s.done_gif)))
        if s.last_requested:
            wanted.append((pk, keys.record("FETCH", s.last_requested)))
        if s.last_run:
            wanted.append((pk, keys.record("RUN", s.last_run)))
    found: dict[str, dict[str, Any]] = {}
    for item in table().get_all(wanted) if wanted else []:
        found.setdefault(item["pk"], {})[item["sk"]] = item
    out = {}
    for s in states:
        items = found.get(keys.animation(s.animation.image_id), {})
        claimed = items.get(keys.record("GIF", s.latest_gif)) if s.latest_gif else None
        made = items.get(keys.record("GIF", s.done_gif)) if s.done_gif else None
        fetch = items.get(keys.record("FETCH", s.last_requested)) if s.last_requested else None
        run = items.get(keys.record("RUN", s.last_run)) if s.last_run else None
        out[s.animation.image_id] = Latest(
            records.gif(claimed) if claimed else None,
            records.fetch(fetch) if fetch else None,
            records.gif(made) if made else None,
            records.run(run) if run else None,
        )
    return out


def mark_sent(kind: str, image_id: str, valid_time: int) -> None:
    """Note on a FETCH or GIF record that its request went out (a person's: they can be told so)."""
    table().update(
        keys.animation(image_id),
        keys.record(kind, valid_time),
        "SET sentAt = :now",
        "attribute_exists(pk)",
        values={":now": int(time.time())},
    )


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
