"""An animation's configuration: what to fetch, how often, and what to make of it."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from msgspec import Meta, field

from ..addresses import mailbox
from ..messages import Address, Center, HeaderText, ImageId, Layer, Side
from ..model import Invalid, Record, wrong


class ThumbnailSpec(Record, frozen=True, kw_only=True):
    width: Side
    height: Side
    mode: Literal["cover", "contain"] = "cover"

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}-{self.mode}"


class EmailSpec(Record, frozen=True, kw_only=True):
    to: Annotated[list[Address], Meta(min_length=1, max_length=50)]
    from_: Address = field(name="from")
    subject: HeaderText = "{imageId}: new animation to {time}"


class Animation(Record, frozen=True, kw_only=True):
    """An animation: what map frames to fetch, how often, and the GIFs, thumbnails and email made of them."""

    # (The docstring is the API's description of the body, in /openapi.json.) Stored in DynamoDB,
    # read and written through chalicelib.mediator.store. `configured` checks a configuration as the
    # REST API takes it; `from_dict` reads one back from the store (its email addresses not checked
    # again: one stored before addresses were checked still loads, and its email fails when sent).

    image_id: ImageId
    layers: Annotated[list[Layer], Meta(min_length=1, max_length=16)]
    width: Side
    height: Side
    center: Center
    zoom: Annotated[int, Meta(ge=0, le=22)]
    interval: Annotated[int, Meta(ge=60, le=86_400, description="seconds between frames")] = 600
    frames: Annotated[int, Meta(ge=2, le=100, description="N: frames in a GIF")] = 12
    every: Annotated[
        Annotated[int, Meta(ge=1, le=100)] | None, Meta(description="K: new frames that make a new GIF")
    ] = None
    thumbnails: Annotated[list[ThumbnailSpec], Meta(max_length=8)] = []
    gif_delay: Annotated[int, Meta(ge=20, le=60_000)] = 250
    gif_last_delay: Annotated[int, Meta(ge=20, le=60_000)] | None = 1000
    gif_loop: Annotated[int, Meta(ge=0, le=65_535)] = 0
    email: EmailSpec | None = None
    link_expiry: Annotated[
        int,
        Meta(
            ge=60,
            le=604_800,
            description="accepted for old configurations and ignored: links are routes of the API that redirect "
            "to the image, and last as long as it is kept",
        ),
    ] = 604_800
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.every is not None and self.every > self.frames:
            raise wrong("every", f"every ({self.every}) cannot exceed frames ({self.frames})")

    @classmethod
    def configured(cls, data: object) -> Self:
        """A configuration as the REST API takes it: valid, and its email addresses ones the emailer
        can send to (so a bad one is refused when configured, not when sent; each kept as given,
        the emailer normalizes it when it sends)."""
        animation = cls.from_dict(data)
        if animation.email is not None:
            problems = []
            for path, address in [
                *((f"email.to.{i}", a) for i, a in enumerate(animation.email.to)),
                ("email.from", animation.email.from_),
            ]:
                try:
                    mailbox(address)
                except ValueError as exc:
                    problems.append((path, str(exc)))
            if problems:
                raise Invalid(problems, cls.__name__)
        return animation

    @property
    def gif_every(self) -> int:
        return self.every or self.frames
