"""A schedule's tick, fanned out: slice messages on the tick queue, each handled by its own
invocation (in parallel on Lambda), each over at most SLICE animations.

The schedule's handler reads the first page of each directory shard and packs the ids into
slices of up to SLICE (a few small shards share one; a full page is a slice of its own, and
carries where the rest of its shard starts). A slice that carries the rest of a shard hands it
on (a slice that reads the next page) before doing its own. What fails for one animation (its claim, its publish) goes to a slice of just those
animations, sent again after a back-off: the others' tick is not held up, and nothing decided
waits for a later tick. A slice that comes again (redelivered, or a retry) sends anew what its
animations' records show asked for and not yet done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from ..messages import EpochSeconds, ImageId, MessageError
from ..model import Invalid, Record
from ..settings import TICK_SECONDS
from .decide import is_due
from .store import keys
from .store.animations import ShardPage

SLICE = 1000  # animations one invocation works on at most (a directory page)
MAX_ATTEMPTS = 6  # retry slices of one tick, after which what still fails is a dead letter
RETRY_DELAY = 10  # seconds before the first retry slice is seen; doubled each attempt (SQS allows 900)

Kind = Literal["fetch", "rebuild"]


class TickSlice(Record, frozen=True, kw_only=True):
    """A part of one tick: these animations (`only`), or the page of a shard after `after`; and
    when `only` came from a full page, where the rest of its shard starts (`after`)."""

    kind: Kind
    time: EpochSeconds  # the tick's time: every slice of it decides at this time
    shard: Annotated[int, Meta(ge=0, lt=keys.SHARDS)]
    after: ImageId | None = None  # the rest of the shard, after this id
    only: Annotated[list[ImageId], Meta(max_length=SLICE)] | None = None  # just these
    attempt: Annotated[int, Meta(ge=0, le=MAX_ATTEMPTS)] = 0

    def to_json(self) -> str:
        return msgspec.json.encode(self.to_dict()).decode()

    @property
    def retry_delay(self) -> int:
        """Seconds before this slice is seen, when it is a retry."""
        return min(900, RETRY_DELAY * 2 ** (self.attempt - 1)) if self.attempt else 0


def due(kind: Kind, time: int, page: ShardPage) -> list[str]:
    """The ids of a directory page a tick works on: for a fetch, those whose phase is now (or whose
    entry does not say: written before entries did) and that are enabled; for a rebuild, all."""
    if kind != "fetch":
        return page.image_ids
    found = []
    for image_id in page.image_ids:
        schedule = page.schedules.get(image_id)
        if schedule is None or (schedule[2] and is_due(schedule[0], schedule[1], time, TICK_SECONDS)):
            found.append(image_id)
    return found


def pack(kind: Kind, time: int, pages: Iterable[tuple[int, ShardPage]]) -> list[TickSlice]:
    """A tick's first slices from the first page of each shard (of each, the animations due): small
    pages packed together up to SLICE ids, a full page (more to come in its shard) a slice of its own
    that hands the rest on."""
    slices: list[TickSlice] = []
    packed: list[str] = []
    for shard, page in pages:
        ids = due(kind, time, page)
        if page.after is not None:
            slices.append(TickSlice(kind=kind, time=time, shard=shard, after=page.after, only=ids))
            continue
        if len(packed) + len(ids) > SLICE:
            slices.append(TickSlice(kind=kind, time=time, shard=0, only=packed))
            packed = []
        packed += ids
    if packed:
        slices.append(TickSlice(kind=kind, time=time, shard=0, only=packed))
    return slices


def parse_slice(body: str) -> TickSlice:
    """A tick queue's message; MessageError names what is wrong with it."""
    try:
        return TickSlice.from_dict(json.loads(body))
    except Invalid as exc:
        raise MessageError(f"not a tick slice: {exc.describe()}"[:300], "tick-slice") from None
    except ValueError as exc:
        raise MessageError(f"not a tick slice: {exc}".splitlines()[0][:300], "tick-slice") from None
