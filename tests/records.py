"""Records put in place as the mediator's decisions make them, for tests that look at the results
(the API, the page, the links) rather than at how they come about. Each is a real decision on
the animation's counts as they are, applied to the store (DynamoDB or the in-memory one)."""

from __future__ import annotations

from typing import Any

from chalicelib.mediator import decide
from chalicelib.mediator.decide import ClaimGif, Decision, FinishGif, RecordThumbnail
from chalicelib.messages import DidFetchAmpImage, GifReason, Location, PleaseCreateGif


def due(animation: Any, grid: int) -> int:
    """When the fetch tick asks for an animation's frame valid at `grid` (a time on its interval grid):
    at its phase after it."""
    from chalicelib.settings import TICK_SECONDS

    return grid + decide.phase(animation, TICK_SECONDS)


def frame(store: Any, image_id: str, t: int, location: Location, correlation_id: str | None = None) -> None:
    """A frame at `t`, counted (no GIF claimed with it)."""
    state = store.get_animation(image_id, consistent=True)
    answer = DidFetchAmpImage(image_id=image_id, valid_time=t, location=location, correlation_id=correlation_id)
    store.apply(decide.on_frame(state, answer, t))


def thumbnail(store: Any, image_id: str, t: int, label: str, location: Location) -> None:
    store.apply(Decision(f"t:{image_id}:{t}:{label}", (RecordThumbnail(image_id, t, label, location),)))


def gif_claim(
    store: Any, image_id: str, times: list[int], reason: GifReason = "manual", correlation_id: str | None = None
) -> None:
    """A GIF of the frames at `times` claimed (asked for, not made)."""
    state = store.get_animation(image_id, consistent=True)
    request = PleaseCreateGif(
        image_id=image_id,
        locations=[Location(bucket="frames", key=f"{image_id}/{t}.png") for t in times],
        valid_time=times[-1],
        reason=reason,
        correlation_id=correlation_id,
    )
    claim = ClaimGif(
        image_id, times[-1], tuple(times), state.gif_frame_count, state.frame_count, reason, correlation_id, request
    )
    store.apply(Decision(f"g:{image_id}:{times[-1]}", (claim,)))


def gif(store: Any, image_id: str, times: list[int], location: Location, correlation_id: str | None = None) -> None:
    """A GIF of the frames at `times`, claimed and made."""
    gif_claim(store, image_id, times, "manual", correlation_id)
    store.apply(Decision(f"d:{image_id}:{times[-1]}", (FinishGif(image_id, times[-1], location, None),)))
