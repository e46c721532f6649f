"""An animation's configuration: what to fetch, how often, and what to make of it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from msgspec import Meta, field

from ..addresses import mailbox
from ..messages import Address, AnimationFormat, Center, HeaderText, ImageId, Layer, Side
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
    formats: Annotated[
        list[AnimationFormat],
        Meta(
            min_length=1,
            max_length=3,
            description="what to make of each window: the GIF (always made: emails carry it), and animated WebP "
            "and H.264 MP4 for pages and apps, from the same frames",
        ),
    ] = field(default_factory=lambda: ["gif"])
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
        problem = _every_beyond_frames(self.every, self.frames)
        if problem:
            raise wrong("every", problem)
        if len(set(self.formats)) != len(self.formats):
            raise wrong("formats", "must name each format once")

    @classmethod
    def across(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        problem = _every_beyond_frames(data.get("every"), data.get("frames", 12))
        found = [("every", problem)] if problem else []
        formats = data.get("formats")
        if isinstance(formats, list) and len({str(f) for f in formats}) != len(formats):
            found.append(("formats", "must name each format once"))
        return found

    @classmethod
    def configured(cls, data: Any) -> Self:
        """A configuration as the REST API takes it: valid, its email addresses ones the emailer can
        send to (so a bad one is refused when configured, not when sent; each kept as given, the
        emailer normalizes it when it sends), and its subject one line of at most 998 characters
        once its placeholders are filled in. Every problem is named, those of the addresses too."""
        problems = _email_problems(data)
        try:
            animation = cls.from_dict(data)
        except Invalid as exc:
            named = {path for path, _ in exc.problems}
            raise Invalid(exc.problems + [p for p in problems if p[0] not in named], cls.__name__) from None
        if problems:
            raise Invalid(problems, cls.__name__)
        return animation

    @property
    def gif_every(self) -> int:
        return self.every or self.frames


def _every_beyond_frames(every: Any, frames: Any) -> str | None:
    if type(every) is int and type(frames) is int and every > frames:
        return f"must not exceed frames ({frames}): it is {every}"
    return None


LONGEST_TIME = "9999-12-31 23:59 UTC"  # the longest {time} (chalicelib.mediator.decide.utc)


def _email_problems(data: Any) -> list[tuple[str, str]]:
    """What the emailer would refuse of a configuration's email (its addresses, its subject filled
    in), read from the raw object: named even where other fields are wrong."""
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, dict):
        return []
    to = email.get("to")
    addresses = to if isinstance(to, list) else []
    found = []
    for path, address in [*((f"email.to.{i}", a) for i, a in enumerate(addresses)), ("email.from", email.get("from"))]:
        if isinstance(address, str):
            try:
                mailbox(address)
            except ValueError as exc:
                found.append((path, str(exc)))
    subject, image_id = email.get("subject"), data.get("imageId")
    if isinstance(subject, str) and isinstance(image_id, str):
        filled = subject.replace("{imageId}", image_id).replace("{time}", LONGEST_TIME)
        if len(filled) > 998:
            found.append(("email.subject", f"is {len(filled)} characters with its placeholders filled in; at most 998"))
    return found
