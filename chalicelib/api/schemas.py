"""What each route answers, as typed records: the JSON Schemas of openapi.json's answers.

Each JSON body a route answers is a msgspec Struct here (or the model's own: an animation's
configuration, the messages the actions send), and openapi.json's components are their JSON Schemas,
made by `msgspec.json.schema_components` (see `components`). The routes build their answers as
dicts; a test validates every route's real answers against these schemas, so a field answered and not
declared here, or declared required and not answered, fails it.

How a record reads as a schema:
- a field with no default is required; its type says whether it may be null (`str | None`);
- a field that may be left out is `T | UnsetType = UNSET` (not required);
- every object is closed (`additionalProperties: false`), or a map whose values are typed
  (`dict[str, int]`), or, where the answer holds something whole that is not the API's own (a message
  in a run's timeline, a failed request), says it is open (`additionalProperties: true`).
The model's records (Animation, the messages) are answered as their `to_dict` writes them: every
field is there but those left out when None (`every`, `email`), and a message's keys the contract
does not define ride along (open).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType, field

from ..mediator.animation import Animation, Kind
from ..messages import (
    AnimationFormat,
    Center,
    EpochSeconds,
    GifReason,
    ImageId,
    Label,
    Layer,
    Message,
    PleaseCreateGif,
    PleaseFetchAmpImage,
)
from ..model import for_schema
from ..sources import SourceName

REF = "#/components/schemas/{name}"

# The kinds of text the answers hold.
Time = Annotated[
    str,
    Meta(
        pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
        extra_json_schema={"format": "date-time"},
    ),
]
TimeMs = Annotated[  # a run's timeline: to the millisecond
    str,
    Meta(
        pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}[+]00:00$",
        extra_json_schema={"format": "date-time"},
    ),
]
Hour = Annotated[str, Meta(pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00Z$", description="a UTC hour")]
Url = Annotated[str, Meta(pattern="^https?://", extra_json_schema={"format": "uri"})]
Count = Annotated[int, Meta(ge=0)]
Action = Literal["fetch-amp-image", "create-thumbnail", "create-gif", "send-email"]
MediaType = Literal["image/gif", "image/webp", "video/mp4"]


class Body(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """An answer's JSON object: camelCase keys, closed."""


# Errors: the app's own, and the gateway's ------------------------------------------------------


class Error(Body, kw_only=True):
    """An error the app makes: the reason, and the field (a body's key or JSON path, a query
    parameter, a path part) when one is to blame."""

    error: str
    field: str | UnsetType = UNSET


class Unauthorized(Body, kw_only=True):
    """API Gateway's own answer to a request without a token (chalice local's too)."""

    message: Annotated[str, Meta(examples=["Unauthorized"])]


class Denied(Body, kw_only=True):
    """API Gateway's own answer to a token the authorizer denies: `Message`, a capital M."""

    message: Annotated[str, Meta(examples=["User is not authorized to access this resource"])] = field(name="Message")


class UnsupportedMediaType(Body, kw_only=True):
    """Chalice's own answer to a body sent as anything but application/json."""

    code: Annotated[str, Meta(examples=["UnsupportedMediaType"])] = field(name="Code")
    message: str = field(name="Message")


# Animations ------------------------------------------------------------------------------------


class State(Body, kw_only=True):
    """An animation's counts: frames recorded, and the valid times (epoch seconds) of its newest
    frame asked for and had, its latest GIF claimed and its latest GIF made, and the newest model run
    it asked for and the newest whose GIF is made (null: none yet)."""

    frame_count: Count
    last_requested: EpochSeconds | None
    newest_frame: EpochSeconds | None
    latest_gif: EpochSeconds | None
    done_gif: EpochSeconds | None
    last_run: EpochSeconds | None
    complete_run: EpochSeconds | None


class AnimationAnswer(Animation, frozen=True, kw_only=True):
    """An animation as answered: its whole configuration, each default filled in (`every` only when
    set; `email`, the recipients and sender, only to the token's holder), and its counts."""

    state: State


class Animations(Body, kw_only=True):
    """A page of animations, and where the next page starts (the `after` of the next request)."""

    animations: list[AnimationAnswer]
    next: str | None


class Format(Body, kw_only=True):
    """One format of a made GIF: its link (a route that redirects to it), media type and bytes (null:
    not recorded, for a GIF made before formats were); a format asked for and not made has no link
    and says why (`error`)."""

    format: AnimationFormat
    type: MediaType
    bytes: Count | None
    url: Url | None
    error: str | UnsetType = UNSET


class CardGif(Body, kw_only=True):
    """A card's latest GIF made: a forecast's, of its model run (`runTime`), with the valid times of
    the run's frames it lacks (`gaps`)."""

    valid_time: EpochSeconds
    time: Time
    url: Url
    run_time: EpochSeconds | None
    gaps: list[Time]
    formats: list[Format]


class Progress(Body, kw_only=True, tag_field="rule"):
    """How far an animation has come toward its next GIF: `have` of `need` frames, by its `rule` (null:
    what a disabled animation, or a forecast, will not do)."""

    have: Count
    need: Count
    newest_frame: Time | None
    frame_age_seconds: Count | None
    next_frame: Time | None
    next_fetch: Time | None
    next_gif: Time | None
    gif_due: bool


class FirstProgress(Progress, kw_only=True, tag="first"):
    """Toward its first GIF: N frames."""


class EveryProgress(Progress, kw_only=True, tag="every"):
    """Toward its next GIF: K new frames since the last one."""


class RunProgress(Progress, kw_only=True, tag="run"):
    """A forecast's, toward its newest run's GIF: the run's frames in and failed, and when it is made at
    the latest (its deadline; null once the run is settled). `run` null: no run yet."""

    run: Time | None
    failed: Count
    deadline: Time | None


class Card(Body, kw_only=True):
    """An animation's card on the page: what it is, its latest GIF, how its latest run is doing."""

    image_id: ImageId
    enabled: bool
    kind: Kind
    source: SourceName | None
    layers: list[Layer]
    center: Center
    interval: int
    frames: int
    state: State
    gif: CardGif | None
    status: Literal["done", "waiting", "making", "failed: fetch-amp-image", "failed: create-gif"]
    run_id: str | None
    progress: FirstProgress | EveryProgress | RunProgress


class Cards(Body, kw_only=True):
    """A page of cards, and where the next page starts."""

    animations: list[Card]
    next: str | None


class Removed(Body, kw_only=True):
    records: Count
    objects: Count


class Deleted(Body, kw_only=True):
    """An animation deleted, and what of its images went with it."""

    deleted: ImageId
    images: Literal["keep", "remove"]
    removed: Removed


# Images ----------------------------------------------------------------------------------------


class FrameAnswer(Body, kw_only=True):
    """A frame: its link and its thumbnails' links, by label (routes that redirect to the image); a
    model run's frame names its run."""

    valid_time: EpochSeconds
    time: Time
    run_time: EpochSeconds | None
    url: Url
    thumbnails: dict[Label, Url]
    run_id: str | None


class Frames(Body, kw_only=True):
    """An animation's newest frames, or a model run's (`runTime`: a forecast's newest, or the run asked)."""

    image_id: ImageId
    kind: Kind
    run_time: EpochSeconds | None
    frames: list[FrameAnswer]


class Email(Body, kw_only=True):
    """What became of a GIF's email, and a word on it (a failure's reason only to the token's holder)."""

    status: Literal["sent", "failed", "waiting", "none"]
    detail: str | None
    detail_hidden: str | UnsetType = UNSET


class GifAnswer(Body, kw_only=True):
    """A GIF: claimed (being made), done or failed; its link and formats once made; its email."""

    valid_time: EpochSeconds
    time: Time
    status: Literal["claimed", "done", "failed"]
    reason: GifReason | None
    frames: Count
    run_time: Annotated[EpochSeconds | None, Meta(description="a forecast's GIF: its model run")]
    gaps: Annotated[list[Time], Meta(description="a run's GIF: the valid times of the frames it lacks")]
    url: Url | None
    formats: list[Format]
    email_status: Literal["requested", "sent", "failed"] | None
    email: Email
    run_id: str | None


class Gifs(Body, kw_only=True):
    """An animation's GIFs, newest first."""

    image_id: ImageId
    gifs: list[GifAnswer]


class Redirect(Body, kw_only=True):
    """Where the Location header points: a presigned URL of the image, made now."""

    location: Url


# Runs and failures -----------------------------------------------------------------------------


class FailureAnswer(Body, kw_only=True):
    """A request that failed for good (the error of a send-email failure, which may name addresses,
    only to the token's holder: else null, and `errorHidden` says why)."""

    valid_time: EpochSeconds
    time: Time
    action: Action
    error: str | None
    error_hidden: str | UnsetType = UNSET
    run_id: str | None
    failed_at: Time
    redrivable: bool


class Failures(Body, kw_only=True):
    """What failed for good of an animation."""

    image_id: ImageId
    failures: list[FailureAnswer]


class FailuresRedriven(Body, kw_only=True):
    """Failures whose request was sent again (and forgotten), and those kept (no request to send)."""

    redriven: Count
    kept: Count


class Event(Body, kw_only=True):
    """A line of a run's timeline: a message in or out (whole), or an error, and when."""

    time: TimeMs
    direction: Literal["in", "out", "error", "invalid"]
    type: str
    since_start_ms: Count
    since_previous_ms: Count
    message: Annotated[dict[str, Any], Meta(description="the message as it went, or what stands for one")]


class Timeline(Body, kw_only=True):
    """A run's timeline."""

    run_id: str
    events: list[Event]
    took_ms: Count


class DeadLetter(Body, kw_only=True):
    """A message the mediator gave up on."""

    message_id: str
    message: Annotated[Any, Meta(description="the message: its JSON, or its text when it is not JSON")]
    error: str | None
    sent: Time
    dead: Time


class Unattributed(Body, kw_only=True):
    """A failure that names no animation (an upload's, a garbled request's)."""

    action: Action
    error: str
    request: Annotated[dict[str, Any] | None, Meta(description="the request that failed, when it was kept")]
    failed_at: Time
    run_id: str | None


class DeadLetters(Body, kw_only=True):
    """The mediator's dead letters and the failures that name no animation."""

    dead_letters: list[DeadLetter]
    unattributed: list[Unattributed]


class DeadLettersRedriven(Body, kw_only=True):
    """Dead letters sent back to the mediator's queue."""

    redriven: Count


class FetchAsked(Body, kw_only=True):
    """The request a Fetch now sent."""

    asked: PleaseFetchAmpImage


class GifAsked(Body, kw_only=True):
    """The request a Build now sent."""

    asked: PleaseCreateGif


# Sources ---------------------------------------------------------------------------------------


class SourceTimes(Body, kw_only=True):
    """Seconds: how far back it serves, how far ahead of a run (a forecast), its step and latency, and
    how often a forecast's runs come and how long after their time."""

    back: Count
    ahead: Count
    step: Count
    latency: Count
    run_every: Count
    run_delay: Count


class Serving(Body, kw_only=True):
    """Now: the oldest and newest valid times it serves, and for a forecast its newest run."""

    from_: Time = field(name="from")
    to: Time
    latest_run: Time | None


class Source(Body, kw_only=True):
    """A map source an animation may fetch from; never its keys, nor where they are kept."""

    name: str
    default: Annotated[bool, Meta(description="fetched for an animation that names no source")]
    preset: Annotated[str | None, Meta(description="the preset it is made from; null: written out whole")]
    kind: Literal["observations", "forecast"]
    hosts: Annotated[list[str], Meta(description="host or host:port, fetched from")]
    keyed: Annotated[bool, Meta(description="whether it needs keys (which are never shown)")]
    selects_run: Annotated[bool, Meta(description="a forecast whose URL names the model run")]
    times: SourceTimes
    serving: Serving


class Sources(Body, kw_only=True):
    """The stage's map sources, and the name of the default."""

    default: str
    sources: list[Source]


# The operator's routes -------------------------------------------------------------------------


class QueueDepth(Body, kw_only=True):
    """Messages waiting, being handled and delayed."""

    visible: Count
    in_flight: Count
    delayed: Count


class Queues(Body, kw_only=True):
    mediator: QueueDepth
    ticks: QueueDepth
    dead_letters: QueueDepth
    tick_dead_letters: QueueDepth
    worker_failures: QueueDepth


class StaleAnimation(Body, kw_only=True):
    image_id: ImageId
    since: Time | None
    interval: int
    intervals_missed: Count | None


class Stale(Body, kw_only=True):
    """The stale animations the newest fetch tick found, when it looked, and whether the ticks go on."""

    count: Count
    checked: Time | None
    ticking: bool
    animations: list[StaleAnimation]


class RecentFailure(Body, kw_only=True):
    """A failure of the last hour (a send-email failure's reason only to the token's holder)."""

    image_id: Annotated[
        ImageId | Literal["-unattributed"],
        Meta(description="the animation's, or -unattributed for a failure that names none (GET /failures)"),
    ]
    action: Action
    time: Time
    error: str | None | UnsetType = UNSET
    error_hidden: str | UnsetType = UNSET


class FailuresLastHour(Body, kw_only=True):
    count: Count
    at_least: bool
    by_action: dict[Action, Count]
    recent: list[RecentFailure]


class Status(Body, kw_only=True):
    """What the alarms watch: `ok` unless a line of `problems` says what is wrong."""

    time: Time
    ok: bool
    problems: list[str]
    queues: Queues
    dead_letters: Count
    stale: Stale
    failures_last_hour: FailuresLastHour


class Metric(Body, kw_only=True):
    """A metric of a function over the window (Failures also by reason)."""

    function: str | None
    name: str
    reason: str | UnsetType = UNSET
    unit: str | None
    count: float
    sum: float
    average: float
    maximum: float


class Metrics(Body, kw_only=True):
    """The handlers' metrics over a window."""

    namespace: str
    stage: str
    from_: Time = field(name="from")
    to: Time
    metrics: list[Metric]


class FunctionCost(Body, kw_only=True):
    invocations: float
    ms: Count
    gb_seconds: float
    usd: float


class Cost(Body, kw_only=True):
    """Usage records added up and priced (US dollars): the total, by service and by function, and the
    requests counted, by kind."""

    from_: Hour = field(name="from")
    usd: float
    by_service: dict[str, float]
    by_function: dict[str, FunctionCost]
    requests: dict[str, float]


class Day(Cost, kw_only=True):
    """The last 24 hours."""

    hours: Literal[24]


class Month(Cost, kw_only=True):
    """The last 30 days."""

    days: Literal[30]


class AnimationCost(Body, kw_only=True):
    """What an animation's work cost."""

    image_id: ImageId
    day: Day
    month: Month
    counted: str


class SharedCost(Body, kw_only=True):
    """What the work no one animation caused cost, and the prices used (US dollars a unit)."""

    day: Day
    month: Month
    counted: str
    prices: dict[str, float]


class Health(Body, kw_only=True):
    """The version, whether everything answers, and each check: "ok" or the error's kind."""

    version: str
    ok: bool
    checks: dict[str, str]


class Info(Body, kw_only=True):
    title: str
    version: str
    description: str


class OpenApi(Body, kw_only=True):
    """An OpenAPI 3.1 document (this one): its components and paths as the specification says."""

    openapi: Literal["3.1.0"]
    info: Info
    components: dict[str, Any]
    paths: dict[str, Any]


# The schemas -----------------------------------------------------------------------------------


def components(types: Sequence[type[msgspec.Struct]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The schema of each of `types` (a $ref into the components) and the components: every record
    they hold, by the name msgspec gives it (its class name; qualified where two records share one)."""
    written = [record for record in _walk(types, set()) if issubclass(record, Message) or record is AnimationAnswer]
    refs, definitions = msgspec.json.schema_components([*types, *written], ref_template=REF)
    for record, ref in zip(written, refs[len(types) :]):
        schema = definitions[ref["$ref"].removeprefix(REF.format(name=""))]
        _as_written(schema, record)
        if issubclass(record, Message):
            del schema["properties"]["extras"]  # its keys are written beside the fields
            schema["additionalProperties"] = True  # keys the contract does not define are carried on
    _open_maps_say_so(definitions)
    return for_schema(list(refs[: len(types)])), for_schema(definitions)


def _as_written(schema: dict[str, Any], record: type[msgspec.Struct]) -> None:
    """A model record's schema as its `to_dict` writes it: every field required but those it leaves out
    when None (a None default: not set), which are never null when they are there."""
    fields = [info for info in msgspec.structs.fields(record) if info.name != "extras"]
    schema["required"] = [info.encode_name for info in fields if info.default is not None]
    for info in fields:
        if info.default is None:
            written = schema["properties"][info.encode_name]
            written.pop("default", None)
            if "anyOf" in written:
                options = [option for option in written.pop("anyOf") if option != {"type": "null"}]
                written.update(options[0] if len(options) == 1 else {"anyOf": options})


def _open_maps_say_so(schema: Any) -> None:
    """An object of any keys (dict[str, Any]) says it is open."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" not in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = True
        for value in schema.values():
            _open_maps_say_so(value)
    elif isinstance(schema, list):
        for value in schema:
            _open_maps_say_so(value)


def _walk(types: Iterable[Any], seen: set[Any]) -> Iterator[type[msgspec.Struct]]:
    """Every record the types hold, each once."""
    for kind in types:
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            if kind in seen:
                continue
            seen.add(kind)
            yield kind
            yield from _walk((info.type for info in msgspec.structs.fields(kind)), seen)
        else:
            yield from _walk(get_args(kind), seen)
