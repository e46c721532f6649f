"""The message contract: every "please-*" and "did-*" message as a typed model.

Messages are JSON objects with camelCase keys, a `type` and a `dateCreated` (epoch
seconds, defaulted when missing). Extra keys (a run or correlation id) are kept and
serialised back untouched. `parse` gives one `MessageError` naming every bad field.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic.alias_generators import to_camel

from .errors import PermanentError

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


def _no_line_breaks(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("must not contain line breaks")
    return value


IMAGE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
ImageId = Annotated[str, StringConstraints(pattern=f"^{IMAGE_ID_PATTERN}$")]
Layer = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_:.()\-]{0,63}$")]
Center = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ,.'\-]{0,99}$")]
Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
EpochSeconds = Annotated[int, Field(ge=0, le=32503680000)]  # up to year 3000
Address = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_no_line_breaks)]
HeaderText = Annotated[str, StringConstraints(min_length=1, max_length=998), AfterValidator(_no_line_breaks)]


class Location(BaseModel):
    """An S3 object, written as {"Bucket": ..., "Key": ...} like boto3 does."""

    model_config = ConfigDict(frozen=True, strict=True, populate_by_name=True, extra="forbid")

    bucket: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")] = Field(alias="Bucket")
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024)] = Field(alias="Key")


GifReason = Literal["count", "rebuild", "manual"]  # the count rule, the hourly rebuild, a person
RunId = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_line_breaks)]
Label = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,3}x[1-9][0-9]{0,3}(-(cover|contain))?$")]


# What a worker's usage may name: the workers (app.py's handlers), and the requests as they are priced.
WORKER_FUNCTIONS = Literal["fetch_amp_image", "create_thumbnail", "create_gif", "send_email", "thumbnail_upload"]
REQUEST_KINDS = Literal["s3.read", "s3.write", "sns", "sqs", "ses", "dynamodb.read", "dynamodb.write"]


class Usage(BaseModel):
    """What a worker's invocation used, carried on its reply for the mediator to record (its cost)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, strict=True)

    function: WORKER_FUNCTIONS
    ms: Annotated[int, Field(ge=0, le=900_000)]
    memory_mb: Annotated[int, Field(ge=128, le=10_240)]
    requests: dict[REQUEST_KINDS, Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]]


class Message(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
        strict=True,
    )

    type: str
    date_created: Annotated[int, Field(strict=False, ge=0)] = Field(default_factory=lambda: int(time.time()))
    # The run a message belongs to: the mediator sets it on a request, every reply carries it on,
    # every log line is tagged with it, and the event log keeps the run's timeline under it.
    correlation_id: RunId | None = None
    run_id: RunId | None = None  # a caller's own id for the run, carried on as it was
    usage: Usage | None = None  # a reply's: what its worker used (chalicelib.telemetry)

    @field_validator("usage", mode="wrap")
    @classmethod
    def _usage_or_none(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Usage | None:
        """A usage that is no valid one is left out: what it says of cost is no reason to lose the reply."""
        try:
            return handler(value)
        except ValidationError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, camelCase keys; optional keys that are unset (None) left out."""
        data = self.model_dump(by_alias=True, mode="json")
        for name, field in type(self).model_fields.items():
            if field.default is None and getattr(self, name) is None:
                data.pop(field.alias or name, None)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @property
    def extras(self) -> dict[str, Any]:
        """The keys this contract does not define, passed on from request to reply untouched
        (nothing reads them: every key anything reads is a field)."""
        return dict(self.model_extra or {})

    def run(self) -> dict[str, str]:
        """The run ids to carry on to what this message leads to (as keyword arguments)."""
        return {
            key: value
            for key, value in (("correlation_id", self.correlation_id), ("run_id", self.run_id))
            if value is not None
        }


class PleaseFetchAmpImage(Message):
    type: Literal["please-fetch-amp-image"] = "please-fetch-amp-image"
    image_id: ImageId
    layers: Annotated[list[Layer], Field(min_length=1, max_length=16)]
    width: Side
    height: Side
    center: Center
    zoom: Annotated[int, Field(ge=0, le=22)]
    valid_time: EpochSeconds


class DidFetchAmpImage(Message):
    type: Literal["did-fetch-amp-image"] = "did-fetch-amp-image"
    image_id: ImageId
    valid_time: EpochSeconds  # the frame's, as the source said (it may differ from the one asked for)
    location: Location
    requested_valid_time: EpochSeconds | None = None  # the request's validTime
    width: Side | None = None
    height: Side | None = None


class PleaseCreateThumbnail(Message):
    type: Literal["please-create-thumbnail"] = "please-create-thumbnail"
    image_id: ImageId
    location: Location
    width: Side
    height: Side
    valid_time: EpochSeconds
    mode: Literal["cover", "contain"] = "cover"
    format: Literal["auto", "jpeg", "png"] = "auto"


class DidCreateThumbnail(Message):
    type: Literal["did-create-thumbnail"] = "did-create-thumbnail"
    image_id: ImageId
    valid_time: EpochSeconds
    location: Location
    width: Side | None = None
    height: Side | None = None
    label: Label | None = None  # WxH-mode: which of the animation's thumbnail sizes this is
    source: Location | None = None  # set for an upload's thumbnail: the upload it was made of


class PleaseCreateGif(Message):
    type: Literal["please-create-gif"] = "please-create-gif"
    image_id: ImageId
    locations: Annotated[list[Location], Field(min_length=1, max_length=500)]
    valid_time: EpochSeconds
    delay: Annotated[int, Field(ge=20, le=60_000, description="milliseconds per frame")] = 250
    last_delay: Annotated[int | None, Field(ge=20, le=60_000, description="ms on the newest frame")] = None
    loop: Annotated[int, Field(ge=0, le=65535, description="0 loops forever")] = 0
    reason: GifReason | None = None  # which rule asked for it


class DidCreateGif(Message):
    type: Literal["did-create-gif"] = "did-create-gif"
    image_id: ImageId
    valid_time: EpochSeconds
    location: Location
    frames: Annotated[int, Field(ge=1)] | None = None
    width: Side | None = None
    height: Side | None = None
    bytes: Annotated[int, Field(ge=0)] | None = None


class PleaseSendEmail(Message):
    type: Literal["please-send-email"] = "please-send-email"
    to: Annotated[list[Address], Field(min_length=1, max_length=50)]
    from_: Address = Field(alias="from")
    subject: HeaderText
    body: Annotated[str, StringConstraints(min_length=1, max_length=256_000)]
    # An animation's email: sent once per emailId; its GIF (imageId, validTime) gets the answer.
    email_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    image_id: ImageId | None = None
    valid_time: EpochSeconds | None = None


class DidSendEmail(Message):
    type: Literal["did-send-email"] = "did-send-email"
    to: list[str]
    from_: str = Field(alias="from")
    subject: str
    body: str
    email_id: str | None = None
    image_id: ImageId | None = None
    valid_time: EpochSeconds | None = None
    ses_message_id: str | None = None


class DidFail(Message):
    """A worker's answer to a request that can never succeed."""

    type: Annotated[str, StringConstraints(pattern=r"^did-fail-(" + "|".join(ACTIONS) + r")$")]
    error: str
    error_type: str = "Error"
    request: Any = None

    @property
    def action(self) -> str:
        return self.type.removeprefix("did-fail-")


MODELS: dict[str, type[Message]] = {
    model.model_fields["type"].default: model
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
        wanted = expect.model_fields["type"].default
        raise MessageError(f"expected a {wanted} message", message_type)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MessageError(describe(exc), message_type) from None


def describe(exc: ValidationError) -> str:
    """One line naming each bad field by its JSON path and saying what is wrong."""
    problems = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"]) or "message"
        if error["type"] == "missing":
            problems.append(f"'{path}' is required")
        else:
            text = error["msg"].removeprefix("Value error, ")
            problems.append(f"'{path}' {text[:1].lower()}{text[1:]}")
    return "; ".join(problems)


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
    action: str, error: BaseException | str, request: Any, *, error_type: str | None = None, **extras: Any
) -> DidFail:
    """The did-fail-<action> reply for a request that can never succeed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    reason = error if isinstance(error, str) else str(error)
    error_type = error_type or ("Error" if isinstance(error, str) else type(error).__name__)
    passed_on = {key: value for key, value in extras.items() if len(json.dumps(value, default=str)) <= 1000}
    return DidFail(
        type=f"did-fail-{action}",
        error=reason[:MAX_ERROR],
        error_type=error_type[:200],
        request=bounded(request),
        **passed_on,
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
