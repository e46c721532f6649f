"""The message contract: every "please-*" and "did-*" message as a typed record.

Messages are JSON objects with camelCase keys, a `type` and a `dateCreated` (epoch
seconds, defaulted when missing). Extra keys (a run or correlation id) are kept and
serialised back untouched. `parse` gives one `MessageError` naming every bad field.
The records are msgspec Structs (chalicelib.model): light to import and to define, which
a cold start's first call pays for.
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Literal, Self

import msgspec
from msgspec import Meta, field

from .errors import PermanentError
from .model import Invalid, Record, keys, names, unpaired, whole, wrong
from .sources import SourceName

ACTIONS = ("fetch-amp-image", "create-thumbnail", "create-gif", "send-email")
MAX_SIDE = 4096
MAX_ERROR = 2000  # characters of a did-fail's error
MAX_REQUEST_COPY = 64_000  # characters of JSON of the request a did-fail carries back


class MessageError(PermanentError, ValueError):
    """A message that can never be processed: unknown type, missing or bad keys."""

    def __init__(self, reason: str, message_type: str | None = None):
        self.reason = reason
        self.message_type = message_type
        super().__init__(f"{message_type}: {reason}" if message_type else reason)


ONE_LINE = whole(r"[^\r\n]*", "must not contain line breaks")  # a text on one line
IMAGE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
ImageId = Annotated[
    str,
    Meta(pattern=whole(IMAGE_ID_PATTERN, "must be 1 to 64 letters, digits, '.', '_' or '-', from a letter or digit")),
]
Layer = Annotated[
    str,
    Meta(
        pattern=whole(
            r"[A-Za-z0-9][A-Za-z0-9_:.()\-]{0,63}",
            "must be 1 to 64 letters, digits, '_', ':', '.', '(', ')' or '-', from a letter or digit",
        )
    ),
]
Center = Annotated[
    str,
    Meta(
        pattern=whole(
            r"[A-Za-z0-9][A-Za-z0-9 ,.'\-]{0,99}",
            "must be 1 to 100 letters, digits, spaces, ',', '.', \"'\" or '-', from a letter or digit",
        )
    ),
]
Side = Annotated[int, Meta(ge=1, le=MAX_SIDE)]
EpochSeconds = Annotated[int, Meta(ge=0, le=32503680000)]  # up to year 3000
Address = Annotated[str, Meta(min_length=3, max_length=254, pattern=ONE_LINE)]
HeaderText = Annotated[str, Meta(min_length=1, max_length=998, pattern=ONE_LINE)]


class Location(Record, frozen=True, kw_only=True):
    """An S3 object, written as {"Bucket": ..., "Key": ...} like boto3 does."""

    bucket: Annotated[str, Meta(pattern=whole(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", "must be an S3 bucket name"))] = (
        field(name="Bucket")
    )
    key: Annotated[str, Meta(min_length=1, max_length=1024)] = field(name="Key")


GifReason = Literal["count", "rebuild", "manual", "run"]  # the count rule, the hourly rebuild, a person, a run
RunId = Annotated[str, Meta(min_length=1, max_length=200, pattern=ONE_LINE)]
Label = Annotated[
    str, Meta(pattern=whole(r"[1-9][0-9]{0,3}x[1-9][0-9]{0,3}(-(cover|contain))?", "must be WxH or WxH-mode"))
]


# What a worker's usage may name: the workers (app.py's handlers), and the requests as they are priced.
WORKER_FUNCTIONS = Literal["fetch_amp_image", "create_thumbnail", "create_gif", "send_email", "thumbnail_upload"]
REQUEST_KINDS = Literal["s3.read", "s3.write", "sns", "sqs", "ses", "dynamodb.read", "dynamodb.write"]


class Usage(Record, frozen=True, kw_only=True):
    """What a worker's invocation used, carried on its reply for the mediator to record (its cost)."""

    function: WORKER_FUNCTIONS
    ms: Annotated[int, Meta(ge=0, le=900_000)]
    memory_mb: Annotated[int, Meta(ge=128, le=10_240)]
    requests: dict[REQUEST_KINDS, Annotated[float, Meta(ge=0, le=1_000_000)]]  # NaN and infinity fail


def _now() -> int:
    return int(time.time())


class Message(Record, frozen=True, kw_only=True, forbid_unknown_fields=False):
    type: str
    date_created: Annotated[int, Meta(ge=0)] = field(default_factory=_now)
    # The run a message belongs to: the mediator sets it on a request, every reply carries it on,
    # every log line is tagged with it, and the event log keeps the run's timeline under it.
    correlation_id: RunId | None = None
    run_id: RunId | None = None  # a caller's own id for the run, carried on as it was
    usage: Usage | None = None  # a reply's: what its worker used (chalicelib.telemetry)
    # The keys this contract does not define, passed on from request to reply untouched (nothing
    # reads them: every key anything reads is a field). Written beside the fields, not under a key.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, extras: dict[str, Any] | None = None, **fields: Any) -> Self:
        """A message of `fields` (by their Python names), carrying on `extras`: a request's keys this
        message does not define (one it defines, by its key or its name, is never set from an extra)."""
        defined = _defined(cls)
        return cls(**fields, extras={key: value for key, value in (extras or {}).items() if key not in defined})

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """`data` as this message: the keys it does not define set apart as its extras."""
        if not isinstance(data, dict):
            return super().from_dict(data)
        problems = unpaired(data)  # before the extras are set apart, so that each is named by its key
        if problems:
            raise Invalid(problems, cls.__name__)
        defined = frozenset(keys(cls)) - {"extras"}
        fields = {key: value for key, value in data.items() if key in defined}
        if "usage" in fields and not _valid_usage(fields["usage"]):
            del fields["usage"]  # what it says of cost is no reason to lose the message
        if "dateCreated" in fields:
            fields["dateCreated"] = _lax_int(fields["dateCreated"])
        return cls._converted({**fields, "extras": {k: v for k, v in data.items() if k not in defined}})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, camelCase keys; optional keys that are unset (None) left out."""
        data = super().to_dict()
        extras = data.pop("extras")
        return {**{key: value for key, value in extras.items() if key not in data}, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def run(self) -> dict[str, str]:
        """The run ids to carry on to what this message leads to (as keyword arguments)."""
        return {
            key: value
            for key, value in (("correlation_id", self.correlation_id), ("run_id", self.run_id))
            if value is not None
        }


def _defined(model: type[Message]) -> frozenset[str]:
    """What names a field of a message: its keys and its Python names (every other key is an extra)."""
    return frozenset(keys(model)) | frozenset(names(model))


def _lax_int(value: Any) -> Any:
    """dateCreated as senders write it: a whole number also as a float (123.0) or a text ("123");
    anything else as it is (and refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,20}\s*", value):
        return int(value)
    return value


def _valid_usage(value: Any) -> bool:
    try:
        Usage.from_dict(value)
    except Invalid:
        return False
    return True


Layers = Annotated[list[Layer], Meta(min_length=1, max_length=16)]


class Basemap(Record, frozen=True, kw_only=True):
    """What a frame is drawn over: layers of a source, fetched once per view (source, layers, size,
    center, zoom) and kept beside the frames; the frame's own layers must be transparent."""

    source: SourceName
    layers: Layers


class PleaseFetchAmpImage(Message, frozen=True, kw_only=True):
    type: Literal["please-fetch-amp-image"] = "please-fetch-amp-image"
    image_id: ImageId
    layers: Layers
    width: Side
    height: Side
    center: Center
    zoom: Annotated[int, Meta(ge=0, le=22)]
    valid_time: EpochSeconds
    attempt: Annotated[int, Meta(ge=0, le=10)] | None = None  # a failed frame asked again: the how-manieth time
    source: SourceName | None = None  # the map source (chalicelib.sources); none: the stage's default
    run_time: EpochSeconds | None = None  # the forecast model run the frame belongs to; none for observations
    basemap: Basemap | None = None  # drawn under the frame, which is then a transparent overlay

    def __post_init__(self) -> None:
        problem = _run_after(self.run_time, self.valid_time)
        if problem:
            raise wrong("runTime", problem)

    @classmethod
    def across(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        problem = _run_after(data.get("runTime"), data.get("validTime"))
        return [("runTime", problem)] if problem else []


def _run_after(run_time: Any, valid_time: Any) -> str | None:
    """A forecast's frame is valid at its run or after it: a run after its valid time is no run of it."""
    if isinstance(run_time, int) and isinstance(valid_time, int) and not isinstance(run_time, bool):
        if not isinstance(valid_time, bool) and run_time > valid_time:
            return "must not be after validTime: a forecast's frames are valid from its run on"
    return None


class DidFetchAmpImage(Message, frozen=True, kw_only=True):
    type: Literal["did-fetch-amp-image"] = "did-fetch-amp-image"
    image_id: ImageId
    valid_time: EpochSeconds  # the frame's, as the source said (it may differ from the one asked for)
    location: Location
    requested_valid_time: EpochSeconds | None = None  # the request's validTime
    width: Side | None = None
    height: Side | None = None
    source: SourceName | None = None  # the request's, as it was (none: the default source)
    run_time: EpochSeconds | None = None  # the request's


class PleaseCreateThumbnail(Message, frozen=True, kw_only=True):
    type: Literal["please-create-thumbnail"] = "please-create-thumbnail"
    image_id: ImageId
    location: Location
    width: Side
    height: Side
    valid_time: EpochSeconds
    mode: Literal["cover", "contain"] = "cover"
    format: Literal["auto", "jpeg", "png"] = "auto"
    run_time: EpochSeconds | None = None  # a forecast frame's run: its thumbnail is kept under it


class DidCreateThumbnail(Message, frozen=True, kw_only=True):
    type: Literal["did-create-thumbnail"] = "did-create-thumbnail"
    image_id: ImageId
    valid_time: EpochSeconds
    location: Location
    width: Side | None = None
    height: Side | None = None
    label: Label | None = None  # WxH-mode: which of the animation's thumbnail sizes this is
    source: Location | None = None  # set for an upload's thumbnail: the upload it was made of
    run_time: EpochSeconds | None = None  # the request's: a forecast frame's run


Milliseconds = Annotated[int, Meta(ge=20, le=60_000)]


# The formats of an animation: the GIF (what email clients play: always made, the email's), and for
# pages and apps animated WebP and H.264 MP4 of the same frames, each next to the GIF in the gifs
# bucket ({imageId}/{validTime}.webp, .mp4).
AnimationFormat = Literal["gif", "webp", "mp4"]
CONTENT_TYPES: dict[str, str] = {"gif": "image/gif", "webp": "image/webp", "mp4": "video/mp4"}


def _distinct(values: list[Any]) -> bool:
    return len(set(values)) == len(values)


class Output(Record, frozen=True, kw_only=True):
    """One format a GIF worker made: where it is and how large."""

    format: AnimationFormat
    location: Location
    bytes: Annotated[int, Meta(ge=0)]


class PleaseCreateGif(Message, frozen=True, kw_only=True):
    type: Literal["please-create-gif"] = "please-create-gif"
    image_id: ImageId
    locations: Annotated[list[Location], Meta(min_length=1, max_length=500)]
    valid_time: EpochSeconds
    delay: Annotated[Milliseconds, Meta(description="milliseconds per frame")] = 250
    last_delay: Annotated[Milliseconds | None, Meta(description="ms on the newest frame")] = None
    loop: Annotated[int, Meta(ge=0, le=65535, description="0 loops forever")] = 0
    reason: GifReason | None = None  # which rule asked for it
    run_time: EpochSeconds | None = None  # a forecast run's GIF (validTime is then its run: its identity)
    # The formats to make (unset: the GIF alone). The GIF is made whether or not it is named.
    formats: Annotated[list[AnimationFormat], Meta(min_length=1, max_length=3)] | None = None

    @classmethod
    def across(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        formats = data.get("formats")
        if isinstance(formats, list) and not _distinct(formats):
            return [("formats", "must name each format once")]
        return []

    def __post_init__(self) -> None:
        if self.formats is not None and not _distinct(self.formats):
            raise wrong("formats", "must name each format once")

    def wanted(self) -> list[AnimationFormat]:
        """The formats to make: the GIF first, then the others named, in the order named."""
        return ["gif", *(f for f in self.formats or () if f != "gif")]


class DidCreateGif(Message, frozen=True, kw_only=True):
    type: Literal["did-create-gif"] = "did-create-gif"
    image_id: ImageId
    valid_time: EpochSeconds
    location: Location
    frames: Annotated[int, Meta(ge=1)] | None = None
    width: Side | None = None
    height: Side | None = None
    bytes: Annotated[int, Meta(ge=0)] | None = None
    # Set when the request named formats: each format made (the GIF first); a format that failed is
    # not here but in a did-fail-create-gif of its own, which names it (`format`).
    outputs: list[Output] | None = None


class PleaseSendEmail(Message, frozen=True, kw_only=True):
    type: Literal["please-send-email"] = "please-send-email"
    to: Annotated[list[Address], Meta(min_length=1, max_length=50)]
    from_: Address = field(name="from")
    subject: HeaderText
    body: Annotated[str, Meta(min_length=1, max_length=256_000)]
    # An animation's email: sent once per emailId; its GIF (imageId, validTime) gets the answer.
    email_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    image_id: ImageId | None = None
    valid_time: EpochSeconds | None = None


class DidSendEmail(Message, frozen=True, kw_only=True):
    type: Literal["did-send-email"] = "did-send-email"
    to: list[str]
    from_: str = field(name="from")
    subject: str
    body: str
    email_id: str | None = None
    image_id: ImageId | None = None
    valid_time: EpochSeconds | None = None
    ses_message_id: str | None = None


class DidFail(Message, frozen=True, kw_only=True):
    """A worker's answer to a request that can never succeed."""

    type: Annotated[str, Meta(pattern=whole("did-fail-(" + "|".join(ACTIONS) + ")", "must be did-fail- and an action"))]
    error: str
    error_type: str = "Error"
    request: Any = None
    # A GIF worker's failure of one format other than the GIF, whose did-create-gif went out (the
    # request may be sent again for that format alone: the GIF is the same bytes). Unset: the whole
    # request failed.
    format: AnimationFormat | None = None

    @property
    def action(self) -> str:
        return self.type.removeprefix("did-fail-")


def _type_of(model: type[Message]) -> str:
    """The `type` a message model is for (its default)."""
    return next(info.default for info in msgspec.structs.fields(model) if info.name == "type")


MODELS: dict[str, type[Message]] = {
    _type_of(model): model
    for model in (
        PleaseFetchAmpImage,
        DidFetchAmpImage,
        PleaseCreateThumbnail,
        DidCreateThumbnail,
        PleaseCreateGif,
        DidCreateGif,
        PleaseSendEmail,
        DidSendEmail,
    )
}


def model_for(message_type: str) -> type[Message]:
    if message_type.startswith("did-fail-"):
        return DidFail
    try:
        return MODELS[message_type]
    except KeyError:
        raise MessageError(f"unknown message type {message_type!r}") from None


def parse(data: str | bytes | dict[str, Any], expect: type[Message] | None = None) -> Message:
    """Validate `data` (a JSON text or an object) into its message model.

    `expect` names the one model a worker takes; anything else is a MessageError.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MessageError(f"a message is a JSON object, not {type(data).__name__}")
    message_type = data.get("type")
    if not isinstance(message_type, str):
        raise MessageError("'type' is required and must be a string")
    model = model_for(message_type)
    if expect is not None and model is not expect:
        raise MessageError(f"expected a {_type_of(expect)} message", message_type)
    try:
        return model.from_dict(data)
    except Invalid as exc:
        raise MessageError(exc.describe(), message_type) from None


def run_ids(data: Any) -> dict[str, str]:
    """The run ids of a message that could not be read (a raw object), as keyword arguments for
    its did-fail: each only if it is one (a string of 1..200 characters on one line)."""
    if not isinstance(data, dict):
        return {}
    found = {"correlation_id": data.get("correlationId"), "run_id": data.get("runId")}
    return {
        name: value
        for name, value in found.items()
        if isinstance(value, str) and 0 < len(value) <= 200 and "\n" not in value and "\r" not in value
    }


def failure(
    action: str,
    error: BaseException | str,
    request: Any,
    *,
    error_type: str | None = None,
    extras: dict[str, Any] | None = None,
    correlation_id: str | None = None,
    run_id: str | None = None,
) -> DidFail:
    """The did-fail-<action> reply for a request that can never succeed: its run ids, and the
    request's extra keys (each of at most 1,000 characters of JSON) carried on."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    reason = error if isinstance(error, str) else str(error)
    error_type = error_type or ("Error" if isinstance(error, str) else type(error).__name__)
    passed_on = {key: value for key, value in (extras or {}).items() if len(json.dumps(value, default=str)) <= 1000}
    return DidFail.make(
        passed_on,
        type=f"did-fail-{action}",
        error=reason[:MAX_ERROR],
        error_type=error_type[:200],
        request=bounded(request),
        correlation_id=correlation_id,
        run_id=run_id,
    )


def bounded(request: Any) -> Any:
    """A failed request as a did-fail carries it: whole up to MAX_REQUEST_COPY characters of JSON,
    else only what names it (a request may be as large as SNS takes, and its reply must still fit SQS)."""
    text = json.dumps(request, default=str)
    if len(text) <= MAX_REQUEST_COPY:
        return request
    names = (
        {
            k: v
            for k, v in request.items()
            if k in ("type", "imageId", "validTime", "correlationId", "runId")
            and isinstance(v, (str, int))
            and len(str(v)) <= 200
        }
        if isinstance(request, dict)
        else {}
    )
    return {**names, "truncated": f"{len(text)} characters, over {MAX_REQUEST_COPY}"}
