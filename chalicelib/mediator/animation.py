"""An animation's configuration: what to fetch, how often, and what to make of it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from msgspec import Meta, field

from ..addresses import mailbox
from ..messages import Address, AnimationFormat, Basemap, Center, HeaderText, ImageId, Layer, Side
from ..sources import SourceName
from ..model import Invalid, Record, wrong


class ThumbnailSpec(Record, frozen=True, kw_only=True):
    width: Side
    height: Side
    mode: Literal["cover", "contain"] = "cover"

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}-{self.mode}"


Kind = Literal["observed", "forecast", "loop"]
MAX_RUN_FRAMES = 48  # a run's frames are asked for in one transaction (each with its record and log line)


class ForecastSpec(Record, frozen=True, kw_only=True):
    """A loop's forecast part: the next frames of the newest run of a forecast source, after the
    observed ones."""

    source: SourceName
    layers: Annotated[list[Layer], Meta(min_length=1, max_length=16)] | None = None  # none: the loop's own
    frames: Annotated[int, Meta(ge=1, le=MAX_RUN_FRAMES, description="M: forecast frames after the observed ones")] = 6


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
    kind: Annotated[
        Kind,
        Meta(
            description="observed: the newest N frames of an observing source; forecast: one model run of a "
            "forecast source, N frames from its run one interval apart, a GIF per run; loop: the newest N "
            "observed frames, then the next M of the newest forecast run (`forecast`)"
        ),
    ] = "observed"
    source: Annotated[
        SourceName | None, Meta(description="the map source (GET /sources); none: the stage's default")
    ] = None
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
    forecast: ForecastSpec | None = None  # a loop's forecast part
    basemap: Annotated[
        Basemap | None,
        Meta(
            description="drawn under every frame, fetched once per view and kept: the frames' layers are then an overlay"
        ),
    ] = None
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
        mismatch = _kind_problem(self.kind, self.forecast is not None)
        if mismatch:
            raise wrong(*mismatch)
        if self.kind == "forecast" and self.frames > MAX_RUN_FRAMES:
            raise wrong("frames", f"must be at most {MAX_RUN_FRAMES} for a forecast (the frames of one run)")

    @classmethod
    def across(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        problem = _every_beyond_frames(data.get("every"), data.get("frames", 12))
        found = [("every", problem)] if problem else []
        formats = data.get("formats")
        if isinstance(formats, list) and len({str(f) for f in formats}) != len(formats):
            found.append(("formats", "must name each format once"))
        kind = data.get("kind", "observed")
        if kind in ("observed", "forecast", "loop"):
            mismatch = _kind_problem(kind, data.get("forecast") is not None)
            if mismatch:
                found.append(mismatch)
            if kind == "forecast" and type(data.get("frames")) is int and data["frames"] > MAX_RUN_FRAMES:
                found.append(("frames", f"must be at most {MAX_RUN_FRAMES} for a forecast (the frames of one run)"))
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
        problems += _source_problems(animation)
        if problems:
            raise Invalid(problems, cls.__name__)
        return animation

    @property
    def gif_every(self) -> int:
        return self.every or self.frames

    @property
    def runs(self) -> bool:
        """Whether it animates model runs (a forecast, or a loop's forecast part)."""
        return self.kind in ("forecast", "loop")

    @property
    def observes(self) -> bool:
        """Whether it keeps the newest observed frames (an observed animation, or a loop's history)."""
        return self.kind in ("observed", "loop")

    @property
    def run_source(self) -> str | None:
        """The source its runs come from (None: the stage's default)."""
        return self.forecast.source if self.forecast is not None else self.source

    @property
    def run_layers(self) -> list[str]:
        return self.forecast.layers if self.forecast is not None and self.forecast.layers else self.layers

    @property
    def run_frames(self) -> int:
        """Frames of each run it asks for: a forecast's N, a loop's M."""
        return self.forecast.frames if self.forecast is not None else self.frames


def _source_problems(animation: Animation) -> list[tuple[str, str]]:
    """What the stage's map sources do not allow of a configuration: a source it does not have, an
    observing source for runs (or a forecast source for observations), an interval off the source's
    step (the source has no frame between its steps)."""
    from .. import sources

    try:
        catalog = sources.sources()
    except ValueError as exc:
        return [("source", f"the stage's map sources cannot be read: {exc}"[:300])]
    named = " and ".join(sorted(catalog)) or "none"
    found: list[tuple[str, str]] = []

    def look(field: str, name: str | None, forecast: bool | None) -> sources.Source | None:
        try:
            source = sources.source(name)
        except LookupError:
            found.append((field, f"no map source {name!r}: the stage has {named}"))
            return None
        if forecast is not None and source.times.forecast != forecast:
            wanted = "a forecast source (one with runs)" if forecast else "a source of observations"
            found.append((field, f"map source {source.name!r} serves {source.kind}: this needs {wanted}"))
        return source

    observed = look("source", animation.source, forecast=animation.kind == "forecast")
    if animation.forecast is not None:
        look("forecast.source", animation.forecast.source, forecast=True)
    if animation.basemap is not None:
        look("basemap.source", animation.basemap.source, forecast=None)
    if observed is not None and animation.interval % observed.times.step:
        found.append(
            ("interval", f"must be a multiple of map source {observed.name!r}'s step ({observed.times.step} s)")
        )
    return found


def _kind_problem(kind: str, has_forecast: bool) -> tuple[str, str] | None:
    if kind == "loop" and not has_forecast:
        return "forecast", "is required for a loop: the source (and layers, frames) of its forecast part"
    if kind != "loop" and has_forecast:
        return "forecast", f"is a loop's forecast part: kind is {kind!r}, not 'loop'"
    return None


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
